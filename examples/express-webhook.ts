/**
 * A WhatsApp webhook on Express that never loses or doubles an update: the raw body is
 * verified against `X-Hub-Signature-256`, updates seen before are dropped (Redis), new ones are
 * queued to BullMQ, and Meta gets its 200 as soon as they are queued. A BullMQ worker does the
 * real work. The example then plays Meta: the GET handshake, one webhook delivered twice at
 * once and once more later, and one with a forged signature.
 *
 *   npx tsx --import ./tools/lua-loader.mjs examples/express-webhook.ts        (REDIS_URL or redis://127.0.0.1:6379)
 */
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Queue, Worker } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';
import { createBackoffStrategy, RETRYKIT_JOB_OPTIONS } from 'retrykit/bullmq';
import { createRedisIdempotencyStore } from 'retrykit/redis';
import {
  createWebhookHandler,
  handleVerificationRequest,
  type WebhookUpdate,
  whatsAppDedupeKey,
} from 'retrykit/whatsapp';

const APP_SECRET = 'example-app-secret';
const VERIFY_TOKEN = 'example-verify-token';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `example-express:${process.pid}`;
const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });

// ---- the app --------------------------------------------------------------------------------
// Each job gets 6 attempts spaced by retrykit's backoff (BullMQ's default is one attempt).
const queue = new Queue<WebhookUpdate>('whatsapp-updates', {
  connection,
  prefix,
  defaultJobOptions: RETRYKIT_JOB_OPTIONS,
});
const handle = createWebhookHandler({
  appSecret: APP_SECRET,
  store: createRedisIdempotencyStore(connection, { prefix: `${prefix}:seen` }),
  // Only new updates arrive here. The job ID repeats the dedupe key, so even a redelivery
  // racing a lost `complete` is one job.
  enqueue: (updates) =>
    queue.addBulk(
      updates.map((update) => {
        const key = whatsAppDedupeKey(update);
        return {
          name: update.kind,
          data: update,
          ...(key === undefined ? {} : { opts: { jobId: key.replaceAll(':', '-') } }),
        };
      }),
    ),
});

const app = express();
app.get('/webhook', (req, res) => {
  const { status, body } = handleVerificationRequest(req.query, VERIFY_TOKEN);
  res.status(status).send(body);
});
// express.raw keeps the bytes Meta signed; express.json would re-serialise them.
app.post('/webhook', express.raw({ type: '*/*', limit: '3mb' }), async (req, res) => {
  const { status, headers, body } = await handle({
    body: req.body as Buffer,
    headers: req.headers,
  });
  res
    .status(status)
    .set(headers ?? {})
    .send(body);
});

const processed: string[] = [];
const worker = new Worker<WebhookUpdate>(
  'whatsapp-updates',
  async (job) => {
    const u = job.data;
    processed.push(
      u.kind === 'status'
        ? `${u.id} ${u.status}`
        : u.kind === 'message'
          ? `message ${u.id}`
          : u.kind === 'error'
            ? `error ${u.errorCode}`
            : u.kind,
    );
  },
  // The strategy behind RETRYKIT_JOB_OPTIONS' backoff; without it BullMQ can't schedule a retry.
  { connection, prefix, settings: { backoffStrategy: createBackoffStrategy() } },
);

const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`;

// ---- playing Meta ---------------------------------------------------------------------------
const handshake = await fetch(
  `${url}?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1158201444`,
);
console.log(`GET handshake: ${handshake.status} ${await handshake.text()}`);

const body = JSON.stringify({
  object: 'whatsapp_business_account',
  entry: [
    {
      id: '102290129340398',
      changes: [
        {
          field: 'messages',
          value: {
            messaging_product: 'whatsapp',
            metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
            contacts: [{ profile: { name: 'J\u00e4rvi' }, wa_id: '4915112345678' }],
            messages: [
              {
                from: '4915112345678',
                id: 'wamid.INBOUND1',
                timestamp: '1750263770',
                type: 'text',
                text: { body: 'Hall\u00e5' },
              },
            ],
            statuses: [
              {
                id: 'wamid.OUT1',
                status: 'delivered',
                timestamp: '1750263771',
                recipient_id: '4915112345678',
              },
            ],
          },
        },
      ],
    },
  ],
}).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
const sign = (payload: string, secret: string) =>
  `sha256=${createHmac('sha256', secret).update(payload).digest('hex')}`;
// Like Meta, deliver again what was answered 503: a delivery that finds the other one still at
// work on an update gets 503, and its redelivery finds the update queued (Meta waits longer).
const deliver = async (signature: string) => {
  for (;;) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
      body,
    });
    await res.arrayBuffer();
    if (res.status !== 503) return res.status;
    await new Promise((r) => setTimeout(r, 100));
  }
};

const twice = await Promise.all([deliver(sign(body, APP_SECRET)), deliver(sign(body, APP_SECRET))]);
const later = await deliver(sign(body, APP_SECRET));
const forged = await deliver(sign(body, 'not-the-secret'));
console.log(
  `deliveries answered ${[...twice, later].join(', ')}; forged signature answered ${forged}`,
);

const deadline = Date.now() + 10_000;
while (processed.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
await new Promise((r) => setTimeout(r, 200));
console.log(`worker processed ${processed.length} updates from 3 deliveries:`);
for (const line of processed.sort()) console.log(`  ${line}`);

await worker.close();
await queue.obliterate({ force: true });
await queue.close();
await new Promise((resolve) => server.close(resolve));
// The store's keys are `{prefix:…}` (a Redis Cluster hash tag).
for await (const keys of connection.scanStream({ match: `{${prefix}:*`, count: 1000 })) {
  if ((keys as string[]).length > 0) await connection.unlink(...(keys as string[]));
}
await connection.quit();
