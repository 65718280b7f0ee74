/**
 * The retrykit demo: a few thousand WhatsApp messages through `createWhatsAppClient` at the
 * 80/s limit, against a loopback fake of the Cloud API that injects 503s, 130429s (HTTP 400),
 * 131026s and hung requests, and that posts status webhooks — duplicated and out of order —
 * to a receiver built on `createWebhookHandler`.
 *
 *   npm run demo                                   # 2,400 messages at 80/s in memory (~30 s)
 *   npm run demo -- --messages 500 --rate 200
 *   npm run demo -- --redis redis://127.0.0.1:6379
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import {
  createMemoryDeadLetterQueue,
  createMemoryIdempotencyStore,
  createMemoryTokenBucket,
  createMetrics,
  type DeadLetterQueue,
  type IdempotencyStore,
  type RateLimiter,
} from 'retrykit';
import {
  type CloudMessage,
  createWebhookHandler,
  createWhatsAppClient,
  reduceStatus,
  type StatusUpdate,
  throughputLimits,
  whatsappDeliveryMetrics,
} from 'retrykit/whatsapp';
import { startFakeWhatsApp } from './support/fake-whatsapp.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2400' },
    rate: { type: 'string', default: '80' },
    redis: { type: 'string' },
    seed: { type: 'string', default: '7' },
  },
});
const total = Number(values.messages);
const rate = Number(values.rate);
const seed = Number(values.seed);
if (!Number.isInteger(total) || total < 1) {
  throw new RangeError(`--messages must be a positive integer, got ${values.messages}`);
}
if (!(rate >= 2)) throw new RangeError(`--rate must be a number >= 2, got ${values.rate}`);

const PHONE_NUMBER_ID = '106540352242922';
const APP_SECRET = 'demo-app-secret';
const started = Date.now();

// Every component reports to one metrics window, WhatsApp delivery included; the final report is
// its snapshot.
const metrics = createMetrics({
  windowMs: 3_600_000,
  sections: [whatsappDeliveryMetrics({ maxTrackedMessages: total + 1000 })],
});
const { onEvent } = metrics;

// ---- stores: in memory, or Redis with --redis ------------------------------------------------
// Pace as WHATSAPP_RATE_LIMITS does: at most 95 % of the limit leaves in any second (90 %
// sustained), and the rest is room for network jitter, which bunches requests on their way.
const limits = throughputLimits(rate);
let limiter: RateLimiter;
let sendStore: IdempotencyStore;
let webhookStore: IdempotencyStore;
let dlq: DeadLetterQueue<CloudMessage>;
/** With --redis: deletes this run's keys and disconnects. */
let closeRedis = async (): Promise<void> => {};
if (values.redis !== undefined) {
  // Loaded only here: the in-memory demo doesn't need ioredis.
  const { Redis } = await import('ioredis');
  const { createRedisDeadLetterQueue, createRedisIdempotencyStore, createRedisTokenBucket } =
    await import('retrykit/redis');
  const client = new Redis(values.redis, { maxRetriesPerRequest: 1 });
  const prefix = `retrykit-demo:${process.pid}:${started}`;
  closeRedis = async () => {
    // Keys are `{prefix:…}` (a Redis Cluster hash tag).
    for await (const keys of client.scanStream({ match: `{${prefix}:*`, count: 1000 })) {
      if ((keys as string[]).length > 0) await client.unlink(...(keys as string[]));
    }
    await client.quit();
  };
  limiter = createRedisTokenBucket(client, { prefix: `${prefix}:rate`, ...limits, onEvent });
  sendStore = createRedisIdempotencyStore(client, { prefix: `${prefix}:send`, onEvent });
  webhookStore = createRedisIdempotencyStore(client, { prefix: `${prefix}:webhook`, onEvent });
  dlq = createRedisDeadLetterQueue<CloudMessage>(client, { prefix: `${prefix}:dlq`, onEvent });
} else {
  limiter = createMemoryTokenBucket({ ...limits, onEvent });
  sendStore = createMemoryIdempotencyStore({ maxEntries: 100_000, onEvent });
  webhookStore = createMemoryIdempotencyStore({ maxEntries: 100_000, onEvent });
  dlq = createMemoryDeadLetterQueue<CloudMessage>({ maxEntries: 100_000, onEvent });
}

// ---- the webhook receiver: createWebhookHandler behind node:http ------------------------------
const states = new Map<string, StatusUpdate>();
let statusEvents = 0;
let staleIgnored = 0;
let webhookDuplicates = 0;
const handle = createWebhookHandler({
  appSecret: APP_SECRET,
  store: webhookStore,
  onEvent,
  enqueue: (updates) => {
    for (const update of updates) {
      if (update.kind !== 'status') continue;
      statusEvents++;
      const current = states.get(update.id);
      const next = reduceStatus(current, update);
      // An older status arriving after a newer one: ignored, the message does not move back.
      if (current !== undefined && next === current && update.status !== current.status) {
        staleIgnored++;
      }
      states.set(update.id, next);
    }
  },
});
const readRaw = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
const receiver = createServer(async (req, res) => {
  const result = await handle({ body: await readRaw(req), headers: req.headers });
  webhookDuplicates += result.duplicates;
  res.writeHead(result.status, { 'content-type': 'text/plain' }).end(result.body);
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhook`;

// ---- the fake Cloud API ----------------------------------------------------------------------
const fake = await startFakeWhatsApp({
  appSecret: APP_SECRET,
  webhookUrl,
  rateLimitPerSecond: rate,
  faults: { serverError: 0.02, rateLimit: 0.02, hang: 0.003 },
  undeliverable: (to) => to.endsWith('13'),
  seed,
});

// ---- the sender ------------------------------------------------------------------------------
let sendDuplicates = 0;
const sendTimes: number[] = [];
const whatsapp = createWhatsAppClient({
  fetch: (url, init) => {
    sendTimes.push(performance.now());
    return fetch(url, init);
  },
  accessToken: fake.accessToken,
  phoneNumberId: PHONE_NUMBER_ID,
  baseUrl: fake.url,
  limiter,
  store: sendStore,
  dlq,
  // A request that times out may have been accepted (the Cloud API takes no idempotency key),
  // and its retry would send the message twice: give a loaded machine room before giving up.
  requestTimeoutMs: 10_000,
  retry: { maxAttempts: 6, backoff: { initialDelayMs: 250, maxDelayMs: 4000 } },
  onEvent,
});

const recipients = Array.from(
  { length: total },
  (_, i) => `49151${String(1_000_000 + i * 7919).slice(-7)}`,
);
let done = 0;
let sent = 0;
let failed = 0;
let next = 0;
const worker = async (): Promise<void> => {
  while (next < total) {
    const i = next++;
    const payload: CloudMessage = {
      to: recipients[i]!,
      type: 'text',
      text: { body: `Order ${i} has shipped` },
    };
    const idempotencyKey = `order-${i}:shipped`;
    // Every 25th message is sent twice at once, as a retried job or a double click would.
    const calls = i % 25 === 0 ? 2 : 1;
    const results = await Promise.allSettled(
      Array.from({ length: calls }, () => whatsapp.sendMessage(payload, { idempotencyKey })),
    );
    for (const r of results) if (r.status === 'fulfilled' && r.value.deduplicated) sendDuplicates++;
    if (results.some((r) => r.status === 'fulfilled')) sent++;
    else failed++;
    done++;
  }
};

const tty = process.stdout.isTTY === true;
const progress = (): string => {
  const seconds = (Date.now() - started) / 1000;
  const retries = metrics.snapshot().retries.scheduled;
  return `${done}/${total} sent ${sent} · dead ${failed} · retries ${retries} · ${(fake.accepted.length / Math.max(seconds, 0.001)).toFixed(1)} msg/s · webhooks ${statusEvents} (${webhookDuplicates} dup) · ${seconds.toFixed(1)} s`;
};
const ticker = setInterval(
  () => {
    if (tty) process.stdout.write(`\r\x1b[2K${progress()}`);
    else console.log(progress());
  },
  tty ? 200 : 5000,
);
ticker.unref();

await Promise.all(Array.from({ length: Math.min(Math.ceil(rate / 2), total) }, worker));
await fake.drainWebhooks();
clearInterval(ticker);
if (tty) process.stdout.write(`\r\x1b[2K${progress()}\n`);

function maxInWindow(times: number[], windowMs = 1000): number {
  let best = 0;
  for (let end = 0, start = 0; end < times.length; end++) {
    while (times[end]! - times[start]! >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

// ---- the report ------------------------------------------------------------------------------
const seconds = (Date.now() - started) / 1000;
const wamids = fake.accepted.map((m) => m.wamid);
const perOrder = new Map<string, number>();
for (const m of fake.accepted) {
  const body = (m.payload.text as { body: string }).body;
  perOrder.set(body, (perOrder.get(body) ?? 0) + 1);
}
const sentTwice = [...perOrder.values()].filter((n) => n > 1).length;
const deadByReason = new Map<string, number>();
const letters = [];
for (let cursor: string | undefined; ; ) {
  const page = await dlq.list({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
  letters.push(...page.entries);
  cursor = page.cursor;
  if (cursor === undefined || page.entries.length === 0) break;
}
for (const entry of letters) {
  const code = entry.attempts.at(-1)?.errorCode;
  const label = `${entry.reason}${code === undefined ? '' : ` (${code})`}, ${entry.disposition}`;
  deadByReason.set(label, (deadByReason.get(label) ?? 0) + 1);
}
const unresolved = wamids.filter((id) => states.get(id)?.status !== fake.finalStatus.get(id));
const attempts = fake.accepted.length + Object.values(fake.faults).reduce((a, b) => a + b, 0);
const pct = (n: number, d: number) => `${((100 * n) / Math.max(d, 1)).toFixed(1)} %`;
const byStatus = (s: string) => [...states.values()].filter((u) => u.status === s).length;

const snap = metrics.snapshot();
const byReason = (counts: Readonly<Partial<Record<string, number>>>) =>
  Object.entries(counts)
    .map(([reason, n]) => `${n} ${reason}`)
    .join(', ');
const rows: [string, string][] = [
  ['Messages', `${total} (${values.redis === undefined ? 'in memory' : `Redis ${values.redis}`})`],
  ['Sent', `${sent}, each accepted once by the API (${sentTwice} sent twice)`],
  [
    'Dead letters',
    `${letters.length}${[...deadByReason].map(([r, n]) => `\n  ${n} × ${r}`).join('')}`,
  ],
  [
    'Requests',
    `${attempts}: ${
      Object.entries(fake.faults)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ') || 'no faults'
    }`,
  ],
  ['Retried', `${snap.retries.scheduled} retries (${byReason(snap.retries.byReason) || 'none'})`],
  ['First-attempt success', pct(snap.ratios.firstAttemptSuccess ?? 0, 1)],
  [
    'Duplicates suppressed',
    `${sendDuplicates} repeated sends, ${webhookDuplicates} webhook redeliveries`,
  ],
  [
    'Peak send rate',
    `${maxInWindow(sendTimes)} requests in one second (limit ${rate}); the API saw ${fake.maxInWindow(1000, PHONE_NUMBER_ID)}`,
  ],
  [
    'Statuses',
    `${statusEvents} received: ${byStatus('read')} read, ${byStatus('delivered')} delivered, ${byStatus('sent')} sent`,
  ],
  [
    'Out of order',
    `${staleIgnored} arrived after a newer status and were resolved; ${unresolved.length} messages off their final status`,
  ],
  ['Delivery rate', pct(snap.messages.deliveryRate ?? 0, 1)],
  ['Time', `${seconds.toFixed(1)} s`],
];
const width = Math.max(...rows.map(([k]) => k.length));
console.log(`\n${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}`);

await fake.close();
await new Promise<void>((resolve) => receiver.close(() => resolve()));
await closeRedis();
const ok = sentTwice === 0 && unresolved.length === 0 && sent + letters.length === total;
if (!ok) console.error('\nFAILED: a message was sent twice, lost, or left on a stale status');
process.exit(ok ? 0 : 1);
