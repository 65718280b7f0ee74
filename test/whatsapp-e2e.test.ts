import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeWhatsApp, startFakeWhatsApp } from '../examples/support/fake-whatsapp.js';
import {
  createMemoryDeadLetterQueue,
  createMemoryIdempotencyStore,
  createMemoryTokenBucket,
  type DeadLetterEntry,
  type DeadLetterQueue,
} from '../src/index.js';
import {
  type CloudMessage,
  createWebhookHandler,
  createWhatsAppClient,
  reduceStatus,
  type StatusUpdate,
  wasenderEndpoint,
} from '../src/whatsapp/index.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

function maxInWindow(times: readonly number[], windowMs = 1000): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let end = 0, start = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

async function allEntries<P>(dlq: DeadLetterQueue<P>): Promise<DeadLetterEntry<P>[]> {
  const out: DeadLetterEntry<P>[] = [];
  for (let cursor: string | undefined; ; ) {
    const page = await dlq.list({ limit: 500, ...(cursor === undefined ? {} : { cursor }) });
    out.push(...page.entries);
    cursor = page.cursor;
    if (cursor === undefined || page.entries.length === 0) return out;
  }
}

const readRaw = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('createWhatsAppClient end to end against the fake Cloud API over HTTP', () => {
  it('delivers every message exactly once, dead-letters the undeliverable, stays under the rate, and resolves every status', async () => {
    const LIMIT = 50;
    const TOTAL = 240;
    const APP_SECRET = 'e2e-secret';

    // Webhook receiver: createWebhookHandler over node:http, statuses folded with reduceStatus.
    const states = new Map<string, StatusUpdate>();
    let stale = 0;
    let duplicates = 0;
    const handle = createWebhookHandler({
      appSecret: APP_SECRET,
      store: createMemoryIdempotencyStore({ maxEntries: 10_000 }),
      enqueue: (updates) => {
        for (const u of updates) {
          if (u.kind !== 'status') continue;
          const current = states.get(u.id);
          const next = reduceStatus(current, u);
          if (current !== undefined && next === current && u.status !== current.status) stale++;
          states.set(u.id, next);
        }
      },
    });
    const receiverUrl = await listen(
      createServer(async (req, res) => {
        const result = await handle({ body: await readRaw(req), headers: req.headers });
        duplicates += result.duplicates;
        res.writeHead(result.status).end(result.body);
      }),
    );

    const fake: FakeWhatsApp = await startFakeWhatsApp({
      appSecret: APP_SECRET,
      webhookUrl: `${receiverUrl}/webhook`,
      rateLimitPerSecond: LIMIT,
      faults: { serverError: 0.05, rateLimit: 0.05, hang: 0.01 },
      undeliverable: (to) => to.endsWith('0'),
      duplicateShare: 0.2,
      reorderShare: 0.5,
      seed: 3,
    });
    cleanups.push(() => fake.close());

    const sendTimes: number[] = [];
    const dlq = createMemoryDeadLetterQueue<CloudMessage>();
    const whatsapp = createWhatsAppClient({
      accessToken: fake.accessToken,
      phoneNumberId: 'PN-E2E',
      baseUrl: fake.url,
      fetch: (url, init) => {
        sendTimes.push(performance.now());
        return fetch(url, init);
      },
      // Well under the fake's limit: the room absorbs loopback jitter on a loaded machine.
      limiter: createMemoryTokenBucket({ capacity: 2, refillPerSecond: 35 }),
      store: createMemoryIdempotencyStore({ maxEntries: 10_000 }),
      dlq,
      requestTimeoutMs: 1000,
      retry: { maxAttempts: 8, backoff: { initialDelayMs: 50, maxDelayMs: 500 } },
    });

    const orders = Array.from({ length: TOTAL }, (_, i) => ({
      key: `order-${i}`,
      payload: {
        to: `4915100${String(i).padStart(4, '0')}`,
        type: 'text',
        text: { body: `order-${i}` },
      },
    }));
    let next = 0;
    const outcomes = new Map<string, 'sent' | 'failed'>();
    await Promise.all(
      Array.from({ length: 30 }, async () => {
        while (next < orders.length) {
          const { key, payload } = orders[next++]!;
          // Every 8th order is sent twice at once, and once more afterwards.
          const calls = next % 8 === 0 ? 2 : 1;
          const results = await Promise.allSettled(
            Array.from({ length: calls }, () =>
              whatsapp.sendMessage(payload, { idempotencyKey: key }),
            ),
          );
          if (calls === 2) {
            const again = await whatsapp
              .sendMessage(payload, { idempotencyKey: key })
              .catch(() => undefined);
            if (again !== undefined) expect(again.deduplicated).toBe(true);
          }
          outcomes.set(key, results.some((r) => r.status === 'fulfilled') ? 'sent' : 'failed');
        }
      }),
    );
    await fake.drainWebhooks();

    // Exactly once: every deliverable order accepted once, the undeliverable never.
    const acceptedPerOrder = new Map<string, number>();
    for (const m of fake.accepted) {
      const body = (m.payload.text as { body: string }).body;
      acceptedPerOrder.set(body, (acceptedPerOrder.get(body) ?? 0) + 1);
    }
    const deliverable = orders.filter((o) => !o.payload.to.endsWith('0'));
    expect(deliverable.length).toBeGreaterThan(0);
    for (const o of deliverable) {
      expect(acceptedPerOrder.get(o.key), o.key).toBe(1);
      expect(outcomes.get(o.key)).toBe('sent');
    }
    expect(fake.accepted).toHaveLength(deliverable.length);

    // Permanent failures dead-lettered, once each, with the payload and the code.
    const letters = await allEntries(dlq);
    const undeliverable = orders.filter((o) => o.payload.to.endsWith('0'));
    expect(letters.map((l) => l.id).sort()).toEqual(undeliverable.map((o) => o.key).sort());
    for (const letter of letters) {
      expect(letter).toMatchObject({
        reason: 'client_error',
        disposition: 'permanent',
        source: 'whatsapp.send',
      });
      expect(letter.attempts.at(-1)?.errorCode).toBe(131026);
      expect(letter.payload.to.endsWith('0')).toBe(true);
    }

    // The faults really happened, and the send rate never went over the limit.
    expect(fake.faults.server_error ?? 0).toBeGreaterThan(0);
    expect(fake.faults.rate_limit ?? 0).toBeGreaterThan(0);
    expect(maxInWindow(sendTimes)).toBeLessThanOrEqual(LIMIT);
    expect(fake.maxInWindow(1000, 'PN-E2E')).toBeLessThanOrEqual(LIMIT);
    expect(fake.faults.rate_window ?? 0).toBe(0);

    // Every status webhook deduped and folded: each message ends on its latest status.
    expect(duplicates).toBeGreaterThan(0);
    expect(stale).toBeGreaterThan(0);
    for (const m of fake.accepted)
      expect(states.get(m.wamid)?.status).toBe(fake.finalStatus.get(m.wamid));
  });

  it('sends through a WASenderApi-style endpoint, riding out 429s and 503s', async () => {
    const fake = await startFakeWhatsApp({ faults: { serverError: 0.2, rateLimit: 0.2 }, seed: 5 });
    cleanups.push(() => fake.close());
    const whatsapp = createWhatsAppClient({
      phoneNumberId: 'wasender-session',
      endpoint: wasenderEndpoint({ apiKey: fake.accessToken, baseUrl: fake.url }),
      store: createMemoryIdempotencyStore({ maxEntries: 100 }),
      retry: { maxAttempts: 10, backoff: { initialDelayMs: 10, maxDelayMs: 100 } },
    });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        whatsapp.sendMessage({ to: `+4915${i}`, text: `hello ${i}` }, { idempotencyKey: `w${i}` }),
      ),
    );
    expect(new Set(results.map((r) => r.messageId)).size).toBe(20);
    expect(fake.accepted).toHaveLength(20);
    expect((fake.faults.server_error ?? 0) + (fake.faults.rate_limit ?? 0)).toBeGreaterThan(0);
  });
});
