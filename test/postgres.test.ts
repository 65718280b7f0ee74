import { readFileSync } from 'node:fs';
import pg from 'pg';
import { expect, it, vi } from 'vitest';
import {
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  idempotent,
  StoreUnavailableError,
} from '../src/index.js';
import { idempotencyStatements } from '../src/postgres/idempotency.js';
import {
  createPostgresDeadLetterQueue,
  createPostgresIdempotencyStore,
  createSchema,
  idempotentTransaction,
  schemaSql,
} from '../src/postgres/index.js';
import { letter } from './support/dead-letter-contract.js';
import { describePostgres, pgUrl, testPool, useTestSchema } from './support/postgres.js';
import { startTcpProxy } from './support/tcp-proxy.js';

/** The test database's URL with its host and port replaced by a proxy's. */
function through(port: number): string {
  const url = new URL(pgUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return url.toString();
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describePostgres('retrykit/postgres', () => {
  const db = useTestSchema('adapters');

  it('createSchema makes the tables under any names, quoted, and running it again is harmless', async () => {
    const odd = { idempotencyTable: 'Idem "odd"; DROP TABLE x', deadLetterTable: 'dlq.Ä' };
    await createSchema(db.pool, { schema: db.schema, ...odd });
    await Promise.all([
      createSchema(db.pool, { schema: db.schema, ...odd }),
      createSchema(db.pool, { schema: db.schema, ...odd }),
    ]);
    const { rows } = await db.pool.query(
      'SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename',
      [db.schema],
    );
    expect(rows.map((r) => r.tablename)).toEqual(expect.arrayContaining(Object.values(odd)));
    const store = createPostgresIdempotencyStore(db.pool, {
      schema: db.schema,
      table: odd.idempotencyTable,
    });
    expect(await store.markOnce('k', 1000)).toBe(true);
    const dlq = createPostgresDeadLetterQueue(db.pool, {
      schema: db.schema,
      table: odd.deadLetterTable,
    });
    expect((await dlq.add(letter(1))).id).toBe('m-1');
  });

  it('schemaSql with the defaults is the shipped migration files, names quoted', () => {
    const files = ['001_idempotency.sql', '002_dead_letters.sql', '003_deliveries.sql'].map((f) =>
      readFileSync(new URL(`../src/postgres/sql/${f}`, import.meta.url), 'utf8'),
    );
    expect(schemaSql().replace(/"(retrykit_\w+)"/g, '$1')).toBe(['', ...files].join('\n'));
    expect(schemaSql({ schema: 's', idempotencyTable: 'i' })).toContain(
      'CREATE INDEX IF NOT EXISTS "i_expires_at_idx"\n  ON "s"."i" (expires_at);',
    );
    const renamed = schemaSql({ deliveryTable: 'd', deliveryAttemptsTable: 'da' });
    expect(renamed).toContain('REFERENCES "d" (key) ON DELETE CASCADE');
    expect(renamed).toContain('"da_external_id_idx"\n  ON "da" (external_id)');
    expect(renamed).toContain('"d_due_at_idx"\n  ON "d" (due_at)');
    expect(renamed).not.toMatch(/retrykit_deliver/);
  });

  it('rejects bad names and clients naming the option and the value', () => {
    expect(() => createPostgresIdempotencyStore(db.pool, { table: '' })).toThrow(
      /table must be a non-empty string, got ""/,
    );
    expect(() => createPostgresDeadLetterQueue(db.pool, { schema: 'x'.repeat(64) })).toThrow(
      /schema must be at most 63 bytes/,
    );
    expect(() => schemaSql({ deadLetterTable: 7 as never })).toThrow(/deadLetterTable.*got 7/);
    expect(() => createPostgresIdempotencyStore({} as never)).toThrow(/db must be a pg Pool/);
    expect(() => createPostgresIdempotencyStore(db.pool, { serializer: {} as never })).toThrow(
      /serializer\.serialize must be a function/,
    );
  });

  it('runs fn once for 50 concurrent idempotent() calls over a pool and a single client', async () => {
    const { idempotency } = await db.tables('once');
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    try {
      const options = { schema: db.schema, table: idempotency };
      const stores = [
        createPostgresIdempotencyStore(db.pool, options),
        createPostgresIdempotencyStore(client, options),
      ];
      let runs = 0;
      const fn = async () => {
        runs++;
        await new Promise((resolve) => setTimeout(resolve, 50));
        return { wamid: 'wamid.1', runs };
      };
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          idempotent(stores[i % 2]!, 'send:1', fn, { waitForResultMs: 10_000 }),
        ),
      );
      expect(runs).toBe(1);
      expect(results).toEqual(Array(50).fill({ wamid: 'wamid.1', runs: 1 }));
    } finally {
      await client.end();
    }
  });

  it("keeps leases on the database's clock, whatever the client's clock says", async () => {
    const { idempotency } = await db.tables('clock');
    const events: unknown[] = [];
    const store = createPostgresIdempotencyStore(db.pool, {
      schema: db.schema,
      table: idempotency,
      clock: { now: () => 1e15, sleep: async () => {} },
      onEvent: (e) => events.push(e),
    });
    await store.claim('k', { leaseMs: 30_000 });
    const { rows } = await db.pool.query(
      `SELECT extract(epoch FROM expires_at - clock_timestamp()) * 1000 AS left FROM "${db.schema}"."${idempotency}"`,
    );
    expect(Number(rows[0].left)).toBeGreaterThan(25_000);
    expect(Number(rows[0].left)).toBeLessThanOrEqual(30_000);
    expect(await store.claim('k', { leaseMs: 30_000 })).toMatchObject({ status: 'in_progress' });
    expect(events).toEqual([
      { type: 'idempotency_hit', time: 1e15, key: 'k', status: 'in_progress' },
    ]);
  });

  it('deleteExpired removes only expired rows, in batches', async () => {
    const { idempotency } = await db.tables('sweep');
    const store = createPostgresIdempotencyStore(db.pool, {
      schema: db.schema,
      table: idempotency,
    });
    for (let i = 0; i < 5; i++) await store.markOnce(`old${i}`, 1);
    await store.markOnce('fresh', 60_000);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await store.deleteExpired({ limit: 3 })).toBe(3);
    expect(await store.deleteExpired()).toBe(2);
    expect(await store.deleteExpired()).toBe(0);
    expect(await store.markOnce('fresh', 60_000)).toBe(false);
    await expect(store.deleteExpired({ limit: 0 })).rejects.toThrow(/limit.*0/);
  });

  it('deleteExpired finds expired rows by index condition, not by reading the whole table', async () => {
    const { idempotency } = await db.tables('sweep_plan');
    const table = `"${db.schema}"."${idempotency}"`;
    await db.pool.query(
      `INSERT INTO ${table} (kind, key, state, expires_at)
       SELECT 'mark', 'k' || g, 'marked', now() + g * interval '1 second'
       FROM generate_series(1, 2000) g`,
    );
    await db.pool.query(`ANALYZE ${table}`);
    const client = await db.pool.connect();
    try {
      await client.query('SET enable_seqscan = off');
      const { rows } = await client.query(
        `EXPLAIN ${idempotencyStatements(table).deleteExpired}`,
        [10],
      );
      expect(rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(
        /Index Cond: \(expires_at <= \$\d+\)/,
      );
    } finally {
      await client.query('RESET enable_seqscan');
      client.release();
    }
  });

  it('refuses a result JSON would change, before writing', async () => {
    const { idempotency } = await db.tables('serial');
    const store = createPostgresIdempotencyStore(db.pool, {
      schema: db.schema,
      table: idempotency,
    });
    const claim = await store.claim('k', { leaseMs: 30_000 });
    if (claim.status !== 'claimed') throw new Error('expected a claim');
    await expect(
      store.complete('k', claim.token, { id: 10n }, { resultTtlMs: 1000 }),
    ).rejects.toThrow(/result\.id is a bigint/);
    expect(await store.claim('k', { leaseMs: 30_000 })).toMatchObject({ status: 'in_progress' });
  });

  it('rejects with StoreUnavailableError when PostgreSQL is unreachable or the connection is cut, never "first time"', async () => {
    const target = new URL(pgUrl);
    const proxy = await startTcpProxy(Number(target.port || 5432));
    const pool = testPool({
      connectionString: through(proxy.port),
      connectionTimeoutMillis: 1_000,
    });
    try {
      const store = createPostgresIdempotencyStore(pool, {
        schema: db.schema,
        table: (await db.tables('down')).idempotency,
      });
      expect(await store.markOnce('m', 60_000)).toBe(true);
      proxy.refuse(true);
      proxy.cut();
      const fn = vi.fn(async () => 'ran');
      for (const call of [
        store.markOnce('m', 60_000),
        store.claim('k', { leaseMs: 1000 }),
        idempotent(store, 'k', fn),
        idempotentTransaction(pool, 'k', fn, { schema: db.schema }),
      ]) {
        await expect(call).rejects.toBeInstanceOf(StoreUnavailableError);
      }
      expect(fn).not.toHaveBeenCalled();
    } finally {
      proxy.refuse(false);
      await pool.end();
    }
  });

  it('rethrows a database error that is not an outage (a missing table) as it is', async () => {
    const store = createPostgresIdempotencyStore(db.pool, { schema: db.schema, table: 'absent' });
    const error = await store.markOnce('k', 1000).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({ code: '42P01' });
  });

  it('redrive passes by an entry another transaction has locked instead of waiting (SKIP LOCKED)', async () => {
    const { deadLetters } = await db.tables('skip');
    const dlq = createPostgresDeadLetterQueue(db.pool, { schema: db.schema, table: deadLetters });
    await dlq.add(letter(0));
    await dlq.add(letter(1));
    const locker = await db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(
        `SELECT 1 FROM "${db.schema}"."${deadLetters}" WHERE id = 'm-0' FOR UPDATE`,
      );
      const report = await dlq.redrive({}, () => {});
      expect(report).toEqual({ redriven: ['m-1'], failed: [], skipped: ['m-0'] });
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    expect((await dlq.redrive({}, () => {})).redriven).toEqual(['m-0']);
  });
});

describePostgres('idempotentTransaction', () => {
  const db = useTestSchema('tx');

  async function setup(name: string) {
    const { idempotency } = await db.tables(name);
    const effects = `"${db.schema}"."${name}_effects"`;
    await db.pool.query(`CREATE TABLE ${effects} (key text NOT NULL, note text)`);
    const count = async (key: string) =>
      Number(
        (await db.pool.query(`SELECT count(*) AS n FROM ${effects} WHERE key = $1`, [key])).rows[0]
          .n,
      );
    return { options: { schema: db.schema, table: idempotency }, effects, count, idempotency };
  }

  it("commits fn's writes and the key together; later calls get the result without running fn", async () => {
    const { options, effects, count } = await setup('commit');
    const fn = vi.fn(async (tx: pg.PoolClient) => {
      const { rows } = await tx.query(
        `INSERT INTO ${effects} (key, note) VALUES ('a', 'first') RETURNING note`,
      );
      return { note: rows[0].note as string };
    });
    expect(await idempotentTransaction(db.pool, 'a', fn, options)).toEqual({ note: 'first' });
    expect(await idempotentTransaction(db.pool, 'a', fn, options)).toEqual({ note: 'first' });
    expect(fn).toHaveBeenCalledTimes(1);
    expect(await count('a')).toBe(1);
    const store = createPostgresIdempotencyStore(db.pool, options);
    expect(await store.claim('a', { leaseMs: 1000 })).toEqual({
      status: 'completed',
      result: { note: 'first' },
    });
  });

  it('rolls back the writes and frees the key when fn throws, or the result cannot be stored', async () => {
    const { options, effects, count } = await setup('rollback');
    const write = (tx: pg.PoolClient) => tx.query(`INSERT INTO ${effects} (key) VALUES ('b')`);
    await expect(
      idempotentTransaction(
        db.pool,
        'b',
        async (tx) => {
          await write(tx);
          throw new Error('boom');
        },
        options,
      ),
    ).rejects.toThrow('boom');
    await expect(
      idempotentTransaction(
        db.pool,
        'b',
        async (tx) => {
          await write(tx);
          return { at: 1n };
        },
        options,
      ),
    ).rejects.toThrow(/result\.at is a bigint/);
    expect(await count('b')).toBe(0);
    expect(
      await idempotentTransaction(db.pool, 'b', async (tx) => (await write(tx)).rowCount, options),
    ).toBe(1);
    expect(await count('b')).toBe(1);
    expect(db.pool.totalCount).toBeLessThanOrEqual(4);
  });

  it('a duplicate waits on the row lock, then gets the stored result; or runs fn if the first rolled back', async () => {
    const { options, effects, count } = await setup('wait');
    for (const outcome of ['commit', 'rollback'] as const) {
      const key = `w-${outcome}`;
      const started = deferred();
      const finish = deferred();
      const first = idempotentTransaction(
        db.pool,
        key,
        async (tx) => {
          await tx.query(`INSERT INTO ${effects} (key, note) VALUES ($1, 'first')`, [key]);
          started.resolve();
          await finish.promise;
          if (outcome === 'rollback') throw new Error('first failed');
          return 'first';
        },
        options,
      ).catch((e: Error) => e.message);
      await started.promise;
      const second = idempotentTransaction(
        db.pool,
        key,
        async (tx) => {
          await tx.query(`INSERT INTO ${effects} (key, note) VALUES ($1, 'second')`, [key]);
          return 'second';
        },
        options,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      finish.resolve();
      if (outcome === 'commit') {
        expect([await first, await second]).toEqual(['first', 'first']);
      } else {
        expect([await first, await second]).toEqual(['first failed', 'second']);
      }
      expect(await count(key)).toBe(1);
    }
  });

  it('fails a duplicate with IdempotencyInProgressError after waitForResultMs on the lock', async () => {
    const { options } = await setup('timeout');
    const finish = deferred();
    const started = deferred();
    const first = idempotentTransaction(
      db.pool,
      'k',
      async () => {
        started.resolve();
        await finish.promise;
        return 1;
      },
      options,
    );
    await started.promise;
    const error = await idempotentTransaction(db.pool, 'k', async () => 2, {
      ...options,
      waitForResultMs: 200,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyInProgressError);
    expect(error).toMatchObject({ key: 'k' });
    finish.resolve();
    expect(await first).toBe(1);
  });

  it('completes however long fn runs: the claim inside the transaction has no lease to lose', async () => {
    const { options, idempotency } = await setup('long');
    const result = await idempotentTransaction(
      db.pool,
      'slow',
      async (tx) => {
        // An hour passes for the row, as far as any lease is concerned.
        await tx.query(
          `UPDATE "${db.schema}"."${idempotency}" SET expires_at = expires_at - interval '1 hour'`,
        );
        return 'done';
      },
      options,
    );
    expect(result).toBe('done');
    const store = createPostgresIdempotencyStore(db.pool, options);
    expect(await store.claim('slow', { leaseMs: 1000 })).toEqual({
      status: 'completed',
      result: 'done',
    });
  });

  it('a connection cut inside the transaction rolls it back: StoreUnavailableError, key free, no writes', async () => {
    const { options, effects, count } = await setup('cut');
    const proxy = await startTcpProxy(Number(new URL(pgUrl).port || 5432));
    const pool = testPool({
      connectionString: through(proxy.port),
      connectionTimeoutMillis: 1_000,
    });
    try {
      const error = await idempotentTransaction(
        pool,
        'c',
        async (tx) => {
          await tx.query(`INSERT INTO ${effects} (key) VALUES ('c')`);
          proxy.cut();
          return 'cut';
        },
        options,
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error).toMatchObject({ operation: 'complete' });
    } finally {
      await pool.end().catch(() => {});
    }
    await expect.poll(() => count('c')).toBe(0);
    expect(await idempotentTransaction(db.pool, 'c', async () => 'again', options)).toBe('again');
  });

  it('under serializable isolation, concurrent duplicates still run fn once', async () => {
    const { options, effects, count } = await setup('serializable');
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        idempotentTransaction(
          db.pool,
          's',
          async (tx) => {
            await tx.query(`INSERT INTO ${effects} (key) VALUES ('s')`);
            await new Promise((resolve) => setTimeout(resolve, 20));
            return 'once';
          },
          { ...options, isolationLevel: 'serializable' },
        ),
      ),
    );
    expect(results).toEqual(Array(6).fill('once'));
    expect(await count('s')).toBe(1);
  });

  it('answers a different fingerprint with IdempotencyKeyReuseError', async () => {
    const { options } = await setup('fingerprint');
    await idempotentTransaction(db.pool, 'k', async () => 1, { ...options, fingerprint: 'a' });
    await expect(
      idempotentTransaction(db.pool, 'k', async () => 2, { ...options, fingerprint: 'b' }),
    ).rejects.toBeInstanceOf(IdempotencyKeyReuseError);
  });

  it('on a single pg.Client, calls take turns', async () => {
    const { options, effects, count } = await setup('client');
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    try {
      const results = await Promise.all(
        ['x', 'y', 'x', 'y', 'x'].map((key) =>
          idempotentTransaction(
            client,
            key,
            async (tx) => {
              await tx.query(`INSERT INTO ${effects} (key) VALUES ($1)`, [key]);
              return key.toUpperCase();
            },
            options,
          ),
        ),
      );
      expect(results).toEqual(['X', 'Y', 'X', 'Y', 'X']);
      expect([await count('x'), await count('y')]).toEqual([1, 1]);
    } finally {
      await client.end();
    }
  });

  it("waits for a store's claim of the key, then gets its result", async () => {
    const { options } = await setup('mixed');
    const store = createPostgresIdempotencyStore(db.pool, options);
    const claim = await store.claim('k', { leaseMs: 60_000 });
    if (claim.status !== 'claimed') throw new Error('expected a claim');
    const fn = vi.fn(async () => 'tx');
    const waiting = idempotentTransaction(db.pool, 'k', fn, options);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await store.complete('k', claim.token, 'store', { resultTtlMs: 60_000 });
    expect(await waiting).toBe('store');
    expect(fn).not.toHaveBeenCalled();
  });

  it('rejects bad arguments naming them', async () => {
    await expect(idempotentTransaction(db.pool, '', async () => 1)).rejects.toThrow(
      /key must not be empty/,
    );
    await expect(
      idempotentTransaction(db.pool, 'k', async () => 1, { waitForResultMs: -1 }),
    ).rejects.toThrow(/waitForResultMs.*-1/);
    await expect(
      idempotentTransaction(db.pool, 'k', async () => 1, { isolationLevel: 'chaos' as never }),
    ).rejects.toThrow(/isolationLevel must be one of/);
    await expect(idempotentTransaction(db.pool, 'k', 'fn' as never)).rejects.toThrow(
      /fn must be a function/,
    );
  });
});
