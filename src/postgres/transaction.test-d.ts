import type pg from 'pg';
import { expectTypeOf, test } from 'vitest';
import type { PgClientLike } from './client.js';
import { createPostgresIdempotencyStore } from './idempotency.js';
import { idempotentTransaction } from './transaction.js';

declare const pool: pg.Pool;
declare const client: pg.Client;

test('fn gets a pg.PoolClient from a pg.Pool, the client itself from a pg.Client', () => {
  void idempotentTransaction(pool, 'k', (tx) => {
    expectTypeOf(tx).toEqualTypeOf<pg.PoolClient>();
  });
  void idempotentTransaction(client, 'k', (tx) => {
    expectTypeOf(tx).toEqualTypeOf<pg.Client>();
  });
});

test("the result is fn's, awaited", () => {
  expectTypeOf(idempotentTransaction(pool, 'k', async () => ({ id: 1 }))).toEqualTypeOf<
    Promise<{ id: number }>
  >();
});

test("pg's Pool, Client and PoolClient fit the structural types", () => {
  expectTypeOf<pg.Pool>().toExtend<PgClientLike>();
  expectTypeOf<pg.PoolClient>().toExtend<PgClientLike>();
  createPostgresIdempotencyStore(pool);
  createPostgresIdempotencyStore(client);
});
