import { afterEach, expect, it } from 'vitest';
import { startFakeWhatsApp } from '../examples/support/fake-whatsapp.js';
import {
  type CircuitBreaker,
  CircuitOpenError,
  createCircuitBreaker,
  createMemoryDeadLetterQueue,
  createMetrics,
  type DeadLetterQueue,
  shouldHold,
} from '../src/index.js';
import { createRedisCircuitStore } from '../src/redis/index.js';
import {
  type CloudMessage,
  createWhatsAppClient,
  type WhatsAppEvent,
} from '../src/whatsapp/index.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';

/**
 * Length of the token outage, in milliseconds (real time: the fake Cloud API is real HTTP).
 * `npm run test:outage` runs it with 60 s.
 */
const OUTAGE_MS = Number(process.env.RETRYKIT_OUTAGE_MS ?? 1_500);
const PHONE = '1066';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeRedis(
  'a token expiry against the fake Cloud API, two workers sharing a Redis circuit',
  () => {
    it('opens the circuit in both workers, dead-letters nothing, and resumes through half-open probes', {
      timeout: OUTAGE_MS + 30_000,
    }, async () => {
      const fake = await startFakeWhatsApp({ rateLimitPerSecond: 10_000 });
      cleanups.push(() => fake.close());
      const prefix = uniquePrefix('breaker-e2e');

      // The outage: for OUTAGE_MS the token the workers hold is expired, so the real fake
      // answers every request with 190 (HTTP 401) until the token is "refreshed".
      let outage = { from: Number.POSITIVE_INFINITY, to: Number.POSITIVE_INFINITY };
      let expiredRequests = 0;
      const fetchWithToken: typeof fetch = (url, init) => {
        const now = Date.now();
        if (now >= outage.from && now < outage.to) {
          expiredRequests++;
          return fetch(url, {
            ...init,
            headers: {
              ...(init?.headers as Record<string, string>),
              authorization: 'Bearer expired',
            },
          });
        }
        return fetch(url, init);
      };

      const metrics = createMetrics();
      const worker = (name: string) => {
        const events: WhatsAppEvent[] = [];
        const onEvent = (e: WhatsAppEvent) => {
          events.push(e);
          metrics.onEvent(e);
        };
        const breaker: CircuitBreaker = createCircuitBreaker({
          store: createRedisCircuitStore(connectRedis(), { prefix }),
          consecutiveFailures: 3,
          breakDurationMs: 250,
          breakMultiplier: 1,
          halfOpenSuccesses: 2,
          onEvent,
        });
        const dlq: DeadLetterQueue<CloudMessage> = createMemoryDeadLetterQueue<CloudMessage>({
          onEvent,
        });
        const client = createWhatsAppClient({
          phoneNumberId: PHONE,
          accessToken: fake.accessToken,
          baseUrl: fake.url,
          fetch: fetchWithToken,
          breaker,
          dlq,
          onEvent,
          retry: { backoff: { initialDelayMs: 5, maxDelayMs: 20 } },
        });
        return { name, client, dlq, events, refused: 0, held: 0 };
      };
      const workers = [worker('A'), worker('B')];

      // Each worker sends one message every 20 ms; a message held by the outage is sent again
      // after the wait the error names (the break), like a job moved back to delayed.
      const start = Date.now();
      outage = { from: start + 300, to: start + 300 + OUTAGE_MS };
      const sendUntil = outage.to + 400;
      const sent = new Map<string, string>();
      let callsInOutage = 0;
      const sendOne = async (w: (typeof workers)[number], id: string): Promise<void> => {
        while (Date.now() < sendUntil + 10_000) {
          const now = Date.now();
          if (now >= outage.from && now < outage.to) callsInOutage++;
          try {
            const result = await w.client.sendMessage({
              to: id,
              type: 'text',
              text: { body: id },
            });
            if (result.status !== 'accepted') throw new Error(`${id} was held`);
            sent.set(id, result.messageId);
            return;
          } catch (error) {
            if (!shouldHold(error)) throw error;
            if (error instanceof CircuitOpenError) w.refused++;
            else w.held++;
            await sleep(error instanceof CircuitOpenError ? Math.max(error.retryAfterMs, 10) : 50);
          }
        }
        throw new Error(`${id} was still held 10 s after the outage`);
      };
      const pending: Promise<void>[] = [];
      for (let i = 0; Date.now() < sendUntil; i++) {
        for (const w of workers) pending.push(sendOne(w, `${w.name}${i}`));
        await sleep(20);
      }
      await Promise.all(pending);

      // Nothing lost, nothing doubled, nothing dead-lettered.
      const ids = fake.accepted.map((m) => m.to);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBe(pending.length);
      expect(sent.size).toBe(pending.length);
      for (const w of workers) expect(await w.dlq.size()).toBe(0);
      expect(metrics.snapshot().deadLetters.total).toBe(0);

      // Every worker was refused fast while the circuit was open: the outage cost the sends
      // already in flight when it began, the 3 that opened it and one probe per break, not a
      // request per send (a loaded machine stretches the first part, hence the ratio).
      for (const w of workers) expect(w.refused).toBeGreaterThan(0);
      expect(expiredRequests).toBeGreaterThanOrEqual(3);
      expect(expiredRequests * 3).toBeLessThan(callsInOutage);

      // One open (the worker whose failure tripped it reported it), probes while the token was
      // still expired opened it again, and the probes after the refresh closed it.
      const transitions = workers
        .flatMap((w) => w.events)
        .flatMap((e) => (e.type === 'breaker_transition' ? [e] : []))
        .sort((x, y) => x.time - y.time)
        .map((e) => `${e.from}>${e.to}`);
      expect(transitions.filter((t) => t === 'closed>open')).toHaveLength(1);
      expect(transitions.filter((t) => t === 'half_open>closed')).toHaveLength(1);
      expect(transitions.at(-1)).toBe('half_open>closed');
      expect(metrics.checkHealth().breaches.some((b) => b.check === 'openCircuits')).toBe(false);
      expect(metrics.snapshot().giveUps.byStopReason.circuit_open).toBeGreaterThan(0);
    });
  },
);
