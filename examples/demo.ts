/**
 * The retrykit demo: a few thousand WhatsApp messages through `createWhatsAppClient` at the
 * 80/s limit, against a loopback fake of the Cloud API that injects 503s, 130429s (HTTP 400),
 * 131026s and hung requests, and that posts status webhooks — duplicated and out of order —
 * to a receiver built on `createWebhookHandler`. The delivery loop is closed: messages that
 * fail after they were accepted (`failed` webhooks), sends whose answer is lost (the
 * connection drops, or the request times out, after the fake accepted them) and messages
 * whose statuses never come are handled by two `createDeliveryReconciler`s sharing one
 * delivery store.
 *
 *   npm run demo                                   # 2,400 messages at 80/s in memory (~30 s)
 *   npm run demo -- --messages 500 --rate 200
 *   npm run demo -- --redis redis://127.0.0.1:6379
 *   npm run demo -- --dashboard                     # Redis, and the live dashboard page
 *
 * With --dashboard (Redis from --redis, else REDIS_URL, else 127.0.0.1:6379) every event also
 * goes to a fleet reporter (`createRedisMetricsReporter`), and `createDashboard` serves the page
 * on 127.0.0.1: its URL is printed at the start, and the page stays up after the report until
 * Ctrl-C.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import {
  combineListeners,
  createMemoryDeadLetterQueue,
  createMemoryDeliveryStore,
  createMemoryIdempotencyStore,
  createMemoryTokenBucket,
  createMetrics,
  type DeadLetterEntry,
  type DeadLetterQueue,
  type IdempotencyStore,
  type RateLimiter,
} from 'retrykit';
import {
  type CloudMessage,
  createDeliveryReconciler,
  createWebhookHandler,
  createWhatsAppClient,
  getDelivery,
  reduceStatus,
  type StatusUpdate,
  throughputLimits,
  type WhatsAppDeliveryStore,
  type WhatsAppEvent,
  whatsappDeliveryMetrics,
} from 'retrykit/whatsapp';
import { startFakeWhatsApp } from './support/fake-whatsapp.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2400' },
    rate: { type: 'string', default: '80' },
    redis: { type: 'string' },
    dashboard: { type: 'boolean', default: false },
    'dashboard-port': { type: 'string', default: '0' },
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
const dashboardPort = Number(values['dashboard-port']);
if (!Number.isInteger(dashboardPort) || dashboardPort < 0 || dashboardPort > 65_535) {
  throw new RangeError(`--dashboard-port must be a port number, got ${values['dashboard-port']}`);
}
// The dashboard reads Redis: --dashboard alone uses REDIS_URL, else the local default.
const redisUrl =
  values.redis ??
  (values.dashboard ? (process.env.REDIS_URL ?? 'redis://127.0.0.1:6379') : undefined);

const PHONE_NUMBER_ID = '106540352242922';
const GRACE_MS = 3_000;
const STUCK_AFTER_MS = 4_000;
const APP_SECRET = 'demo-app-secret';
const started = Date.now();

// Every component reports to one metrics window, WhatsApp delivery included; the final report is
// its snapshot.
const metrics = createMetrics({
  windowMs: 3_600_000,
  sections: [whatsappDeliveryMetrics({ maxTrackedMessages: total + 1000 })],
});
// The closed loop's events, for the report: held sends, re-sends, stuck messages.
const loopEvents: WhatsAppEvent[] = [];
/** With --dashboard: the fleet reporter the page reads (set up with the Redis stores). */
let reportEvent: (event: WhatsAppEvent) => void = () => {};
const onEvent = combineListeners<WhatsAppEvent>(
  metrics.onEvent,
  (event) => {
    if (event.type === 'message_held' || event.type === 'message_resent') loopEvents.push(event);
    if (event.type === 'message_stuck') loopEvents.push(event);
  },
  (event) => reportEvent(event),
);

// ---- stores: in memory, or Redis with --redis ------------------------------------------------
// Pace as WHATSAPP_RATE_LIMITS does: at most 95 % of the limit leaves in any second (90 %
// sustained), and the rest is room for network jitter, which bunches requests on their way.
const limits = throughputLimits(rate);
let limiter: RateLimiter;
let sendStore: IdempotencyStore;
let webhookStore: IdempotencyStore;
let dlq: DeadLetterQueue<CloudMessage>;
/** Messages that failed after they were accepted: the webhook handler's and the reconciler's. */
let deliveryDlq: DeadLetterQueue<string>;
/** Every send's record, shared by the client, the webhook handler and the reconcilers. */
let deliveries: WhatsAppDeliveryStore<CloudMessage>;
/** With --redis: deletes this run's keys and disconnects. */
let closeRedis = async (): Promise<void> => {};
/** With --dashboard: stops the page's server and the reporter. */
let closeDashboard = async (): Promise<void> => {};
if (redisUrl !== undefined) {
  // Loaded only here: the in-memory demo doesn't need ioredis.
  const { Redis } = await import('ioredis');
  const {
    createRedisDeadLetterQueue,
    createRedisDeliveryStore,
    createRedisIdempotencyStore,
    createRedisTokenBucket,
  } = await import('retrykit/redis');
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const prefix = `retrykit-demo:${process.pid}:${started}`;
  if (values.dashboard) {
    const { createRedisMetricsReporter } = await import('retrykit/redis');
    const { createDashboard, toNodeHandler } = await import('retrykit/dashboard');
    const reporter = createRedisMetricsReporter(client, {
      prefix,
      intervalMs: 1_000,
      sections: [whatsappDeliveryMetrics({ maxTrackedMessages: total + 1000 })],
    });
    reportEvent = reporter.onEvent;
    const page = createServer(
      toNodeHandler(
        createDashboard({
          redis: client,
          prefix,
          dlqPrefix: `${prefix}:dlq`,
          intervalMs: 1_000,
          windowMs: 300_000,
          refreshMs: 1_000,
        }),
      ),
    );
    await new Promise<void>((resolve) => page.listen(dashboardPort, '127.0.0.1', resolve));
    console.log(`Dashboard (read-only): http://127.0.0.1:${(page.address() as AddressInfo).port}/`);
    closeDashboard = async () => {
      await reporter.close();
      page.closeAllConnections();
      await new Promise<void>((resolve) => page.close(() => resolve()));
    };
  }
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
  deliveryDlq = createRedisDeadLetterQueue<string>(client, {
    prefix: `${prefix}:delivery-dlq`,
    onEvent,
  });
  deliveries = createRedisDeliveryStore(client, { prefix: `${prefix}:deliveries` });
} else {
  limiter = createMemoryTokenBucket({ ...limits, onEvent });
  sendStore = createMemoryIdempotencyStore({ maxEntries: 100_000, onEvent });
  webhookStore = createMemoryIdempotencyStore({ maxEntries: 100_000, onEvent });
  dlq = createMemoryDeadLetterQueue<CloudMessage>({ maxEntries: 100_000, onEvent });
  deliveryDlq = createMemoryDeadLetterQueue<string>({ maxEntries: 100_000, onEvent });
  deliveries = createMemoryDeliveryStore({ maxEntries: total + 1000 });
}

// ---- the webhook receiver: createWebhookHandler behind node:http ------------------------------
const states = new Map<string, StatusUpdate>();
let statusEvents = 0;
let staleIgnored = 0;
let webhookDuplicates = 0;
const handle = createWebhookHandler({
  appSecret: APP_SECRET,
  store: webhookStore,
  deliveries,
  dlq: deliveryDlq,
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
  // Accepted, then a `failed` webhook: 131000 (transient, sent again) for the first send to
  // numbers ending in 27, 131049 (permanent, dead-lettered) for those ending in 31.
  failAfterAccept: (to, n) =>
    to.endsWith('27') && n === 1 ? 131000 : to.endsWith('31') ? 131049 : undefined,
  // Accepted, and the answer lost: the connection drops (…41) or never answers (…53).
  acceptThen: (to, n) =>
    n > 1 ? undefined : to.endsWith('41') ? 'drop' : to.endsWith('53') ? 'hang' : undefined,
  // Accepted, and no status ever comes: stuck.
  dropStatuses: (to) => to.endsWith('67'),
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
  // A request that times out may have been accepted (the Cloud API takes no idempotency key):
  // with `deliveries` it is held, not sent again at once, and its status webhooks settle it.
  deliveries,
  requestTimeoutMs: 3_000,
  // Seconds in the demo; a minute (the default) in production.
  timeoutGraceMs: GRACE_MS,
  retry: { maxAttempts: 6, backoff: { initialDelayMs: 250, maxDelayMs: 4000 } },
  onEvent,
});

// Two reconcilers share the work through the delivery store's leases (two processes in
// production): re-sends after transient `failed` webhooks, held sends with no status after
// the grace window, and stuck messages.
const reconcilers = [1, 2].map(() =>
  createDeliveryReconciler({
    deliveries,
    client: whatsapp,
    dlq: deliveryDlq,
    backoff: { initialDelayMs: 500, maxDelayMs: 4_000 },
    timeoutGraceMs: GRACE_MS,
    stuckAfterMs: STUCK_AFTER_MS,
    intervalMs: 200,
    onEvent,
  }),
);
for (const r of reconcilers) r.start();

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
// The loop is closed once every message is delivered, dead-lettered or reported stuck.
const keys = recipients.map((_, i) => `order-${i}:shipped`);
const stuckKeys = () =>
  new Set(loopEvents.flatMap((e) => (e.type === 'message_stuck' ? [e.key] : [])));
const openKeys = async (): Promise<string[]> => {
  const stuck = stuckKeys();
  const open: string[] = [];
  for (const key of keys) {
    const delivery = await getDelivery(deliveries, key);
    const settled =
      delivery === undefined ||
      delivery.status === 'delivered' ||
      delivery.status === 'read' ||
      stuck.has(key) ||
      (await deliveryDlq.get(key)) !== undefined ||
      (await dlq.get(key)) !== undefined;
    if (!settled) open.push(key);
  }
  return open;
};
const loopDeadline = Date.now() + GRACE_MS + STUCK_AFTER_MS + 20_000;
let open = await openKeys();
while (open.length > 0 && Date.now() < loopDeadline) {
  await new Promise((resolve) => setTimeout(resolve, 250));
  await fake.drainWebhooks();
  open = await openKeys();
}
await Promise.all(reconcilers.map((r) => r.stop()));
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
// A message sent again is a duplicate unless the earlier send was reported failed.
const perOrder = new Map<string, number>();
for (const m of fake.accepted) {
  const body = (m.payload.text as { body: string }).body;
  if (fake.finalStatus.get(m.wamid) === 'failed') continue;
  perOrder.set(body, (perOrder.get(body) ?? 0) + 1);
}
const sentTwice = [...perOrder.values()].filter((n) => n > 1).length;
const deadByReason = new Map<string, number>();
const letters: DeadLetterEntry<unknown>[] = [];
for (let cursor: string | undefined; ; ) {
  const page = await dlq.list({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
  letters.push(...page.entries);
  cursor = page.cursor;
  if (cursor === undefined || page.entries.length === 0) break;
}
for (let cursor: string | undefined; ; ) {
  const page = await deliveryDlq.list({
    limit: 1000,
    ...(cursor === undefined ? {} : { cursor }),
  });
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
const health = metrics.checkHealth();
const resentAfter = (cause: string) =>
  loopEvents.filter((e) => e.type === 'message_resent' && e.cause === cause).length;
const byReason = (counts: Readonly<Partial<Record<string, number>>>) =>
  Object.entries(counts)
    .map(([reason, n]) => `${n} ${reason}`)
    .join(', ');
const rows: [string, string][] = [
  ['Messages', `${total} (${redisUrl === undefined ? 'in memory' : `Redis ${redisUrl}`})`],
  ['Sent', `${sent}, each accepted once by the API unless it failed (${sentTwice} sent twice)`],
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
  [
    'Closed loop',
    [
      `${resentAfter('failed')} re-sent after a failed status`,
      `${snap.messages.held} held after timeouts (${resentAfter('unconfirmed')} re-sent unconfirmed, the rest settled by their late statuses)`,
      `${stuckKeys().size} stuck (alert: ${health.breaches.some((b) => b.check === 'messages.stuck') ? 'messages.stuck' : 'none'})`,
      `${open.length} left open`,
    ].join('\n  '),
  ],
  ['Time', `${seconds.toFixed(1)} s`],
];
const width = Math.max(...rows.map(([k]) => k.length));
console.log(`\n${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}`);

await fake.close();
await new Promise<void>((resolve) => receiver.close(() => resolve()));
if (values.dashboard) {
  console.log("\nThe dashboard stays up: Ctrl-C to stop (this run's keys are then deleted).");
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
}
await closeDashboard();
await closeRedis();
const ok = sentTwice === 0 && unresolved.length === 0 && open.length === 0;
if (!ok) console.error('\nFAILED: a message was sent twice, lost, or left on a stale status');
process.exit(ok ? 0 : 1);
