/**
 * A WASenderApi webhook: WASenderApi sends the shared webhook secret itself in
 * `X-Webhook-Signature` (no HMAC), so the handler checks it with `verifyWasenderSignature`
 * (constant time) and parses WASenderApi's event format instead of Meta's. Duplicates are
 * dropped by message ID. The example then plays WASenderApi: one event delivered twice, one
 * with a wrong secret, one that is not an event at all.
 *
 *   npx tsx examples/wasender-webhook.ts
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMemoryIdempotencyStore } from 'retrykit';
import {
  createWebhookHandler,
  headerValue,
  type RawBody,
  verifyWasenderSignature,
  WebhookPayloadError,
} from 'retrykit/whatsapp';

const WEBHOOK_SECRET = 'wasender-webhook-secret';

/** What this app needs of a WASenderApi `messages.received` event. */
interface WasenderInbound {
  readonly id: string;
  readonly from: string;
  readonly text: string;
}

/** Parses a WASenderApi event; anything else is a `WebhookPayloadError` (never retried). */
function parseWasender(body: RawBody): WasenderInbound[] {
  let event: unknown;
  try {
    event = JSON.parse(
      typeof body === 'string' ? body : new TextDecoder().decode(body as Uint8Array),
    );
  } catch (cause) {
    throw new WebhookPayloadError('$', 'body is not JSON', { cause });
  }
  const e = event as { event?: unknown; data?: { messages?: Record<string, unknown> } };
  if (typeof e?.event !== 'string') throw new WebhookPayloadError('$.event', 'expected a string');
  if (e.event !== 'messages.received') return [];
  const message = e.data?.messages as
    | { key?: { id?: unknown; remoteJid?: unknown }; message?: { conversation?: unknown } }
    | undefined;
  const id = message?.key?.id;
  const from = message?.key?.remoteJid;
  if (typeof id !== 'string' || typeof from !== 'string') {
    throw new WebhookPayloadError('$.data.messages.key', 'expected id and remoteJid');
  }
  const text = message?.message?.conversation;
  return [{ id, from, text: typeof text === 'string' ? text : '' }];
}

const inbox: WasenderInbound[] = [];
const handle = createWebhookHandler<WasenderInbound>({
  verify: ({ headers }) =>
    verifyWasenderSignature(headerValue(headers, 'x-webhook-signature'), WEBHOOK_SECRET),
  parse: parseWasender,
  dedupeKey: (message) => `wasender:${message.id}`,
  store: createMemoryIdempotencyStore({ maxEntries: 100_000 }),
  enqueue: (messages) => {
    inbox.push(...messages);
  },
});

const readRaw = async (req: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};
const server = createServer(async (req, res) => {
  const result = await handle({ body: await readRaw(req), headers: req.headers });
  res.writeHead(result.status, { 'content-type': 'text/plain' }).end(result.body);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/wasender`;

// ---- playing WASenderApi ----------------------------------------------------------------------
const event = JSON.stringify({
  event: 'messages.received',
  timestamp: 1750263770,
  data: {
    messages: {
      key: { id: '3EB0C767D26A1D6A7A3B', fromMe: false, remoteJid: '4915112345678@s.whatsapp.net' },
      message: { conversation: 'Is my order on its way?' },
    },
  },
});
const post = async (body: string, secret: string) =>
  (
    await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-webhook-signature': secret },
      body,
    })
  ).status;

const statuses = [
  await post(event, WEBHOOK_SECRET),
  await post(event, WEBHOOK_SECRET),
  await post(event, 'guessed-secret'),
  await post('{"not":"an event"}', WEBHOOK_SECRET),
];
console.log(`answered ${statuses.join(', ')} (twice the same event, a wrong secret, a bad body)`);
console.log(`inbox holds ${inbox.length} message:`);
for (const m of inbox) console.log(`  ${m.id} from ${m.from}: ${m.text}`);

await new Promise<void>((resolve) => server.close(() => resolve()));
