import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { type FakeWhatsApp, startFakeWhatsApp } from '../examples/support/fake-whatsapp.js';
import { createMemoryIdempotencyStore, StoreUnavailableError } from '../src/index.js';
import { createRedisDeliveryStore } from '../src/redis/index.js';
import {
  type CloudMessage,
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
      // Statuses come at least 40 ms after the send; duplicates come late and out of order.
      reorderShare: 0,
      duplicateShare: 0.5,
      seed: 5,
    });
    cleanups.push(() => fake.close());
    const whatsapp = createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId: 'PN-WIRE',
      baseUrl: fake.url,
      store: createMemoryIdempotencyStore(),
      deliveries: sender,
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
    expect(fake.webhookStats.refused).toBe(0);

    for (let i = 0; i < TOTAL; i++) {
      const delivery = await getDelivery(receiver, `order-${i}`);
      const wamid = sent[i]?.messageId as string;
      expect(delivery?.payload).toEqual(message(i));
      expect(delivery?.wamids).toEqual([wamid]);
      expect(delivery?.attempts.map((a) => a.attemptId)).toEqual([`order-${i}#1`]);
      expect(delivery?.status).toBe(fake.finalStatus.get(wamid));
    }
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
  });

  it('a status that overtakes the wamid is not recorded; the later statuses are', async () => {
    const { sender, receiver } = stores();
    const handle = createWebhookHandler({
      appSecret: APP_SECRET,
      store: createMemoryIdempotencyStore(),
      enqueue: () => undefined,
      deliveries: receiver,
    });
    let early: Awaited<ReturnType<typeof handle>> | undefined;
    const fake = await startFakeWhatsApp({ appSecret: APP_SECRET });
    cleanups.push(() => fake.close());
    const slowStore: WhatsAppDeliveryStore<CloudMessage> = {
      ...sender,
      begin: (k, p) => sender.begin(k, p),
      get: (k) => sender.get(k),
      findKey: (id) => sender.findKey(id),
      applyStatus: (id, r) => sender.applyStatus(id, r),
      async recordAttempt(key, attempt) {
        if (attempt.externalId !== undefined) {
          early = await handle(
            await signed(
              statusBody([{ id: attempt.externalId, status: 'sent', timestamp: '1750263001' }]),
            ),
          );
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
    expect(early?.status).toBe(200);
    expect((await getDelivery(receiver, 'order-e'))?.status).toBe('accepted');
    const late = await handle(
      await signed(
        statusBody([
          { id: messageId, status: 'read', timestamp: '1750263003' },
          { id: messageId, status: 'delivered', timestamp: '1750263002' },
        ]),
      ),
    );
    expect(late.status).toBe(200);
    const delivery = await getDelivery(receiver, 'order-e');
    expect(delivery?.status).toBe('read');
    expect(delivery?.timestamps).toEqual({ delivered: 1_750_263_002_000, read: 1_750_263_003_000 });
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
    expect(again).toEqual({ messageId: first.messageId, attempts: 0, deduplicated: true });
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
