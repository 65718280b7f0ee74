// Durable webhook processing on BullMQ with retrykit: retries spaced by retrykit's backoff,
// permanent failures and exhausted jobs dead-lettered in Redis, then redriven once the
// downstream is fixed.
//
//   npx tsx --import ./tools/lua-loader.mjs examples/bullmq-worker.ts
//
// Needs a Redis at REDIS_URL (default redis://127.0.0.1:6379), or a Redis Cluster at
// REDIS_CLUSTER_NODES (`host:port,host:port,…`, any of its nodes). Everything it creates lives
// under a fresh prefix and is removed at the end.
import { type Job, Queue, QueueEvents, Worker } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { type Classification, composeClassifiers, type DeadLetterEntry } from 'retrykit';
import { createBackoffStrategy, RETRYKIT_JOB_OPTIONS, wrapProcessor } from 'retrykit/bullmq';
import { createRedisDeadLetterQueue } from 'retrykit/redis';

interface Webhook {
  readonly messageId: string;
  readonly from: string;
  readonly text?: string;
}

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const clusterNodes = process.env.REDIS_CLUSTER_NODES?.split(',').map((node) => {
  const [host = '127.0.0.1', port = '6379'] = node.split(':');
  return { host, port: Number(port) };
});
const { hostname, port } = new URL(url);
const name = `retrykit-example-${process.pid}`;
// On a Redis Cluster every key of a BullMQ queue must live in one slot: the queue prefix is a
// hash tag, `{…}`. (retrykit's own keys carry their hash tags already.)
const prefix = clusterNodes === undefined ? name : `{${name}}`;
const connection =
  clusterNodes === undefined
    ? { host: hostname, port: Number(port || 6379), maxRetriesPerRequest: null }
    : new Cluster(clusterNodes, { redisOptions: { maxRetriesPerRequest: null } });
const watchdog = setTimeout(() => {
  console.error('example timed out');
  process.exit(1);
}, 30_000);
watchdog.unref();

// --- The downstream this worker calls (a CRM, a database): flaky, and one message it can't take.
class SchemaError extends Error {
  override readonly name = 'SchemaError';
  readonly status = 400;
}
let crmDown = true;
const calls = new Map<string, number>();
async function saveToCrm(webhook: Webhook): Promise<void> {
  const n = (calls.get(webhook.messageId) ?? 0) + 1;
  calls.set(webhook.messageId, n);
  if (webhook.text === undefined) throw new SchemaError('messages[0].text is missing');
  if (webhook.from === 'outage' && crmDown) {
    throw Object.assign(new Error('CRM 503'), { status: 503 });
  }
  if (webhook.from === 'flaky' && n <= 2) {
    throw Object.assign(new Error('CRM 503'), { status: 503 });
  }
}

// --- retrykit wiring.
const classify = composeClassifiers((error): Classification | undefined =>
  error instanceof SchemaError ? { retryable: false, reason: 'schema_mismatch' } : undefined,
);
const redis = clusterNodes === undefined ? new Redis(url) : new Cluster(clusterNodes);
const dlq = createRedisDeadLetterQueue<Webhook>(redis, { prefix: `${name}:dlq` });
// Four attempts each here (RETRYKIT_JOB_OPTIONS has 6), spaced by retrykit's backoff strategy.
const queue = new Queue<Webhook>('webhooks', {
  connection,
  prefix,
  defaultJobOptions: { ...RETRYKIT_JOB_OPTIONS, attempts: 4 },
});
const events = new QueueEvents('webhooks', { connection, prefix });
await events.waitUntilReady();

// One strategy for BullMQ's delays and for wrapProcessor, which dead-letters at once a job the
// strategy would not retry within its budget (a server asking to wait past it).
const strategy = createBackoffStrategy({
  classify,
  backoff: { initialDelayMs: 100, multiplier: 2, jitter: 'equal' },
  onEvent: (e) => {
    if (e.type === 'job_retry_scheduled') console.log(`retry in ${e.delayMs} ms (${e.reason})`);
  },
});
const worker = new Worker<Webhook>(
  'webhooks',
  wrapProcessor<Webhook>(
    async (job: Job<Webhook>) => {
      // At-least-once delivery: skip the effect if an earlier run of this message did it.
      const key = `${prefix}:done:${job.data.messageId}`;
      if ((await redis.exists(key)) === 1) return 'duplicate';
      await saveToCrm(job.data);
      await redis.set(key, '1', 'EX', 86_400);
      return 'saved';
    },
    { dlq, classify, strategy },
  ),
  {
    connection,
    prefix,
    settings: {
      backoffStrategy: strategy,
    },
  },
);

async function settle(jobs: Job<Webhook>[]): Promise<void> {
  await Promise.all(jobs.map((job) => job.waitUntilFinished(events).catch(() => undefined)));
}

// --- Webhooks arrive: each becomes a durable job, keyed by the message id.
const webhooks: Webhook[] = [
  { messageId: 'wamid.A', from: 'steady', text: 'hi' },
  { messageId: 'wamid.B', from: 'flaky', text: 'order update' },
  { messageId: 'wamid.C', from: 'steady' },
  { messageId: 'wamid.D', from: 'outage', text: 'call me' },
];
const jobs = await Promise.all(
  webhooks.map((w) => queue.add('webhook', w, { jobId: w.messageId })),
);
await settle(jobs);
for (const job of jobs) {
  console.log(`${job.id}: ${await queue.getJobState(job.id as string)}`);
}

const { entries } = await dlq.list();
for (const entry of entries) {
  console.log(
    `dead-lettered: ${entry.payload.messageId} (${entry.reason}, ${entry.disposition}, ${entry.attempts.length} attempts)`,
  );
}

// --- The CRM is back: redrive what ran out of retries; schema errors stay for a person.
crmDown = false;
const redriven: Job<Webhook>[] = [];
const report = await dlq.redrive(
  (entry: DeadLetterEntry<Webhook>) => entry.disposition === 'exhausted',
  async (entry) => {
    redriven.push(
      await queue.add('webhook', entry.payload, { jobId: `${entry.payload.messageId}-redrive` }),
    );
  },
);
await settle(redriven);
console.log(`redriven: ${report.redriven.join(', ')}`);
for (const job of redriven) {
  console.log(`${job.id}: ${await queue.getJobState(job.id as string)}`);
}
console.log(`left in the dead-letter queue: ${await dlq.size()}`);

await worker.close();
await events.close();
await queue.obliterate({ force: true });
await queue.close();
await dlq.purge();
await redis.del(...webhooks.map((w) => `${prefix}:done:${w.messageId}`));
await redis.quit();
if (connection instanceof Cluster) await connection.quit();
console.log('done');
