/**
 * Exactly-once database work on PostgreSQL: each incoming WhatsApp message is stored as an
 * order with `idempotentTransaction`, so the order row and the message's idempotency key
 * commit together. The example plays Meta delivering the same message three times at once
 * (and a second message), shows one order per message, then shows a handler that fails
 * mid-transaction leaving neither the order nor the key, and its dead letter kept in the same
 * database.
 *
 *   npx tsx --import ./tools/lua-loader.mjs examples/postgres-idempotency.ts      (DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
 */
import pg from 'pg';
import { toDeadLetter } from 'retrykit';
import {
  createPostgresDeadLetterQueue,
  createSchema,
  idempotentTransaction,
} from 'retrykit/postgres';

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  connectionTimeoutMillis: 5_000,
  query_timeout: 10_000,
});
// A schema of this run's own, dropped at the end; an application uses one fixed schema.
const schema = `retrykit_example_${process.pid}`;

interface Message {
  readonly wamid: string;
  readonly from: string;
  readonly text: string;
}

/** Your webhook's work: one order per message, in the same transaction as the key. */
function storeOrder(message: Message, fail = false) {
  return idempotentTransaction(
    pool,
    `wamid:${message.wamid}`,
    async (tx) => {
      const { rows } = await tx.query<{ id: number }>(
        `INSERT INTO "${schema}".orders (customer, item) VALUES ($1, $2) RETURNING id`,
        [message.from, message.text],
      );
      if (fail) throw new Error('stock service said no');
      return { orderId: rows[0]?.id };
    },
    { schema },
  );
}

try {
  await createSchema(pool, { schema });
  await pool.query(
    `CREATE TABLE "${schema}".orders (id serial PRIMARY KEY, customer text NOT NULL, item text NOT NULL)`,
  );

  const first: Message = {
    wamid: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgA',
    from: '16505551234',
    text: 'tea',
  };
  const second: Message = {
    wamid: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgB',
    from: '16505550000',
    text: 'cake',
  };
  const results = await Promise.all([
    storeOrder(first),
    storeOrder(first),
    storeOrder(second),
    storeOrder(first),
  ]);
  console.log(`4 deliveries of 2 messages answered ${JSON.stringify(results)}`);

  const failing: Message = {
    wamid: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgC',
    from: '16505559999',
    text: 'pie',
  };
  const dlq = createPostgresDeadLetterQueue(pool, { schema });
  try {
    await storeOrder(failing, true);
  } catch (error) {
    await dlq.add(toDeadLetter(error, { payload: failing, id: failing.wamid, source: 'webhook' }));
    console.log(`${failing.wamid} failed: ${(error as Error).message}; dead-lettered`);
  }

  const { rows } = await pool.query(`SELECT customer, item FROM "${schema}".orders ORDER BY id`);
  console.log(`orders: ${rows.length} ${JSON.stringify(rows)}`);
  const page = await dlq.list();
  console.log(`dead letters: ${page.entries.map((e) => `${e.id} (${e.reason})`).join(', ')}`);

  // The failed one, redriven once the stock service is back: now it commits, once.
  const report = await dlq.redrive({}, (entry) => storeOrder(entry.payload as Message));
  const after = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".orders`);
  console.log(`redriven ${report.redriven.join(', ')}; orders now ${after.rows[0].n}`);
} finally {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
  await pool.end();
}
