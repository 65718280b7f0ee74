/**
 * A WhatsApp webhook on Fastify: the body kept as raw bytes for `X-Hub-Signature-256`,
 * duplicates dropped, new status updates queued, and each message's status folded with
 * `reduceStatus` so that late or repeated webhooks never move it backwards. The loopback fake
 * of the Cloud API plays Meta: it accepts five messages and posts their status webhooks,
 * duplicated and out of order.
 *
 *   npx tsx examples/fastify-webhook.ts
 */
import Fastify from 'fastify';
import { createMemoryIdempotencyStore } from 'retrykit';
import {
  createWebhookHandler,
  createWhatsAppClient,
  handleVerificationRequest,
  reduceStatus,
  type StatusUpdate,
  type WebhookUpdate,
} from 'retrykit/whatsapp';
import { startFakeWhatsApp } from './support/fake-whatsapp.js';

const APP_SECRET = 'example-app-secret';

// ---- the app --------------------------------------------------------------------------------
/** Stands in for a job queue: the handler only has to get updates here before answering. */
const queue: WebhookUpdate[] = [];
const handle = createWebhookHandler({
  appSecret: APP_SECRET,
  store: createMemoryIdempotencyStore({ maxEntries: 100_000 }),
  enqueue: (updates) => {
    queue.push(...updates);
  },
});

const app = Fastify();
// Keep JSON bodies as the bytes Meta signed.
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) =>
  done(null, body),
);
app.get('/webhook', async (req, reply) => {
  const { status, body } = handleVerificationRequest(
    req.query as Record<string, string>,
    'verify-token',
  );
  return reply.code(status).send(body);
});
app.post('/webhook', async (req, reply) => {
  const result = await handle({ body: req.body as Buffer, headers: req.headers });
  return reply.code(result.status).send(result.body);
});
const address = await app.listen({ port: 0, host: '127.0.0.1' });

// ---- Meta, played by the fake -----------------------------------------------------------------
const api = await startFakeWhatsApp({
  appSecret: APP_SECRET,
  webhookUrl: `${address}/webhook`,
  readShare: 1,
  duplicateShare: 0.5,
  reorderShare: 1,
  seed: 2,
});
const whatsapp = createWhatsAppClient({
  accessToken: api.accessToken,
  phoneNumberId: '106540352242922',
  baseUrl: api.url,
});
for (let i = 1; i <= 5; i++) {
  await whatsapp.sendMessage({ to: `491510000000${i}`, type: 'text', text: { body: `Hi ${i}` } });
}
await api.drainWebhooks();

// ---- a worker draining the queue --------------------------------------------------------------
const states = new Map<string, StatusUpdate>();
const arrived = new Map<string, string[]>();
for (const update of queue) {
  if (update.kind !== 'status') continue;
  arrived.set(update.id, [...(arrived.get(update.id) ?? []), update.status]);
  states.set(update.id, reduceStatus(states.get(update.id), update));
}
console.log(
  `Meta posted ${api.webhookStats.events} status events; ${queue.length} new ones were queued`,
);
for (const [wamid, state] of states) {
  console.log(`${wamid}: arrived ${arrived.get(wamid)?.join(' → ')}; final ${state.status}`);
}

await api.close();
await app.close();
