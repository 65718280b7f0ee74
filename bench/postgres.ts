import pg from 'pg';
import { idempotent } from '../src/index.js';
import { type BenchSuite, interleaved, ratioTable } from './harness.js';

/** DATABASE_URL, PG_URL, or the local default. */
const url =
  process.env.DATABASE_URL || process.env.PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

export const postgresSuite: BenchSuite = {
  name: 'postgres',
  async run({ timeMs }) {
    // Source `.sql` files load as text only with this hook (the build inlines them).
    await import('../tools/lua-loader.mjs');
    const { createPostgresIdempotencyStore, createSchema, idempotentTransaction } = await import(
      '../src/postgres/index.js'
    );
    // One connection: one caller at a time, every case on the same socket and server process.
    // Commits don't wait for the disk flush (`synchronous_commit = off`, this session only):
    // the flush costs every case the same per commit, and on a shared disk its swings hide the
    // differences this compares. `PG_BENCH_SYNC=on` measures with it.
    const synchronousCommit = process.env.PG_BENCH_SYNC === 'on' ? 'on' : 'off';
    const client = new pg.Client({
      connectionString: url,
      options: `-c synchronous_commit=${synchronousCommit}`,
    });
    try {
      await client.connect();
    } catch (error) {
      throw new Error(`the postgres benchmark needs PostgreSQL at ${url} (set DATABASE_URL)`, {
        cause: error,
      });
    }
    const schema = `rk_bench_${process.pid}`;
    await client.query(`CREATE SCHEMA "${schema}"`);
    try {
      await createSchema(client, { schema });
      await client.query(
        `CREATE TABLE "${schema}".raw (key text PRIMARY KEY, expires_at timestamptz NOT NULL)`,
      );
      await client.query(`CREATE TABLE "${schema}".effects (key text NOT NULL)`);
      const store = createPostgresIdempotencyStore(client, { schema });
      const ttl = 60_000;
      let n = 0;
      const insert = `INSERT INTO "${schema}".raw (key, expires_at)
        VALUES ($1, clock_timestamp() + $2::float8 * interval '1 millisecond')
        ON CONFLICT (key) DO NOTHING`;
      const raw = () => client.query(insert, [`r:${n++}`, ttl]);
      const rawPrepared = () =>
        client.query({ name: 'raw', text: insert, values: [`p:${n++}`, ttl] });
      const results = await interleaved(
        {
          'raw INSERT … ON CONFLICT DO NOTHING': raw,
          markOnce: () => store.markOnce(`m:${n++}`, ttl),
          'raw INSERT, twice in a row': async () => {
            await raw();
            await raw();
          },
          'raw INSERT prepared, twice in a row': async () => {
            await rawPrepared();
            await rawPrepared();
          },
          'claim + complete': async () => {
            const key = `c:${n++}`;
            const claim = await store.claim(key, { leaseMs: 30_000 });
            if (claim.status === 'claimed') {
              await store.complete(key, claim.token, 'ok', { resultTtlMs: ttl });
            }
          },
          'idempotent() (claim + fn + complete)': () =>
            idempotent(store, `i:${n++}`, async () => 'ok', { resultTtlMs: ttl }),
          'idempotentTransaction() with one INSERT': () => {
            const key = `t:${n++}`;
            return idempotentTransaction(
              client,
              key,
              async (tx) =>
                (await tx.query(`INSERT INTO "${schema}".effects (key) VALUES ($1)`, [key]))
                  .rowCount,
              { schema, resultTtlMs: ttl },
            );
          },
        },
        timeMs * 12,
      );
      const vsFloor = (name: string) => results.find((r) => r.name === name)?.paired?.ratio ?? 0;
      const perTrip = (name: string, trips: number) => (vsFloor(name) * trips).toFixed(2);
      const version = (await client.query('SHOW server_version')).rows[0].server_version;
      const sync = (await client.query('SHOW synchronous_commit')).rows[0].synchronous_commit;
      const vsPair = (name: string, pair: string) => (vsFloor(name) / vsFloor(pair)).toFixed(2);
      return [
        '## Idempotency: PostgreSQL against a raw `INSERT … ON CONFLICT DO NOTHING`',
        '',
        `PostgreSQL ${version} on the same machine, one operation at a time on one connection, the`,
        'cases interleaved as in the Redis section. The floor is a bare `INSERT INTO raw (key,',
        'expires_at) VALUES ($1, clock_timestamp() + …) ON CONFLICT DO NOTHING` on a table with a',
        'text primary key (an unnamed statement, as `pool.query(text, values)` sends it): one round',
        'trip, one commit. `markOnce` is one statement; `claim` + `complete` is two (the claiming',
        'upsert, then the fenced `UPDATE`), so it compares against two raw INSERTs in a row. The',
        "store's statements are named prepared statements (`preparedStatements`, the default),",
        'so the same floor prepared is shown too. Commits here do not wait for the disk flush',
        `(\`synchronous_commit = ${sync}\`, this session only): the flush costs every case the same`,
        'per commit, and on a shared disk its swings hide the differences measured. Target:',
        '`claim` + `complete` at least 0.8× two raw INSERTs. `idempotentTransaction()` (BEGIN, claim,',
        'the INSERT, the completion, COMMIT) is shown for reference.',
        '',
        ratioTable(results, 'raw INSERT … ON CONFLICT DO NOTHING'),
        '',
        `\`claim\` + \`complete\` against two raw INSERTs in a row: ${vsPair('claim + complete', 'raw INSERT, twice in a row')} (against two prepared ones: ${vsPair('claim + complete', 'raw INSERT prepared, twice in a row')}). Per statement against the floor: markOnce ${perTrip('markOnce', 1)}, claim + complete ${perTrip('claim + complete', 2)}, idempotent() ${perTrip('idempotent() (claim + fn + complete)', 2)}.`,
      ].join('\n');
    } finally {
      await client.query(`DROP SCHEMA "${schema}" CASCADE`);
      await client.end();
    }
  },
};
