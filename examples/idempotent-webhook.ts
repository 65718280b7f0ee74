/**
 * A WhatsApp webhook endpoint on 127.0.0.1 that handles each message exactly once, however
 * often Meta delivers it: every message ID (wamid) goes through `idempotent()` on Redis. The
 * example then plays Meta: it delivers one webhook three times at once, again later, and a
 * second message, and shows each message stored once.
 *
 *   npx tsx --import ./tools/lua-loader.mjs examples/idempotent-webhook.ts        (REDIS_URL or redis://127.0.0.1:6379)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import {
  IDEMPOTENCY_DEFAULTS,
  IdempotencyInProgressError,
  idempotent,
  StoreUnavailableError,
} from 'retrykit';
import { createRedisIdempotencyStore } from 'retrykit/redis';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
  maxRetriesPerRequest: 1,
});
const prefix = `example:webhooks:${process.pid}`;
const store = createRedisIdempotencyStore(redis, { prefix });

/** Stands in for your database: one row per WhatsApp message. */
const rows: { wamid: string; from: string; text: string }[] = [];

interface WebhookMessage {
  id: string;
  from: string;
  text?: { body: string };
}

/** Stores one inbound message; slow enough that concurrent duplicates overlap with it. */
async function saveMessage(message: WebhookMessage): Promise<{ row: number }> {
  await new Promise((resolve) => setTimeout(resolve, 50));
  rows.push({ wamid: message.id, from: message.from, text: message.text?.body ?? '' });
  return { row: rows.length };
}

const server = createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const messages: WebhookMessage[] = (body.entry ?? []).flatMap(
    (entry: { changes?: { value?: { messages?: WebhookMessage[] } }[] }) =>
      (entry.changes ?? []).flatMap((change) => change.value?.messages ?? []),
  );
  try {
    for (const message of messages) {
      await idempotent(store, `wamid:${message.id}`, () => saveMessage(message), {
        resultTtlMs: IDEMPOTENCY_DEFAULTS.webhookResultTtlMs, // outlives Meta's 7 days of redelivery
        leaseMs: 30_000,
        waitForResultMs: 5_000,
      });
    }
    res.writeHead(200).end('EVENT_RECEIVED');
  } catch (error) {
    // Busy or no store: answer 503 and let Meta deliver again later. Never drop it as seen.
    const busy =
      error instanceof IdempotencyInProgressError || error instanceof StoreUnavailableError;
    res.writeHead(busy ? 503 : 500).end();
  }
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`;

function webhook(wamid: string, text: string): string {
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: 'WABA_ID',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550000000', phone_number_id: 'PHONE_ID' },
              messages: [
                {
                  id: wamid,
                  from: '15551234567',
                  timestamp: '1763900000',
                  type: 'text',
                  text: { body: text },
                },
              ],
            },
          },
        ],
      },
    ],
  });
}

const deliver = async (payload: string): Promise<number> =>
  (
    await fetch(url, {
      method: 'POST',
      body: payload,
      headers: { 'content-type': 'application/json' },
    })
  ).status;

const first = webhook('wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQUZBQ0U', 'Hi! Where is my order?');
const second = webhook('wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQjAwMDE', 'Order #1042');
const statuses = [
  ...(await Promise.all([deliver(first), deliver(first), deliver(first)])), // a burst of duplicates
  await deliver(first), // a redelivery after we answered
  await deliver(second),
];

console.log(
  `Meta delivered ${statuses.length} webhooks for 2 messages; we answered ${statuses.join(', ')}`,
);
console.log(`stored ${rows.length} rows:`);
for (const row of rows) console.log(`  ${row.wamid}  "${row.text}"`);

await redis.del(`{${prefix}:wamid:${rows[0]?.wamid}}`, `{${prefix}:wamid:${rows[1]?.wamid}}`);
await redis.quit();
server.close();
if (rows.length !== 2) process.exitCode = 1;
