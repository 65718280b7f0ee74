import { describe, expect, it } from 'vitest';
import { createCircuitBreaker } from '../core/breaker/breaker.js';
import { CircuitOpenError } from '../core/breaker/breaker-errors.js';
import type { RateLimiter } from '../core/rate-limit/rate-limit-types.js';
import { createMemoryCircuitStore } from '../memory/circuit-store.js';
import { createMemoryDeliveryStore } from '../memory/delivery-store.js';
import { createMemoryIdempotencyStore } from '../memory/idempotency.js';
import { createManualClock, type ManualClock } from '../testing/index.js';
import { createWhatsAppClient, type WhatsAppClientOptions } from './client.js';
import type { CloudMessage } from './endpoints.js';
import type { WhatsAppEvent } from './events.js';
import type { WebhookErrorDetail } from './webhook.js';

// Held sends (their outcome unknown) with `deliveries`: what the retry, the breaker, the
// limiter's feedback and a repeated call make of them.

const T = Date.UTC(2026, 0, 1);
/** One turn of the real event loop (not of the test's clock). */
const ioTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 1));
const MESSAGE: CloudMessage = { to: '4915112345678', type: 'text', text: { body: 'hi' } };

/** What the fake Cloud API does with one request. */
type Answer = 'accept' | 'hang' | 'timeout';

function setup(
  script: (n: number) => Answer,
  extra: Partial<Omit<WhatsAppClientOptions<CloudMessage>, 'endpoint' | 'clock'>> & {
    clock?: ManualClock;
  } = {},
) {
  const clock = extra.clock ?? createManualClock(T);
  const deliveries = createMemoryDeliveryStore<CloudMessage, WebhookErrorDetail>({ clock });
  const events: WhatsAppEvent[] = [];
  let requests = 0;
  const fetch = (async (_url: string, init: RequestInit) => {
    const n = ++requests;
    const answer = script(n);
    if (answer === 'timeout') throw new DOMException('Request timed out', 'TimeoutError');
    if (answer === 'hang') {
      return new Promise((_, reject) =>
        init.signal?.addEventListener('abort', () => reject(init.signal?.reason)),
      );
    }
    return new Response(JSON.stringify({ messages: [{ id: `wamid.${n}` }] }), { status: 200 });
  }) as typeof globalThis.fetch;
  const client = createWhatsAppClient({
    accessToken: 'token',
    phoneNumberId: 'PN',
    fetch,
    deliveries,
    store: createMemoryIdempotencyStore({ clock }),
    requestTimeoutMs: 20_000,
    onEvent: (e) => events.push(e),
    clock,
    ...extra,
    retry: { maxAttempts: 3, backoff: { initialDelayMs: 0, jitter: 'none' }, ...extra.retry },
  });
  const send = async (key: string, signal?: AbortSignal) => {
    const p = client.sendMessage(MESSAGE, {
      idempotencyKey: key,
      ...(signal === undefined ? {} : { signal }),
    });
    return settle(p);
  };
  /**
   * Runs the clock until `p` settles, letting real I/O in between: the correlation tag is
   * hashed by `crypto.subtle`, off the microtask queue.
   */
  const settle = async <R>(p: Promise<R>): Promise<R> => {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    for (let i = 0; i < 1_000 && !done; i++) {
      await clock.runAll();
      if (!done) await ioTurn();
    }
    return p;
  };
  return { settle, clock, deliveries, events, client, send, requests: () => requests };
}

describe('held sends: retry.attemptTimeoutMs', () => {
  it('holds a send whose request the attempt timeout cut, like a request timeout', async () => {
    const { send, requests, events } = setup((n) => (n === 1 ? 'hang' : 'accept'), {
      retry: { attemptTimeoutMs: 1_000 },
    });
    expect(await send('order-1')).toEqual({
      status: 'held',
      messageId: undefined,
      attempts: 1,
      deduplicated: false,
    });
    expect(requests()).toBe(1);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'message_held', key: 'order-1', attemptId: 'order-1#1' }),
    );
  });

  it('retries an attempt the timeout cut while it waited for the limiter: nothing was sent', async () => {
    const clock = createManualClock(T);
    let waits = 0;
    const limiter: RateLimiter = {
      tryAcquire: () => ({ ok: true, remaining: 1 }),
      async acquire(_key, _n, o) {
        if (waits++ === 0) await clock.sleep(5_000, o?.signal);
        return 0;
      },
      feedback: () => ({ throttled: () => {}, succeeded: () => {} }),
    };
    const { send, requests } = setup(() => 'accept', {
      clock,
      limiter,
      retry: { attemptTimeoutMs: 1_000 },
    });
    expect(await send('order-1')).toMatchObject({ status: 'accepted', messageId: 'wamid.1' });
    expect(requests()).toBe(1);
    expect(waits).toBe(2);
  });

  it('does not hold a send the caller aborted: it rejects with the reason', async () => {
    const { client, deliveries, requests } = setup(() => 'hang', {
      retry: { attemptTimeoutMs: 1_000 },
    });
    const controller = new AbortController();
    const p = client.sendMessage(MESSAGE, {
      idempotencyKey: 'order-1',
      signal: controller.signal,
    });
    p.catch(() => {});
    for (let i = 0; i < 1_000 && requests() === 0; i++) await ioTurn();
    expect(requests()).toBe(1);
    controller.abort(new Error('shutting down'));
    await expect(p).rejects.toThrow('shutting down');
    expect(requests()).toBe(1);
    expect((await deliveries.get('order-1'))?.dueAt).toBeUndefined();
  });

  it('refuses a bad attemptTimeoutMs, naming it', () => {
    expect(() => setup(() => 'accept', { retry: { attemptTimeoutMs: Number.NaN } })).toThrow(
      /retry\.attemptTimeoutMs must be a number, got NaN/,
    );
  });
});

describe('held sends: the breaker, the limiter and metrics', () => {
  it('counts a held send as a failure: a hung API opens the circuit', async () => {
    const clock = createManualClock(T);
    const breaker = createCircuitBreaker({
      store: createMemoryCircuitStore(),
      consecutiveFailures: 2,
      clock,
    });
    let succeeded = 0;
    const limiter: RateLimiter = {
      tryAcquire: () => ({ ok: true, remaining: 1 }),
      acquire: async () => 0,
      feedback: () => ({ throttled: () => {}, succeeded: () => void succeeded++ }),
    };
    const { send, requests, events } = setup(() => 'timeout', { clock, breaker, limiter });
    expect(await send('order-1')).toMatchObject({ status: 'held', attempts: 1 });
    // The failure that opens the circuit still holds its message: it may have been sent.
    expect(await send('order-2')).toMatchObject({ status: 'held', attempts: 1 });
    const refused = await send('order-3').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(requests()).toBe(2);
    expect(succeeded).toBe(0);
    expect(events.filter((e) => e.type === 'attempt_success')).toEqual([]);
    expect(events.filter((e) => e.type === 'attempt_failure').slice(0, 2)).toEqual([
      expect.objectContaining({ classification: expect.objectContaining({ reason: 'timeout' }) }),
      expect.objectContaining({ classification: expect.objectContaining({ reason: 'timeout' }) }),
    ]);
    expect(events.flatMap((e) => (e.type === 'give_up' ? [e.stopReason] : [])).slice(0, 2)).toEqual(
      ['held', 'circuit_open'],
    );
  });
});

describe('held sends: a repeated call', () => {
  it('answers accepted with the latest wamid once a re-send of the held key was accepted', async () => {
    const { client, settle, send, requests } = setup((n) => (n === 1 ? 'timeout' : 'accept'));
    expect(await send('order-1')).toMatchObject({ status: 'held' });
    expect(await send('order-1')).toEqual({
      status: 'held',
      messageId: undefined,
      attempts: 0,
      deduplicated: true,
    });
    expect(await settle(client.resendMessage('order-1', { afterAttempts: 1 }))).toMatchObject({
      status: 'accepted',
      messageId: 'wamid.2',
    });
    expect(await send('order-1')).toEqual({
      status: 'accepted',
      messageId: 'wamid.2',
      attempts: 0,
      deduplicated: true,
    });
    expect(requests()).toBe(2);
  });
});
