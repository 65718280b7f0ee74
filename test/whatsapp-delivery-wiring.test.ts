import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { type FakeWhatsApp, startFakeWhatsApp } from '../examples/support/fake-whatsapp.js';
import { createMemoryIdempotencyStore, StoreUnavailableError } from '../src/index.js';
import { createRedisDeadLetterQueue, createRedisDeliveryStore } from '../src/redis/index.js';
import {
  type CloudMessage,
  cloudApiEndpoint,
  createWebhookHandler,
  createWhatsAppClient,
  getDelivery,
  signWebhookBody,
  type WebhookErrorDetail,
  type WhatsAppDeliveryStore,
} from '../src/whatsapp/index.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';

const APP_SECRET = 'wiring-secret';
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
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
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve(undefined))));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const statusBody = (statuses: readonly Record<string, unknown>[]) =>
  JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          {
            field: 'messages',
            value: { metadata: { phone_number_id: 'PN-WIRE' }, statuses },
          },
        ],
      },
    ],
  });

const signed = async (body: string) => ({
  body,
  headers: { 'x-hub-signature-256': `sha256=${await signWebhookBody(body, APP_SECRET)}` },
});

const message = (i: number): CloudMessage => ({
  to: `4915100${String(i).padStart(4, '0')}`,
  type: 'text',
  text: { body: `order-${i}` },
});

describeRedis('the client and the webhook handler keep delivery records on Redis', () => {
  const stores = () => {
    const prefix = uniquePrefix('wa-wiring');
    const a = connectRedis();
    const b = connectRedis();
    cleanups.push(
      () => a.quit(),
      () => b.quit(),
    );
    return {
      sender: createRedisDeliveryStore<CloudMessage, WebhookErrorDetail>(a, { prefix }),
      receiver: createRedisDeliveryStore<CloudMessage, WebhookErrorDetail>(b, { prefix }),
    };
  };

  it('every sent message ends with its wamid and the last status the fake reported', async () => {
    const { sender, receiver } = stores();
    const handle = createWebhookHandler({
      appSecret: APP_SECRET,
      store: createMemoryIdempotencyStore(),
      enqueue: () => undefined,
      deliveries: receiver,
    });
    const receiverUrl = await listen(
      createServer(async (req, res) => {
        const result = await handle({ body: await readRaw(req), headers: req.headers });
        res.writeHead(result.status).end(result.body);
      }),
    );
    const fake: FakeWhatsApp = await startFakeWhatsApp({
      appSecret: APP_SECRET,
      webhookUrl: `${receiverUrl}/webhook`,
      // Half the messages get their statuses 0-300 ms after the 200, in random order: some
      // overtake the client's write of the wamid and are answered 503 until it is there.
      reorderShare: 0.5,
      duplicateShare: 0.5,
      seed: 5,
    });
    cleanups.push(() => fake.close());
    const whatsapp = createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId: 'PN-WIRE',
      baseUrl: fake.url,
      store: createMemoryIdempotencyStore(),
      deliveries: {
        begin: (key, payload) => sender.begin(key, payload as CloudMessage),
        // Every third wamid is written 300 ms late: its statuses overtake it.
        recordAttempt: async (key, attempt) => {
          const slow = attempt.externalId !== undefined && Number(key.slice(6)) % 3 === 0;
          if (slow) await new Promise((resolve) => setTimeout(resolve, 300));
          return sender.recordAttempt(key, attempt);
        },
      },
    });

    const TOTAL = 30;
    const sent = await Promise.all(
      Array.from({ length: TOTAL }, (_, i) =>
        whatsapp.sendMessage(message(i), { idempotencyKey: `order-${i}` }),
      ),
    );
    const again = await whatsapp.sendMessage(message(0), { idempotencyKey: 'order-0' });
    expect(again.deduplicated).toBe(true);
    await fake.drainWebhooks();
    // The statuses that overtook a slow wamid write were answered 503 and delivered again.
    expect(fake.webhookStats.refused).toBeGreaterThan(0);
    const tags = fake.accepted.map((m) => m.payload.biz_opaque_callback_data);
    expect(new Set(tags).size).toBe(TOTAL);
    for (const tag of tags) expect(tag).toMatch(/^rk:[A-Za-z0-9_-]{22}$/);

    for (let i = 0; i < TOTAL; i++) {
      const delivery = await getDelivery(receiver, `order-${i}`);
      const wamid = sent[i]?.messageId as string;
      expect(delivery?.payload).toEqual(message(i));
      expect(delivery?.wamids).toEqual([wamid]);
      expect(delivery?.attempts.map((a) => a.attemptId)).toEqual([`order-${i}#1`]);
      expect(delivery?.status).toBe(fake.finalStatus.get(wamid));
    }
  });

  it('a failed status over HTTP: a permanent code is dead-lettered once, a transient one only recorded', async () => {
    const { sender, receiver } = stores();
    const redis = connectRedis();
    cleanups.push(() => redis.quit());
    const dlq = createRedisDeadLetterQueue<string>(redis, {
      prefix: uniquePrefix('wa-failed-dlq'),
    });
    const handle = createWebhookHandler({
      appSecret: APP_SECRET,
      store: createMemoryIdempotencyStore(),
      enqueue: () => undefined,
      deliveries: receiver,
      dlq,
    });
    const receiverUrl = await listen(
      createServer(async (req, res) => {
        const result = await handle({ body: await readRaw(req), headers: req.headers });
        res.writeHead(result.status).end(result.body);
      }),
    );
    const codes: Record<string, number> = { [message(1).to]: 131026, [message(2).to]: 131000 };
    const fake = await startFakeWhatsApp({
      appSecret: APP_SECRET,
      webhookUrl: `${receiverUrl}/webhook`,
      failAfterAccept: (to) => codes[to],
      duplicateShare: 0,
    });
    cleanups.push(() => fake.close());
    const whatsapp = createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId: 'PN-WIRE',
      baseUrl: fake.url,
      store: createMemoryIdempotencyStore(),
      deliveries: sender,
    });
    for (const i of [0, 1, 2]) {
      await whatsapp.sendMessage(message(i), { idempotencyKey: `order-f${i}` });
    }
    await fake.drainWebhooks();

    expect((await getDelivery(receiver, 'order-f0'))?.status).not.toBe('failed');
    expect(await getDelivery(receiver, 'order-f1')).toMatchObject({
      status: 'failed',
      errors: [expect.objectContaining({ errorCode: 131026 })],
    });
    expect(await getDelivery(receiver, 'order-f2')).toMatchObject({
      status: 'failed',
      errors: [expect.objectContaining({ errorCode: 131000 })],
    });
    expect(await dlq.size()).toBe(1);
    const entry = await dlq.get('order-f1');
    expect(entry).toMatchObject({ source: 'whatsapp.status', disposition: 'permanent' });
    expect(JSON.parse(entry?.payload as string)).toMatchObject(message(1));
    expect(entry?.attempts.map((a) => a.errorCode)).toEqual([131026]);
  });

  it('a re-send under the same key is a second attempt beside the first', async () => {
    const { sender, receiver } = stores();
    const fake = await startFakeWhatsApp({ appSecret: APP_SECRET });
    cleanups.push(() => fake.close());
    const whatsapp = createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId: 'PN-WIRE',
      baseUrl: fake.url,
      deliveries: sender,
    });
    const first = await whatsapp.sendMessage(message(1), { idempotencyKey: 'order-r' });
    const second = await whatsapp.sendMessage(message(1), { idempotencyKey: 'order-r' });
    await whatsapp.sendMessage(message(2));
    const delivery = await getDelivery(receiver, 'order-r');
    expect(delivery?.attempts.map((a) => [a.attemptId, a.wamid, a.status])).toEqual([
      ['order-r#1', first.messageId, 'accepted'],
      ['order-r#2', second.messageId, 'accepted'],
    ]);
    expect(fake.accepted).toHaveLength(3);
    expect(fake.accepted.map((m) => m.payload.biz_opaque_callback_data)).toEqual([
      `rk:${createHash('sha256').update('order-r').digest('base64url').slice(0, 22)}`,
      fake.accepted[0]?.payload.biz_opaque_callback_data,
      undefined,
    ]);

    // A caller's own value is kept after the tag; a custom endpoint's payload is never tagged.
    await whatsapp.sendMessage(
      { ...message(7), biz_opaque_callback_data: 'campaign-7' },
      { idempotencyKey: 'order-c' },
    );
    expect(fake.accepted[3]?.payload.biz_opaque_callback_data).toMatch(
      /^rk:[A-Za-z0-9_-]{22}\|campaign-7$/,
    );
    expect((await getDelivery(receiver, 'order-c'))?.payload).toMatchObject({
      biz_opaque_callback_data: 'campaign-7',
    });
    const own = createWhatsAppClient({
      phoneNumberId: 'PN-WIRE',
      endpoint: {
        ...cloudApiEndpoint({
          accessToken: fake.accessToken,
          phoneNumberId: 'PN-WIRE',
          baseUrl: fake.url,
        }),
      },
      deliveries: sender,
    });
    await own.sendMessage(message(8), { idempotencyKey: 'order-o' });
    expect(fake.accepted[4]?.payload).not.toHaveProperty('biz_opaque_callback_data');
    expect((await getDelivery(receiver, 'order-o'))?.wamids).toEqual([fake.accepted[4]?.wamid]);
  });

  it('a tagged status that overtakes the wamid finds its record by the tag, and is applied at once', async () => {
    const { sender, receiver } = stores();
    const handle = createWebhookHandler({
      appSecret: APP_SECRET,
      store: createMemoryIdempotencyStore(),
      enqueue: () => undefined,
      deliveries: receiver,
    });
    const fake = await startFakeWhatsApp({ appSecret: APP_SECRET });
    cleanups.push(() => fake.close());
    let early: Awaited<ReturnType<typeof handle>> | undefined;
    const overtaking: WhatsAppDeliveryStore<CloudMessage> = {
      ...sender,
      begin: (k, p, o) => sender.begin(k, p, o),
      async recordAttempt(key, attempt, options) {
        if (attempt.externalId !== undefined) {
          const sent = fake.accepted.at(-1);
          early = await handle(
            await signed(
              statusBody([
                {
                  id: attempt.externalId,
                  status: 'sent',
                  timestamp: String(Math.floor(Date.now() / 1000)),
                  biz_opaque_callback_data: sent?.payload.biz_opaque_callback_data,
                },
              ]),
            ),
          );
        }
        return sender.recordAttempt(key, attempt, options);
      },
    };
    const whatsapp = createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId: 'PN-WIRE',
      baseUrl: fake.url,
      deliveries: overtaking,
    });
    const sent = await whatsapp.sendMessage(message(4), { idempotencyKey: 'order-f' });
    expect([early?.status, early?.outcome]).toEqual([200, 'enqueued']);
    const delivery = await getDelivery(receiver, 'order-f');
    expect(delivery?.status).toBe('sent');
    expect(delivery?.wamids).toEqual([sent.messageId]);
  });

  it('a tagged status whose tag no record has yet is answered 503 until the wamid is stored', async () => {
    const { sender, receiver } = stores();
    let enqueued = 0;
    const handle = createWebhookHandler({
      appSecret: APP_SECRET,
      store: createMemoryIdempotencyStore(),
      enqueue: (updates) => {
        enqueued += updates.length;
      },
      deliveries: receiver,
    });
    let early: Awaited<ReturnType<typeof handle>> | undefined;
    const seconds = () => String(Math.floor(Date.now() / 1000));
    let tag: unknown;
    const sentStatus = (id: string, at: number | string = seconds()) =>
      statusBody([{ id, status: 'sent', timestamp: String(at), biz_opaque_callback_data: tag }]);
    const fake = await startFakeWhatsApp({ appSecret: APP_SECRET });
    cleanups.push(() => fake.close());
    const slowStore: WhatsAppDeliveryStore<CloudMessage> = {
      ...sender,
      // Without the alias: no record has the tag (as for a send recorded by another client).
      begin: (k, p) => sender.begin(k, p),
      get: (k) => sender.get(k),
      findKey: (id) => sender.findKey(id),
      applyStatus: (id, r) => sender.applyStatus(id, r),
      async recordAttempt(key, attempt) {
        if (attempt.externalId !== undefined) {
          tag = fake.accepted.at(-1)?.payload.biz_opaque_callback_data;
          early = await handle(await signed(sentStatus(attempt.externalId)));
        }
        return sender.recordAttempt(key, attempt);
      },
    };
    const whatsapp = createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId: 'PN-WIRE',
      baseUrl: fake.url,
      deliveries: slowStore,
    });
    const { messageId } = await whatsapp.sendMessage(message(3), { idempotencyKey: 'order-e' });
    expect([early?.status, early?.outcome, early?.headers]).toEqual([
      503,
      'in_progress',
      { 'Retry-After': '1' },
    ]);
    expect(enqueued).toBe(0);
    expect((await getDelivery(receiver, 'order-e'))?.status).toBe('accepted');
    const again = await handle(await signed(sentStatus(messageId as string)));
    expect([again.status, again.outcome, enqueued]).toEqual([200, 'enqueued', 1]);
    expect((await getDelivery(receiver, 'order-e'))?.status).toBe('sent');

    // Untagged, or over a minute old: not ours to wait for, answered 200 and not recorded.
    const stranger = await handle(
      await signed(statusBody([{ id: 'wamid.X', status: 'sent', timestamp: seconds() }])),
    );
    const old = await handle(await signed(sentStatus('wamid.Y', Number(seconds()) - 61)));
    expect([stranger.status, old.status]).toEqual([200, 200]);
  });

  it('a delivery store that fails before the request fails the send, and nothing is sent', async () => {
    const { sender } = stores();
    const fake = await startFakeWhatsApp({ appSecret: APP_SECRET });
    cleanups.push(() => fake.close());
    const down = new StoreUnavailableError('begin', new Error('connection refused'));
    const whatsapp = createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId: 'PN-WIRE',
      baseUrl: fake.url,
      store: createMemoryIdempotencyStore(),
      deliveries: { ...sender, begin: () => Promise.reject(down) },
    });
    await expect(whatsapp.sendMessage(message(4), { idempotencyKey: 'order-d' })).rejects.toBe(
      down,
    );
    expect(fake.accepted).toHaveLength(0);
  });

  it('a delivery store that fails after the 200 still resolves the send, once', async () => {
    const { sender, receiver } = stores();
    const fake = await startFakeWhatsApp({ appSecret: APP_SECRET });
    cleanups.push(() => fake.close());
    const idempotency = createMemoryIdempotencyStore();
    const whatsapp = createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId: 'PN-WIRE',
      baseUrl: fake.url,
      store: idempotency,
      deliveries: {
        ...sender,
        begin: (k, p) => sender.begin(k, p as CloudMessage),
        recordAttempt: (key, attempt) =>
          attempt.externalId === undefined
            ? sender.recordAttempt(key, attempt)
            : Promise.reject(new StoreUnavailableError('recordAttempt', new Error('down'))),
      },
    });
    const first = await whatsapp.sendMessage(message(5), { idempotencyKey: 'order-f' });
    const again = await whatsapp.sendMessage(message(5), { idempotencyKey: 'order-f' });
    expect(again).toEqual({
      status: 'accepted',
      messageId: first.messageId,
      attempts: 0,
      deduplicated: true,
    });
    expect(fake.accepted).toHaveLength(1);
    expect((await getDelivery(receiver, 'order-f'))?.attempts).toMatchObject([
      { attemptId: 'order-f#1', wamid: undefined, status: 'pending' },
    ]);
  });

  it('the webhook handler answers 500 when the delivery store fails, and 200 once it is back', async () => {
    const { receiver } = stores();
    let up = false;
    const handle = createWebhookHandler({
      appSecret: APP_SECRET,
      store: createMemoryIdempotencyStore(),
      enqueue: () => undefined,
      deliveries: {
        applyStatus: (id, r) =>
          up
            ? receiver.applyStatus(id, r)
            : Promise.reject(new StoreUnavailableError('applyStatus', new Error('down'))),
      },
    });
    await receiver.begin('order-h', message(6));
    await receiver.recordAttempt('order-h', {
      attemptId: 'order-h#1',
      externalId: 'wamid.H',
      at: 1,
    });
    const request = await signed(
      statusBody([{ id: 'wamid.H', status: 'delivered', timestamp: '1750263002' }]),
    );
    const refused = await handle(request);
    expect([refused.status, refused.outcome]).toEqual([500, 'failed']);
    expect(refused.error).toBeInstanceOf(StoreUnavailableError);
    up = true;
    expect((await handle(request)).outcome).toBe('enqueued');
    expect((await handle(request)).outcome).toBe('duplicate');
    expect((await getDelivery(receiver, 'order-h'))?.status).toBe('delivered');
    expect(() =>
      createWebhookHandler({
        appSecret: APP_SECRET,
        store: createMemoryIdempotencyStore(),
        enqueue: () => undefined,
        deliveries: {} as never,
      }),
    ).toThrow(/deliveries must be a delivery store/);
    expect(() =>
      createWhatsAppClient({ accessToken: 't', phoneNumberId: 'p', deliveries: 42 as never }),
    ).toThrow(/deliveries must be a delivery store.*42/);
  });
});
