import { describe, expect, it } from 'vitest';
import {
  type Clock,
  createCircuitBreaker,
  createMemoryCircuitStore,
  createMemoryDeadLetterQueue,
  createMemoryIdempotencyStore,
  createMemoryTokenBucket,
  createMetrics,
} from '../src/index.js';
import { createManualClock } from '../src/testing/index.js';
import {
  type CloudMessage,
  createWebhookHandler,
  createWhatsAppClient,
  signWebhookBody,
  type WebhookUpdate,
  whatsappDeliveryMetrics,
} from '../src/whatsapp/index.js';

// Everything wired as docs/observability.md says: one `createMetrics()` with the WhatsApp
// delivery section, its `onEvent` given to
// every component. The test keeps its own counts of what happened and the window must agree.

const APP_SECRET = 'test-app-secret';
const PHONE = '1055';

function graphError(status: number, code: number): Response {
  return new Response(
    JSON.stringify({ error: { message: `(#${code}) x`, type: 'OAuthException', code } }),
    { status },
  );
}

function accepted(wamid: string): Response {
  return new Response(
    JSON.stringify({
      messaging_product: 'whatsapp',
      contacts: [{ input: '4915', wa_id: '4915' }],
      messages: [{ id: wamid }],
    }),
    { status: 200 },
  );
}

/** The Cloud API: `ok` recipients are accepted, `flaky` get one 503 first, `gone` get 131026. */
function fakeCloudApi() {
  const seen = new Map<string, number>();
  let requests = 0;
  const fetch = (async (_url: string, init: RequestInit) => {
    requests++;
    const { to } = JSON.parse(String(init.body)) as { to: string };
    const n = (seen.get(to) ?? 0) + 1;
    seen.set(to, n);
    if (to === 'gone') return graphError(400, 131026);
    if (to === 'flaky' && n === 1) return graphError(503, 2);
    return accepted(`wamid.${to}`);
  }) as typeof globalThis.fetch;
  return { fetch, requests: () => requests };
}

function statusWebhook(wamid: string, status: string): string {
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '880011223344556',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550001111', phone_number_id: PHONE },
              statuses: [{ id: wamid, status, timestamp: '1767225665', recipient_id: 'ok' }],
            },
          },
        ],
      },
    ],
  });
}

async function post(handle: ReturnType<typeof createWebhookHandler>, body: string) {
  const signature = await signWebhookBody(body, APP_SECRET);
  return handle({ body, headers: { 'x-hub-signature-256': `sha256=${signature}` } });
}

describe('one metrics window wired to every component, as the docs say', () => {
  it('counts every event exactly once', async () => {
    const metrics = createMetrics({ sections: [whatsappDeliveryMetrics()] });
    const { onEvent } = metrics;
    const store = createMemoryIdempotencyStore({ maxEntries: 1000, onEvent });
    const dlq = createMemoryDeadLetterQueue<CloudMessage>({ onEvent });
    const webhookDlq = createMemoryDeadLetterQueue<string>({ onEvent });
    // One request a second, on a clock whose sleeps pass at once: every request after the
    // first waits its turn, deterministically.
    let limiterNow = 0;
    const limiterClock: Clock = {
      now: () => limiterNow,
      sleep: async (ms) => {
        limiterNow += ms;
      },
    };
    const limiter = createMemoryTokenBucket({
      capacity: 1,
      refillPerSecond: 1,
      clock: limiterClock,
      onEvent,
    });
    const api = fakeCloudApi();
    const client = createWhatsAppClient({
      phoneNumberId: PHONE,
      accessToken: 'test-token',
      fetch: api.fetch,
      limiter,
      store,
      dlq,
      onEvent,
      retry: { backoff: { initialDelayMs: 1, maxDelayMs: 1, jitter: 'none' } },
    });
    const enqueued: WebhookUpdate[] = [];
    const handle = createWebhookHandler({
      appSecret: APP_SECRET,
      store,
      dlq: webhookDlq,
      enqueue: (updates) => {
        enqueued.push(...updates);
      },
      onEvent,
    });

    // The test's own tally of what happened.
    let sends = 0;
    let retries = 0;
    let duplicatesCaught = 0;
    let deadLetters = 0;
    let limiterWaits = 0;

    const text = (to: string) => ({ to, type: 'text' as const, text: { body: 'hi' } });
    await client.sendMessage(text('ok'), { idempotencyKey: 'order-1' });
    sends++;
    const again = await client.sendMessage(text('ok'), { idempotencyKey: 'order-1' });
    expect(again.deduplicated).toBe(true);
    duplicatesCaught++;
    await client.sendMessage(text('flaky'), { idempotencyKey: 'order-2' });
    sends++;
    retries++;
    await expect(client.sendMessage(text('gone'), { idempotencyKey: 'order-3' })).rejects.toThrow();
    deadLetters++;

    const delivered = statusWebhook('wamid.ok', 'delivered');
    expect((await post(handle, delivered)).outcome).toBe('enqueued');
    expect((await post(handle, delivered)).outcome).toBe('duplicate');
    duplicatesCaught++;
    expect((await post(handle, '{"not":"a webhook"}')).outcome).toBe('invalid');
    deadLetters++;

    expect(await dlq.size()).toBe(1);
    expect(await webhookDlq.size()).toBe(1);
    expect(enqueued).toHaveLength(1);
    expect(api.requests()).toBe(4);
    limiterWaits = api.requests() - 1;

    const s = metrics.snapshot();
    expect(s.deadLetters.total).toBe(deadLetters);
    expect(s.deadLetters.byReason).toEqual({ client_error: 1, schema_mismatch: 1 });
    expect(s.idempotency.hits).toBe(duplicatesCaught);
    expect(s.idempotency.byStatus).toEqual({ completed: duplicatesCaught });
    expect(s.calls.started).toBe(sends + 1);
    expect(s.calls.succeeded).toBe(sends);
    expect(s.calls.gaveUp).toBe(deadLetters - 1);
    expect(s.retries.scheduled).toBe(retries);
    expect(s.attempts.failed).toBe(retries + 1);
    expect(s.rateLimit.waits).toBe(limiterWaits);
    expect(s.rateLimit.meanWaitMs).toBe(1000);
    expect(s.messages.accepted).toBe(sends);
    expect(s.messages.delivered).toBe(1);
  });

  it('counts each circuit transition once, from the breaker, with the client wired to the same listener', async () => {
    const metrics = createMetrics();
    const { onEvent } = metrics;
    let expired = true;
    const fetch = (async () =>
      expired ? graphError(401, 190) : accepted('wamid.after')) as typeof globalThis.fetch;
    const clock = createManualClock(0);
    const breaker = createCircuitBreaker({
      store: createMemoryCircuitStore(),
      consecutiveFailures: 2,
      breakDurationMs: 1_000,
      clock,
      onEvent,
    });
    const dlq = createMemoryDeadLetterQueue<CloudMessage>({ onEvent });
    const client = createWhatsAppClient({
      phoneNumberId: PHONE,
      accessToken: 'test-token',
      fetch,
      breaker,
      dlq,
      onEvent,
      clock,
    });
    const text = { to: '4915', type: 'text' as const, text: { body: 'hi' } };
    for (let i = 0; i < 4; i++) await expect(client.sendMessage(text)).rejects.toThrow();
    expect(metrics.checkHealth().breaches).toEqual([
      { check: 'openCircuits', value: 1, threshold: 0, keys: [PHONE] },
    ]);
    expired = false;
    await clock.advance(1_000);
    await client.sendMessage(text);

    const s = metrics.snapshot();
    expect(s.breakers).toEqual({ opened: 1, closed: 1, notClosed: {} });
    expect(s.giveUps.byStopReason).toEqual({ held: 1, circuit_open: 3 });
    expect(s.deadLetters.total).toBe(0);
    expect(await dlq.size()).toBe(0);
    expect(metrics.checkHealth().breaches).toEqual([]);
  });
});
