/**
 * Sending WhatsApp messages that survive throttling, outages and double submits: a client with
 * a per-number rate limiter, an idempotency store and a dead-letter queue, against a loopback
 * fake of the Cloud API that answers some requests with 503 and some with 130429 (HTTP 400).
 *
 *   npx tsx examples/send-with-retry.ts
 */
import {
  createMemoryDeadLetterQueue,
  createMemoryIdempotencyStore,
  createMemoryTokenBucket,
  isRetrykitError,
} from 'retrykit';
import { type CloudMessage, createWhatsAppClient, WHATSAPP_RATE_LIMITS } from 'retrykit/whatsapp';
import { startFakeWhatsApp } from './support/fake-whatsapp.js';

// Stands in for graph.facebook.com. In your app: leave out `baseUrl`.
const api = await startFakeWhatsApp({
  faults: { serverError: 0.25, rateLimit: 0.25 },
  undeliverable: (to) => to === '4915100000000',
  seed: 4,
});

const deadLetters = createMemoryDeadLetterQueue<CloudMessage>();
const whatsapp = createWhatsAppClient({
  accessToken: api.accessToken,
  phoneNumberId: '106540352242922',
  baseUrl: api.url,
  // Meta's 80/s per number, kept in every second: a burst of 4 and 72/s.
  limiter: createMemoryTokenBucket(WHATSAPP_RATE_LIMITS.perPhoneNumber),
  store: createMemoryIdempotencyStore(),
  dlq: deadLetters,
  retry: { maxAttempts: 6, backoff: { initialDelayMs: 100, maxDelayMs: 2000 } },
  onEvent: (event) => {
    if (event.type === 'retry_scheduled') {
      console.log(`  retry in ${Math.round(event.delayMs)} ms (${event.reason})`);
    }
  },
});

const text = (to: string, body: string): CloudMessage => ({ to, type: 'text', text: { body } });

for (const [key, message] of [
  ['order-1:shipped', text('4915112345678', 'Order 1 has shipped')],
  ['order-2:shipped', text('4915187654321', 'Order 2 has shipped')],
  // The same key again, as a retried job would: answered from the store, not sent again.
  ['order-1:shipped', text('4915112345678', 'Order 1 has shipped')],
  // An undeliverable recipient (131026): permanent, dead-lettered at once.
  ['order-3:shipped', text('4915100000000', 'Order 3 has shipped')],
] as const) {
  console.log(`send ${key}`);
  try {
    const sent = await whatsapp.sendMessage(message, { idempotencyKey: key });
    // Without `deliveries` a send is never held; with them, a held one has no wamid yet.
    if (sent.status === 'held') console.log('  held: its status webhooks will settle it');
    else {
      const { messageId, attempts, deduplicated } = sent;
      console.log(
        deduplicated
          ? `  already sent as ${messageId}: not sent again`
          : `  accepted as ${messageId} after ${attempts} attempt${attempts === 1 ? '' : 's'}`,
      );
    }
  } catch (error) {
    console.log(
      `  failed for good: ${isRetrykitError(error) ? error.name : 'Error'} — ${(error as Error).message}`,
    );
  }
}

const { entries } = await deadLetters.list();
for (const entry of entries) {
  const last = entry.attempts.at(-1);
  console.log(
    `dead letter ${entry.id}: ${entry.reason}, ${entry.disposition}, code ${last?.errorCode}`,
  );
}
console.log(`the API accepted ${api.accepted.length} messages`);
await api.close();
