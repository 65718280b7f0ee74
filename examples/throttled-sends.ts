// WhatsApp sends from a BullMQ queue, two phone numbers sharing one queue: a busy one with a
// backlog and a quiet one. A per-number token bucket and the Cloud API's own 130429s defer a
// throttled job to BullMQ's delayed set without spending one of its attempts, so the quiet
// number's messages go out at once instead of waiting behind the busy one's backlog. A
// bulkhead caps each number's sends in flight.
//
//   npx tsx examples/throttled-sends.ts
//
// Needs a Redis at REDIS_URL (default redis://127.0.0.1:6379). Everything it creates lives
// under a fresh prefix and is removed at the end.
import { type Job, Queue, Worker } from 'bullmq';
import { createBulkhead, createMemoryDeadLetterQueue, createMemoryTokenBucket } from 'retrykit';
import { createBackoffStrategy, RETRYKIT_JOB_OPTIONS, wrapProcessor } from 'retrykit/bullmq';
import { type CloudMessage, createWhatsAppClient } from 'retrykit/whatsapp';
import { startFakeWhatsApp } from './support/fake-whatsapp.js';

interface Send {
  readonly phoneNumberId: string;
  readonly message: CloudMessage;
}

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const { hostname, port } = new URL(url);
const connection = { host: hostname, port: Number(port || 6379), maxRetriesPerRequest: null };
const prefix = `retrykit-example-${process.pid}`;
const watchdog = setTimeout(() => {
  console.error('example timed out');
  process.exit(1);
}, 30_000);
watchdog.unref();

// --- A loopback Cloud API: 25 messages a second per number, and a few stray 130429s.
const fake = await startFakeWhatsApp({ rateLimitPerSecond: 25, faults: { rateLimit: 0.05 } });

// --- retrykit wiring: one client per number, one bulkhead and one limiter for all of them.
const bulkhead = createBulkhead({ maxConcurrent: 4, maxQueued: 16 });
const clients = new Map(
  ['PN-BUSY', 'PN-QUIET'].map((phoneNumberId) => [
    phoneNumberId,
    createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId,
      baseUrl: fake.url,
      bulkhead,
      // No waiting inside the job: a 130429 leaves the client and the job is deferred.
      retry: { maxAttempts: 1 },
    }),
  ]),
);
const perNumber = createMemoryTokenBucket({ capacity: 1, refillPerSecond: 20 });
let deferred = 0;
const strategy = createBackoffStrategy({
  // A deferred job comes back within half a second: short waits suit a short demo backlog.
  backoffByReason: { rate_limited: { initialDelayMs: 100, maxDelayMs: 500 } },
  onEvent: (e) => {
    if (e.type === 'job_retry_scheduled' && e.deferred) deferred++;
  },
});
const dlq = createMemoryDeadLetterQueue<Send>();
const queue = new Queue<Send>('sends', { connection, prefix });
const worker = new Worker<Send>(
  'sends',
  wrapProcessor<Send>(
    async (job: Job<Send>) => {
      const client = clients.get(job.data.phoneNumberId);
      if (client === undefined) throw new Error(`unknown number ${job.data.phoneNumberId}`);
      const sent = await client.sendMessage(job.data.message);
      // `held` (no wamid yet) only with `deliveries`, which these clients have not.
      return sent.status === 'accepted' ? sent.messageId : 'held';
    },
    {
      dlq,
      strategy,
      limiter: perNumber,
      limiterKey: (job) => (job.data as Send).phoneNumberId,
    },
  ),
  { connection, prefix, concurrency: 8, settings: { backoffStrategy: strategy } },
);

// --- 30 messages of the busy number queued first, then 5 of the quiet one.
const started = Date.now();
const lastDone = new Map<string, number>();
const attemptsSpent: number[] = [];
const total = 35;
const finished = new Promise<void>((resolve) => {
  let done = 0;
  worker.on('completed', (job) => {
    lastDone.set(job.data.phoneNumberId, Date.now() - started);
    attemptsSpent.push(job.attemptsMade);
    if (++done === total) resolve();
  });
});
const sends = (phoneNumberId: string, count: number) =>
  Array.from({ length: count }, (_, i) => ({
    name: 'send',
    data: {
      phoneNumberId,
      message: { to: `4915100000${i}`, type: 'text', text: { body: `hello ${i}` } } as CloudMessage,
    },
    opts: RETRYKIT_JOB_OPTIONS,
  }));
await queue.addBulk(sends('PN-BUSY', 30));
await queue.addBulk(sends('PN-QUIET', 5));
await finished;

console.log(`PN-QUIET: 5 sent, the last after ${lastDone.get('PN-QUIET')} ms`);
console.log(`PN-BUSY: 30 sent, the last after ${lastDone.get('PN-BUSY')} ms`);
console.log(`throttles deferred without spending an attempt: ${deferred}`);
console.log(`most attempts one job spent: ${Math.max(...attemptsSpent)}`);
console.log(`dead-lettered: ${await dlq.size()}`);

await worker.close();
await queue.obliterate({ force: true });
await queue.close();
await fake.close();
console.log('done');
