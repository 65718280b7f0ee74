import pg from 'pg';
import { afterAll, beforeAll, describe, inject } from 'vitest';
import { createSchema } from '../../src/postgres/index.js';

/** URL of the test PostgreSQL, or `''` when there is none (suites then skip, loudly). */
export const pgUrl: string = inject('pgUrl');

/** `describe` that runs only when a PostgreSQL is available (under CI=true it always is). */
export const describePostgres = pgUrl ? describe : describe.skip;

/** A pool on the test database; commits skip the fsync wait (these tests are not about disks). */
export function testPool(options: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: pgUrl,
    max: 4,
    options: '-c synchronous_commit=off',
    ...options,
  });
  pool.on('error', () => {}); // an idle connection killed by a test; the pool drops it
  return pool;
}

/** The names a test file's tables live under, and a pool to reach them. */
export interface TestSchema {
  readonly schema: string;
  readonly pool: pg.Pool;
  /** Creates fresh tables (every adapter's) named `<name>_…_<n>`; returns the names. */
  tables(name: string): Promise<{
    idempotency: string;
    deadLetters: string;
    deliveries: string;
    deliveryAttempts: string;
  }>;
}

/**
 * A schema of this test file's own, created before its tests and dropped after, so that test
 * files run in parallel on one database. Call at the top level of a `describePostgres` block.
 */
export function useTestSchema(name: string): TestSchema {
  const schema = `rk_${name}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  let pool: pg.Pool | undefined;
  let n = 0;
  beforeAll(async () => {
    pool = testPool();
    await pool.query(`CREATE SCHEMA "${schema}"`);
  });
  afterAll(async () => {
    if (pool === undefined) return;
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await pool.end();
  });
  return {
    schema,
    get pool(): pg.Pool {
      if (pool === undefined) throw new Error('useTestSchema: the pool exists only inside tests');
      return pool;
    },
    async tables(prefix) {
      const id = ++n;
      const names = {
        idempotency: `${prefix}_idem_${id}`,
        deadLetters: `${prefix}_dlq_${id}`,
        deliveries: `${prefix}_dlv_${id}`,
        deliveryAttempts: `${prefix}_dlv_att_${id}`,
      };
      await createSchema(this.pool, {
        schema,
        idempotencyTable: names.idempotency,
        deadLetterTable: names.deadLetters,
        deliveryTable: names.deliveries,
        deliveryAttemptsTable: names.deliveryAttempts,
      });
      return names;
    },
  };
}

/**
 * Moves the database's clock forward by `ms` for one idempotency table: every lease and TTL
 * gets `ms` less of it (time travel without sleeping, as `advanceRedisTime` does for Redis).
 */
export async function advancePostgresTime(
  pool: pg.Pool,
  schema: string,
  table: string,
  ms: number,
): Promise<void> {
  await pool.query(
    `UPDATE "${schema}"."${table}" SET expires_at = expires_at - $1::float8 * interval '1 millisecond'`,
    [ms],
  );
}

/** Moves every claim and not-before time of a dead-letter table `ms` milliseconds earlier. */
export async function passPostgresTime(
  pool: pg.Pool,
  schema: string,
  table: string,
  ms: number,
): Promise<void> {
  await pool.query(
    `UPDATE "${schema}"."${table}" SET lease_until = lease_until - $1::float8 * interval '1 millisecond' WHERE lease_until IS NOT NULL`,
    [ms],
  );
}

/**
 * Moves the database's clock forward by `ms` for one delivery table: every expiry and due time
 * comes `ms` sooner.
 */
export async function advanceDeliveryTime(
  pool: pg.Pool,
  schema: string,
  table: string,
  ms: number,
): Promise<void> {
  await pool.query(
    `UPDATE "${schema}"."${table}" SET expires_at = expires_at - $1::float8 * interval '1 millisecond',
       due_at = due_at - $1::float8 * interval '1 millisecond'`,
    [ms],
  );
}
