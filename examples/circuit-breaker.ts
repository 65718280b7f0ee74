/**
 * An expired access token without losing a message: the first sends fail with 190 and are
 * held (not dead-lettered), the per-number circuit breaker opens and refuses the rest without
 * a request, and once the token is refreshed a half-open probe closes it and the held messages
 * go out. Against a loopback fake of the Cloud API.
 *
 *   npx tsx examples/circuit-breaker.ts
 */
import {
  CircuitOpenError,
  createCircuitBreaker,
  createMemoryCircuitStore,
  createMemoryDeadLetterQueue,
  shouldHold,
} from 'retrykit';
import { type CloudMessage, createWhatsAppClient } from 'retrykit/whatsapp';
import { startFakeWhatsApp } from './support/fake-whatsapp.js';

// Stands in for graph.facebook.com, where only the refreshed token is valid now.
const api = await startFakeWhatsApp({ accessToken: 'refreshed-token' });
const phoneNumberId = '106540352242922';

// One breaker for the phone number, shared by every client of it. In a fleet, give it
// `createRedisCircuitStore(redis)` from retrykit/redis: every worker then opens together.
const breaker = createCircuitBreaker({
  store: createMemoryCircuitStore(),
  consecutiveFailures: 3,
  breakDurationMs: 300,
  onEvent: (event) => {
    if (event.type === 'breaker_transition') console.log(`  circuit ${event.from} → ${event.to}`);
  },
});
const deadLetters = createMemoryDeadLetterQueue<CloudMessage>();
const clientWith = (accessToken: string) =>
  createWhatsAppClient({ accessToken, phoneNumberId, baseUrl: api.url, breaker, dlq: deadLetters });

// A `CircuitOpenError` without a `cause` was refused before any request was made.
const held: { message: CloudMessage; retryAfterMs: number; requested: boolean }[] = [];
const sendAll = async (client: ReturnType<typeof clientWith>, messages: CloudMessage[]) => {
  for (const message of messages) {
    try {
      const sent = await client.sendMessage(message);
      // `held` (no wamid yet) only with `deliveries`, which this client has not.
      if (sent.status === 'accepted') console.log(`  ${message.to}: accepted as ${sent.messageId}`);
    } catch (error) {
      if (!shouldHold(error)) throw error;
      const retryAfterMs = error instanceof CircuitOpenError ? error.retryAfterMs : 0;
      console.log(`  ${message.to}: held (${(error as Error).name})`);
      held.push({ message, retryAfterMs, requested: (error as Error).cause !== undefined });
    }
  }
};

const messages = Array.from(
  { length: 6 },
  (_, i): CloudMessage => ({
    to: `49151000000${i}`,
    type: 'text',
    text: { body: `Order ${i} has shipped` },
  }),
);

console.log('sending with the expired token:');
await sendAll(clientWith('expired-token'), messages);
const refused = held.filter((h) => !h.requested).length;
console.log(`${refused} of ${messages.length} sends were refused without a request`);

console.log('token refreshed; sending the held messages after the break:');
const wait = Math.max(...held.map((h) => h.retryAfterMs));
await new Promise((resolve) => setTimeout(resolve, wait));
const again = held.splice(0).map((h) => h.message);
await sendAll(clientWith('refreshed-token'), again);

console.log(`dead letters: ${await deadLetters.size()}`);
console.log(`the API accepted ${api.accepted.length} of ${messages.length} messages`);
await api.close();
