import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import { startFakeWhatsApp } from '../examples/support/fake-whatsapp.js';
import {
  combineListeners,
  createMemoryIdempotencyStore,
  createMetrics,
  type DeadLetterQueue,
  type DeliveryStore,
} from '../src/index.js';
import {
  createPostgresDeadLetterQueue,
  createPostgresDeliveryStore,
} from '../src/postgres/index.js';
import { createRedisDeadLetterQueue, createRedisDeliveryStore } from '../src/redis/index.js';
import {
  type CloudMessage,
  createDeliveryReconciler,
  createWebhookHandler,
  createWhatsAppClient,
  getDelivery,
  type WebhookErrorDetail,
  type WhatsAppEvent,
  whatsappDeliveryMetrics,
} from '../src/whatsapp/index.js';
import { describePostgres, testPool, useTestSchema } from './support/postgres.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';

const APP_SECRET = 'closed-loop-secret';
const GRACE = 1_000;
const STUCK = 2_500;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const readRaw = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve(undefined)));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The recipients, each with its fault, and how many sends the fake must have accepted. */
const CASES = {
  // Delivered at the first try.
  '15550000001': { sends: 1, ends: 'delivered' },
  '15550000002': { sends: 1, ends: 'delivered' },
  '15550000003': { sends: 1, ends: 'delivered' },
  // Accepted, then `failed` 131000 (transient): sent again once, delivered.
  '15550000010': { sends: 2, ends: 'delivered' },
  // Accepted, then `failed` 131026 (permanent): dead-lettered, never sent again.
  '15550000020': { sends: 1, ends: 'dead-lettered' },
  // Accepted, then the connection is destroyed: held; its statuses find it by tag.
  '15550000030': { sends: 1, ends: 'delivered' },
  // Accepted, never answered (the client times out): held; its statuses find it by tag.
  '15550000040': { sends: 1, ends: 'delivered' },
  // Accepted, never answered, and its statuses come after the grace window: the documented
  // duplicate window, sent twice.
  '15550000050': { sends: 2, ends: 'delivered' },
  // Accepted, and no status ever comes: stuck.
  '15550000060': { sends: 1, ends: 'stuck' },
} as const;
type To = keyof typeof CASES;

/** Where the loop keeps its state: each call of `deliveriesIn` is a store on its own connection. */
interface Backend {
  readonly deliveriesIn: () => DeliveryStore<CloudMessage, WebhookErrorDetail>;
  readonly dlq: DeadLetterQueue<string>;
}

const SCENARIO =
  'every message ends delivered, dead-lettered or alarmed; none accepted and unreported failed is sent again; two reconcilers never double-send';

describeRedis('closed-loop WhatsApp delivery over HTTP, on Redis', () => {
  it(SCENARIO, async () => {
    const prefix = uniquePrefix('closed-loop');
    const connection = () => {
      const redis = connectRedis();
      cleanups.push(() => redis.quit());
      return redis;
    };
    await closedLoop({
      deliveriesIn: () =>
        createRedisDeliveryStore<CloudMessage, WebhookErrorDetail>(connection(), { prefix }),
      dlq: createRedisDeadLetterQueue<string>(connection(), { prefix: `${prefix}:dlq` }),
    });
  }, 30_000);
});

describePostgres('closed-loop WhatsApp delivery over HTTP, on PostgreSQL', () => {
  const db = useTestSchema('closed_loop');
  it(SCENARIO, async () => {
    const { deliveries, deliveryAttempts, deadLetters } = await db.tables('loop');
    // One pool per party (receiver, sender, each reconciler): separate connections, as separate
    // processes would have.
    const pool = () => {
      const p = testPool({ max: 2 });
      cleanups.push(() => p.end());
      return p;
    };
    await closedLoop({
      deliveriesIn: () =>
        createPostgresDeliveryStore<CloudMessage, WebhookErrorDetail>(pool(), {
          schema: db.schema,
          table: deliveries,
          attemptsTable: deliveryAttempts,
        }),
      dlq: createPostgresDeadLetterQueue<string>(pool(), {
        schema: db.schema,
        table: deadLetters,
      }),
    });
  }, 30_000);
});

async function closedLoop({ deliveriesIn, dlq }: Backend): Promise<void> {
  const events: WhatsAppEvent[] = [];
  const metrics = createMetrics({ sections: [whatsappDeliveryMetrics()] });
  const onEvent = combineListeners<WhatsAppEvent>((e) => events.push(e), metrics.onEvent);

  // The webhook receiver: its own process in production, its own Redis connection here.
  const handle = createWebhookHandler({
    appSecret: APP_SECRET,
    store: createMemoryIdempotencyStore(),
    enqueue: () => undefined,
    deliveries: deliveriesIn(),
    dlq,
    onEvent,
  });
  const receiverUrl = await listen(
    createServer(async (req, res) => {
      const result = await handle({ body: await readRaw(req), headers: req.headers });
      res.writeHead(result.status, result.headers).end(result.body);
    }),
  );
  const fake = await startFakeWhatsApp({
    appSecret: APP_SECRET,
    webhookUrl: `${receiverUrl}/webhook`,
    readShare: 0,
    duplicateShare: 0.3,
    seed: 17,
    failAfterAccept: (to, n) =>
      to === '15550000010' && n === 1 ? 131000 : to === '15550000020' ? 131026 : undefined,
    acceptThen: (to, n) =>
      n > 1
        ? undefined
        : to === '15550000030'
          ? 'drop'
          : to === '15550000040' || to === '15550000050'
            ? 'hang'
            : undefined,
    statusDelayMs: (to) => (to === '15550000050' ? 1_800 : 0),
    dropStatuses: (to) => to === '15550000060',
  });
  cleanups.push(() => fake.close());

  const sender = deliveriesIn();
  const clientOptions = {
    accessToken: fake.accessToken,
    phoneNumberId: 'PN-LOOP',
    baseUrl: fake.url,
    store: createMemoryIdempotencyStore(),
    deliveries: sender,
    requestTimeoutMs: 300,
    timeoutGraceMs: GRACE,
    // The record is looked at once this runs out: soon, so that a stuck one shows in time.
    leaseMs: 1_000,
    retry: { maxAttempts: 3, backoff: { initialDelayMs: 20, jitter: 'none' as const } },
    onEvent,
  };
  const client = createWhatsAppClient(clientOptions);
  // Two reconcilers, each with its own client and Redis connection, racing on one store.
  const reconcilers = [1, 2].map(() =>
    createDeliveryReconciler({
      deliveries: deliveriesIn(),
      client: createWhatsAppClient({ ...clientOptions, deliveries: deliveriesIn() }),
      dlq,
      maxAttempts: 3,
      backoff: { initialDelayMs: 200, jitter: 'none' },
      timeoutGraceMs: GRACE,
      stuckAfterMs: STUCK,
      leaseMs: 5_000,
      intervalMs: 50,
      onEvent,
    }),
  );
  for (const r of reconcilers) {
    r.start();
    cleanups.push(() => r.stop());
  }

  const recipients = Object.keys(CASES) as To[];
  const results = await Promise.all(
    recipients.map((to) =>
      client.sendMessage(
        { to, type: 'text', text: { body: `hello ${to}` } },
        { idempotencyKey: `msg-${to}` },
      ),
    ),
  );
  // The sends whose answer was lost resolve as held, not as failures.
  expect(results.filter((r) => r.status === 'held').length, JSON.stringify(results)).toBe(3);

  const endOf = async (to: To) => {
    const delivery = await getDelivery(sender, `msg-${to}`);
    if ((await dlq.get(`msg-${to}`)) !== undefined) return 'dead-lettered';
    if (delivery?.status === 'delivered' || delivery?.status === 'read') return 'delivered';
    if (events.some((e) => e.type === 'message_stuck' && e.key === `msg-${to}`)) return 'stuck';
    return delivery?.status;
  };
  await vi.waitFor(
    async () => {
      for (const to of recipients) expect([to, await endOf(to)]).toEqual([to, CASES[to].ends]);
    },
    { timeout: 15_000, interval: 100 },
  );
  // Late statuses of the duplicate window, and the last re-send's, settle too.
  await fake.drainWebhooks();
  await vi.waitFor(async () => {
    const last = await getDelivery(sender, 'msg-15550000050');
    expect(last?.attempts.map((a) => a.status)).toEqual(['delivered', 'delivered']);
  });

  // The fake's own log: each message was accepted exactly as often as its case allows.
  for (const to of recipients) {
    const sends = fake.accepted.filter((m) => m.to === to).length;
    expect([to, sends]).toEqual([to, CASES[to].sends]);
  }
  // Held sends got their wamid from a late status, by tag.
  for (const to of ['15550000030', '15550000040'] as const) {
    const delivery = await getDelivery(sender, `msg-${to}`);
    expect(delivery?.wamids).toEqual(fake.accepted.filter((m) => m.to === to).map((m) => m.wamid));
  }
  const permanent = await dlq.get('msg-15550000020');
  expect(permanent).toMatchObject({ source: 'whatsapp.status', disposition: 'permanent' });
  expect(
    events
      .filter((e) => e.type === 'message_resent')
      .map((e) => [e.key, e.cause])
      .sort(),
  ).toEqual([
    ['msg-15550000010', 'failed'],
    ['msg-15550000050', 'unconfirmed'],
  ]);
  expect(events.flatMap((e) => (e.type === 'message_stuck' ? [e.key] : []))).toEqual([
    'msg-15550000060',
  ]);
  expect(metrics.snapshot().messages).toMatchObject({ held: 3, resent: 2, stuck: 1 });
  expect(metrics.checkHealth().breaches.map((b) => b.check)).toContain('messages.stuck');
}
