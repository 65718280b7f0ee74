import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { expect, it } from 'vitest';
import { type DeliveryStatusReport, StoreUnavailableError } from '../src/index.js';
import { deliveryStatements } from '../src/postgres/delivery-store.js';
import { createPostgresDeliveryStore } from '../src/postgres/index.js';
import { seededRandom } from '../src/testing/index.js';
import {
  advanceDeliveryTime,
  describePostgres,
  pgUrl,
  testPool,
  useTestSchema,
} from './support/postgres.js';
import { startTcpProxy } from './support/tcp-proxy.js';

const T = 1_700_000_000_000;
const report = (status: string, rank: number, timestampMs: number): DeliveryStatusReport => ({
  status,
  rank,
  timestampMs,
});
const SENT_EARLY = report('sent', 1, T + 500);
const SENT = report('sent', 1, T + 1_000);
const DELIVERED = report('delivered', 2, T + 2_000);
const READ = report('read', 3, T + 3_000);
const FAILED = report('failed', 5, T + 4_000);

function shuffle<X>(items: X[], random: () => number): X[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as X, items[i] as X];
  }
  return items;
}

/** The test database's URL with its host and port replaced by a proxy's. */
function through(port: number): string {
  const url = new URL(pgUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return url.toString();
}

describePostgres('createPostgresDeliveryStore', () => {
  const db = useTestSchema('delivery');
  const pools: pg.Pool[] = [];
  /** `n` stores on the same tables, each on its own pool (its own connections). */
  const storesOn = (n: number, tables: { deliveries: string; deliveryAttempts: string }) =>
    Array.from({ length: n }, () => {
      const pool = testPool({ max: 4 });
      pools.push(pool);
      return createPostgresDeliveryStore(pool, {
        schema: db.schema,
        table: tables.deliveries,
        attemptsTable: tables.deliveryAttempts,
      });
    });
  const endPools = () => Promise.all(pools.splice(0).map((p) => p.end()));

  it('folds concurrent out-of-order statuses for each wamid, from 4 pools at once, to the top rank', async () => {
    const tables = await db.tables('race');
    const stores = storesOn(4, tables);
    const [store] = stores;
    if (store === undefined) throw new Error('no store');
    try {
      const n = 60;
      const wamids = Array.from({ length: n }, (_, i) => `wamid.race-${i}`);
      // Every fifth message fails after being read: failed is final.
      const finalOf = (i: number) => (i % 5 === 0 ? FAILED : READ);
      for (const [i, wamid] of wamids.entries()) {
        await store.begin(`k${i}`, { i });
        await store.recordAttempt(`k${i}`, { attemptId: `k${i}#1`, externalId: wamid, at: T });
      }
      // Each wamid's reports side by side, shuffled, on different pools: they reach the
      // database together.
      const random = seededRandom(7);
      const jobs = wamids.flatMap((wamid, i) => {
        const reports = [SENT, SENT_EARLY, DELIVERED, DELIVERED, READ, READ];
        if (finalOf(i) === FAILED) reports.push(FAILED, FAILED);
        return shuffle(reports, random).map((r) => ({ wamid, r }));
      });
      const outcomes = await Promise.all(
        jobs.map(({ wamid, r }, j) => stores[j % stores.length]?.applyStatus(wamid, r)),
      );
      expect(outcomes.every((o) => o !== undefined && o.outcome !== 'unknown')).toBe(true);
      for (const [i] of wamids.entries()) {
        const top = finalOf(i);
        const attempt = (await store.get(`k${i}`))?.attempts[0];
        expect(attempt).toMatchObject({
          status: top.status,
          rank: top.rank,
          statusAt: top.timestampMs,
          statusTimes: {
            sent: SENT_EARLY.timestampMs,
            delivered: DELIVERED.timestampMs,
            read: READ.timestampMs,
            ...(top === FAILED ? { failed: FAILED.timestampMs } : {}),
          },
        });
      }
      const { rows } = await db.pool.query(
        `SELECT status, count(*)::int AS n FROM "${db.schema}"."${tables.deliveryAttempts}"
         GROUP BY status ORDER BY status`,
      );
      expect(rows).toEqual([
        { status: 'failed', n: n / 5 },
        { status: 'read', n: n - n / 5 },
      ]);
    } finally {
      await endPools();
    }
  });

  it('folds out-of-order statuses raced from 3 processes at once to the top rank', async () => {
    const tables = await db.tables('procs');
    const store = createPostgresDeliveryStore(db.pool, {
      schema: db.schema,
      table: tables.deliveries,
      attemptsTable: tables.deliveryAttempts,
    });
    const n = 100;
    for (let i = 0; i < n; i++) {
      await store.begin(`k${i}`, 'p');
      await store.recordAttempt(`k${i}`, { attemptId: `k${i}#1`, externalId: `w${i}`, at: T });
    }
    const random = seededRandom(3);
    const jobs = Array.from({ length: n }, (_, i) =>
      shuffle(
        [SENT, DELIVERED, READ, i % 4 === 0 ? FAILED : READ, SENT_EARLY, DELIVERED],
        random,
      ).map((r) => [`w${i}`, r] as const),
    ).flat();
    const processes = 3;
    const children = Array.from({ length: processes }, () =>
      spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '--import',
          './tools/lua-loader.mjs',
          'test/fixtures/postgres-delivery-worker.ts',
        ],
        {
          cwd: fileURLToPath(new URL('..', import.meta.url)),
          env: {
            ...process.env,
            PG_URL: pgUrl,
            SCHEMA: db.schema,
            TABLE: tables.deliveries,
            ATTEMPTS_TABLE: tables.deliveryAttempts,
          },
          stdio: ['pipe', 'pipe', 'inherit'],
        },
      ),
    );
    const exits = children.map((child) => once(child, 'exit'));
    const lines = children.map((child) => {
      const read = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      return read[Symbol.asyncIterator]();
    });
    // Every process connected first, then all get their share at the same moment: each
    // wamid's reports are spread over the three.
    for (const it of lines) expect((await it.next()).value).toBe('ready');
    for (const [p, child] of children.entries()) {
      child.stdin?.end(JSON.stringify(jobs.filter((_, j) => j % processes === p)));
    }
    const results = await Promise.all(
      lines.map(async (it) => JSON.parse(String((await it.next()).value)) as { unknown: number }),
    );
    expect((await Promise.all(exits)).map(([code]) => code)).toEqual([0, 0, 0]);
    expect(results.map((r) => r.unknown)).toEqual([0, 0, 0]);
    for (let i = 0; i < n; i++) {
      const top = i % 4 === 0 ? FAILED : READ;
      expect((await store.get(`k${i}`))?.attempts[0]).toMatchObject({
        status: top.status,
        statusAt: top.timestampMs,
        statusTimes: { sent: SENT_EARLY.timestampMs, delivered: DELIVERED.timestampMs },
      });
    }
  }, 30_000);

  it('attaches a lost wamid once when its statuses race in by alias from several pools', async () => {
    const tables = await db.tables('alias');
    const stores = storesOn(3, tables);
    const [store] = stores;
    if (store === undefined) throw new Error('no store');
    try {
      const n = 20;
      for (let i = 0; i < n; i++) {
        await store.begin(`k${i}`, 'p', { alias: `tag-${i}`, dueInMs: 60_000 });
        await store.recordAttempt(`k${i}`, { attemptId: `k${i}#1`, at: T });
      }
      const jobs = shuffle(
        Array.from({ length: n }, (_, i) =>
          [SENT, DELIVERED, READ].map((r) => ({ i, r: { ...r, alias: `tag-${i}` } })),
        ).flat(),
        seededRandom(11),
      );
      const outcomes = await Promise.all(
        jobs.map(({ i, r }, j) => stores[j % stores.length]?.applyStatus(`wamid.lost-${i}`, r)),
      );
      for (let i = 0; i < n; i++) {
        const mine = outcomes.filter((_, j) => jobs[j]?.i === i);
        expect(mine.filter((o) => o?.outcome !== 'unknown' && o?.attached)).toHaveLength(1);
        expect(await store.findKey(`wamid.lost-${i}`)).toBe(`k${i}`);
        expect((await store.get(`k${i}`))?.attempts[0]).toMatchObject({
          externalId: `wamid.lost-${i}`,
          status: 'read',
        });
      }
    } finally {
      await endPools();
    }
  });

  it('never hands one record to two claimers racing from 4 pools, and hands out every due one', async () => {
    const tables = await db.tables('claim');
    const stores = storesOn(4, tables);
    const [store] = stores;
    if (store === undefined) throw new Error('no store');
    try {
      const n = 120;
      for (let i = 0; i < n; i++) await store.begin(`k${i}`, 'p', { dueInMs: 0 });
      await store.begin('later', 'p', { dueInMs: 600_000 });
      const claimer = async (s: typeof store) => {
        const got: string[] = [];
        for (;;) {
          const batch = await s.claimDue({ limit: 7, leaseMs: 60_000 });
          if (batch.length === 0) return got;
          got.push(...batch.map((c) => c.record.key));
        }
      };
      const claimed = (await Promise.all([...stores, ...stores].map(claimer))).flat();
      expect(claimed).toHaveLength(n);
      expect(new Set(claimed).size).toBe(n);
      expect(claimed).not.toContain('later');
    } finally {
      await endPools();
    }
  });

  it('deletes expired records with their attempts in batches, and keeps live ones', async () => {
    const tables = await db.tables('expire');
    const store = createPostgresDeliveryStore(db.pool, {
      schema: db.schema,
      table: tables.deliveries,
      attemptsTable: tables.deliveryAttempts,
      recordTtlMs: 10_000,
    });
    for (const key of ['a', 'b', 'c']) {
      await store.begin(key, 'p', { dueInMs: 0 });
      await store.recordAttempt(key, { attemptId: `${key}#1`, externalId: `w-${key}`, at: T });
    }
    await advanceDeliveryTime(db.pool, db.schema, tables.deliveries, 10_001);
    await store.begin('live', 'p');
    expect(await store.deleteExpired({ limit: 2 })).toBe(2);
    expect(await store.deleteExpired()).toBe(1);
    expect(await store.deleteExpired()).toBe(0);
    const count = async (table: string) =>
      (await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}"."${table}"`)).rows[0]?.n;
    expect(await count(tables.deliveries)).toBe(1);
    expect(await count(tables.deliveryAttempts)).toBe(0);
    await expect(store.deleteExpired({ limit: 0 })).rejects.toThrow(/limit must be .*, got 0/);
  });

  it('deleteExpired and claimDue pass by a record another transaction holds instead of waiting', async () => {
    const tables = await db.tables('held');
    const store = createPostgresDeliveryStore(db.pool, {
      schema: db.schema,
      table: tables.deliveries,
      attemptsTable: tables.deliveryAttempts,
      recordTtlMs: 10_000,
    });
    for (const key of ['held', 'free']) await store.begin(key, 'p');
    await advanceDeliveryTime(db.pool, db.schema, tables.deliveries, 10_001);
    for (const key of ['held-due', 'free-due']) await store.begin(key, 'p', { dueInMs: 0 });
    const locker = await db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(
        `SELECT 1 FROM "${db.schema}"."${tables.deliveries}" WHERE key IN ('held', 'held-due') FOR UPDATE`,
      );
      // Both would wait for the locker's COMMIT (forever, here) if they did not skip.
      expect(await store.deleteExpired()).toBe(1);
      const claimed = await store.claimDue({ limit: 10, leaseMs: 1_000 });
      expect(claimed.map((c) => c.record.key)).toEqual(['free-due']);
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    expect(await store.deleteExpired()).toBe(1);
    expect((await store.claimDue({ limit: 10, leaseMs: 1_000 })).map((c) => c.record.key)).toEqual([
      'held-due',
    ]);
  });

  it('validates its options, naming the option and the value', () => {
    expect(() => createPostgresDeliveryStore({} as never)).toThrow(/db must be a pg Pool/);
    expect(() => createPostgresDeliveryStore(db.pool, { table: '' })).toThrow(
      /table must be a non-empty string, got ""/,
    );
    expect(() => createPostgresDeliveryStore(db.pool, { attemptsTable: 'x'.repeat(64) })).toThrow(
      /attemptsTable must be at most 63 bytes/,
    );
    expect(() => createPostgresDeliveryStore(db.pool, { recordTtlMs: 0 })).toThrow(
      /recordTtlMs must be .*, got 0/,
    );
    expect(() => createPostgresDeliveryStore(db.pool, { recordTtlMs: Number.NaN })).toThrow(
      /recordTtlMs must be a number, got NaN/,
    );
    expect(() => createPostgresDeliveryStore(db.pool, { serializer: {} as never })).toThrow(
      /serializer\.serialize must be a function/,
    );
  });

  it('rejects with StoreUnavailableError when the connection is cut mid-statement or PostgreSQL is unreachable, without hanging', async () => {
    const tables = await db.tables('down');
    const proxy = await startTcpProxy(Number(new URL(pgUrl).port || 5432));
    const pool = testPool({
      connectionString: through(proxy.port),
      connectionTimeoutMillis: 1_000,
    });
    const store = createPostgresDeliveryStore(pool, {
      schema: db.schema,
      table: tables.deliveries,
      attemptsTable: tables.deliveryAttempts,
    });
    const locker = await db.pool.connect();
    try {
      await store.begin('k', 'p');
      await store.recordAttempt('k', { attemptId: 'k#1', externalId: 'wamid.k', at: T });
      // Another connection holds the record's row: the status waits on it, then its connection dies.
      await locker.query('BEGIN');
      await locker.query(
        `SELECT 1 FROM "${db.schema}"."${tables.deliveries}" WHERE key = 'k' FOR UPDATE`,
      );
      const waiting = store.applyStatus('wamid.k', DELIVERED);
      await new Promise((resolve) => setTimeout(resolve, 100));
      proxy.refuse(true);
      proxy.cut();
      const started = Date.now();
      await expect(waiting).rejects.toBeInstanceOf(StoreUnavailableError);
      for (const call of [
        store.begin('k2', 'p'),
        store.recordAttempt('k', { attemptId: 'k#2', at: T }),
        store.applyStatus('wamid.k', READ),
        store.findKey('wamid.k'),
        store.get('k'),
        store.claimDue({ limit: 1, leaseMs: 1_000 }),
        store.reschedule('k', 'token', null),
        store.deleteExpired(),
      ]) {
        await expect(call).rejects.toBeInstanceOf(StoreUnavailableError);
      }
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
      proxy.refuse(false);
      await pool.end();
      await proxy.close();
    }
    // The cut statement may still have run once the lock was freed (its reply lost): the
    // webhook's retry of the same report is folded in either way.
    const reader = createPostgresDeliveryStore(db.pool, {
      schema: db.schema,
      table: tables.deliveries,
      attemptsTable: tables.deliveryAttempts,
    });
    expect((await reader.applyStatus('wamid.k', DELIVERED)).outcome).toMatch(/^(applied|stale)$/);
    expect((await reader.get('k'))?.attempts[0]).toMatchObject({
      status: 'delivered',
      statusTimes: { delivered: DELIVERED.timestampMs },
    });
  });

  it('claimDue and deleteExpired find their rows by index condition, not by reading the whole index', async () => {
    const { deliveries, deliveryAttempts } = await db.tables('plan');
    const table = `"${db.schema}"."${deliveries}"`;
    await db.pool.query(
      `INSERT INTO ${table} (key, payload, created_at, expires_at, due_at, lease_token)
       SELECT 'k' || g, '1', now(), now() + interval '1 day', now() + g * interval '1 second', 't'
       FROM generate_series(1, 2000) g`,
    );
    await db.pool.query(`ANALYZE ${table}`);
    const sql = deliveryStatements(table, `"${db.schema}"."${deliveryAttempts}"`);
    const client = await db.pool.connect();
    try {
      // Whatever the planner thinks of a small table: only an index plan is left to look at.
      await client.query('SET enable_seqscan = off');
      const plan = async (text: string, values: unknown[]) =>
        (await client.query(`EXPLAIN ${text}`, values)).rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(await plan(sql.claim, [10, 1_000, 60_000])).toMatch(/Index Cond: \(due_at <= \$\d+\)/);
      expect(await plan(sql.deleteExpired, [10])).toMatch(/Index Cond: \(expires_at <= \$\d+\)/);
    } finally {
      await client.query('RESET enable_seqscan');
      client.release();
    }
  });

  it('rethrows a database error that is not an outage (a missing table) as it is', async () => {
    const store = createPostgresDeliveryStore(db.pool, { schema: db.schema, table: 'absent' });
    const error = await store.get('k').catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({ code: '42P01' });
  });
});

/** The `sql` block of docs/postgres.md whose first line starts with `title`. */
function docsQuery(title: string): string {
  const markdown = readFileSync(new URL('../docs/postgres.md', import.meta.url), 'utf8');
  const blocks = [...markdown.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  const block = blocks.find((b) => b.startsWith(title));
  if (block === undefined) throw new Error(`docs/postgres.md has no sql block "${title}"`);
  return block;
}

describePostgres('docs/postgres.md: the delivery SQL', () => {
  const db = useTestSchema('delivery_sql');

  it('measures delivery rate and send → delivered latency over data written through the store', async () => {
    const { deliveries, deliveryAttempts } = await db.tables('m');
    const store = createPostgresDeliveryStore(db.pool, {
      schema: db.schema,
      table: deliveries,
      attemptsTable: deliveryAttempts,
    });
    const A = Date.now() - 3_600_000;
    const send = async (key: string, n: number, at: number, statuses: [string, number][]) => {
      await store.begin(key, 'p');
      await store.recordAttempt(key, { attemptId: `${key}#${n}`, externalId: `w-${key}-${n}`, at });
      for (const [status, offset] of statuses) {
        const rank = { sent: 1, delivered: 2, read: 3, failed: 5 }[status] ?? 1;
        await store.applyStatus(`w-${key}-${n}`, report(status, rank, at + offset));
      }
    };
    await send('read', 1, A, [
      ['sent', 1_000],
      ['read', 9_000],
      ['delivered', 3_000],
    ]);
    await send('delivered', 1, A, [
      ['sent', 1_000],
      ['delivered', 5_000],
    ]);
    // Failed once (transient), re-sent, delivered 10 s after the re-send.
    await send('resent', 1, A, [['failed', 2_000]]);
    await send('resent', 2, A + 60_000, [['delivered', 10_000]]);
    await send('permanent', 1, A, [['failed', 1_000]]);
    await send('in-flight', 1, A, [['sent', 1_000]]);
    // Read on the phone; its delivered webhook never came.
    await send('read-only', 1, A, [['read', 7_000]]);
    // Two days old: outside both windows.
    const old = A - 2 * 86_400_000;
    await send('old', 1, old, [['delivered', 1_000]]);
    await db.pool.query(
      `UPDATE "${db.schema}"."${deliveries}" SET created_at = created_at - interval '2 days' WHERE key = 'old'`,
    );

    const onTables = (sql: string) =>
      sql
        .replaceAll('retrykit.retrykit_deliveries', `"${db.schema}"."${deliveries}"`)
        .replaceAll('retrykit.retrykit_delivery_attempts', `"${db.schema}"."${deliveryAttempts}"`);
    const rate = await db.pool.query(onTables(docsQuery('-- Delivery rate')));
    expect(rate.rows).toEqual([
      { messages: '6', delivered: '4', failed: '1', delivery_rate: '0.6667' },
    ]);
    const latency = await db.pool.query(onTables(docsQuery('-- Send → delivered latency')));
    expect(latency.rows).toEqual([
      { delivered: '3', p50_ms: 5_000, p95_ms: 9_500, max_ms: '10000' },
    ]);
  });
});
