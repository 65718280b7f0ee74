import { describe, expect, it } from 'vitest';
import { createCircuitBreaker } from '../core/breaker/breaker.js';
import type { Classification } from '../core/classify-types.js';
import type { DeadLetterQueue, NewDeadLetter } from '../core/dead-letter/dead-letter-types.js';
import { HeldError, PermanentError, RetryError, shouldHold } from '../core/errors.js';
import type { ClaimResult, IdempotencyStore } from '../core/idempotency/idempotency-types.js';
import { IdempotencyKeyReuseError } from '../core/idempotency/idempotent.js';
import type { RateLimiter } from '../core/rate-limit/rate-limit-types.js';
import { createMemoryCircuitStore } from '../memory/circuit-store.js';
import { createManualClock } from '../testing/index.js';
import { createWhatsAppClient, type WhatsAppClientOptions } from './client.js';
import { type CloudMessage, wasenderEndpoint } from './endpoints.js';
import type { WhatsAppEvent } from './events.js';

// Test-local fakes of the contracts; the real adapters are exercised end to end under test/.

type Reply = { status: number; body?: unknown; headers?: Record<string, string> } | 'hang';

function fakeFetch(replies: Reply[]) {
  const calls: { url: string; body: unknown; headers: Record<string, string> }[] = [];
  let n = 0;
  const fetch = (async (url: string, init: RequestInit) => {
    calls.push({
      url,
      body: JSON.parse(String(init.body)),
      headers: init.headers as Record<string, string>,
    });
    const reply = replies[Math.min(n++, replies.length - 1)]!;
    if (reply === 'hang') {
      return new Promise((_, reject) =>
        init.signal?.addEventListener('abort', () =>
          reject(new DOMException('aborted', 'AbortError')),
        ),
      );
    }
    return new Response(reply.body === undefined ? null : JSON.stringify(reply.body), {
      status: reply.status,
      headers: reply.headers ?? {},
    });
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

const ok = (id = 'wamid.OK'): Reply => ({
  status: 200,
  body: {
    messaging_product: 'whatsapp',
    contacts: [{ input: '4915', wa_id: '4915' }],
    messages: [{ id }],
  },
});
const graph = (status: number, code: number): Reply => ({
  status,
  body: { error: { message: `(#${code}) x`, type: 'OAuthException', code, fbtrace_id: 'T' } },
});

function fakeStore(): IdempotencyStore {
  const entries = new Map<
    string,
    { token: string; result?: unknown; done: boolean; fp?: string }
  >();
  let seq = 0;
  return {
    async claim<R>(key: string, o: { fingerprint?: string }): Promise<ClaimResult<R>> {
      const e = entries.get(key);
      if (e !== undefined && e.fp !== o.fingerprint) return { status: 'mismatch' };
      if (e?.done) return { status: 'completed', result: e.result as R };
      if (e) return { status: 'in_progress', retryAfterMs: 100 };
      const token = String(++seq);
      entries.set(key, { token, done: false, ...(o.fingerprint ? { fp: o.fingerprint } : {}) });
      return { status: 'claimed', token };
    },
    async complete(key, token, result) {
      const e = entries.get(key);
      if (e?.token !== token) return false;
      e.done = true;
      e.result = result;
      return true;
    },
    async release(key, token) {
      if (entries.get(key)?.token !== token) return false;
      entries.delete(key);
      return true;
    },
    async markOnce() {
      return true;
    },
  };
}

function fakeDlq() {
  const added: NewDeadLetter<CloudMessage>[] = [];
  const dlq = {
    async add(entry: NewDeadLetter<CloudMessage>) {
      added.push(entry);
      return { ...entry, id: entry.id ?? `dl${added.length}`, deadAt: new Date(0).toISOString() };
    },
  } as unknown as DeadLetterQueue<CloudMessage>;
  return { dlq, added };
}

function fakeLimiter() {
  const acquired: string[] = [];
  const throttled: [string, Classification][] = [];
  const limiter: RateLimiter = {
    tryAcquire: () => ({ ok: true, remaining: 1 }),
    async acquire(key) {
      acquired.push(key);
      return 0;
    },
    feedback: (key) => ({
      throttled: (c) => void throttled.push([key, c]),
      succeeded: () => {},
    }),
  };
  return { limiter, acquired, throttled };
}

const MESSAGE: CloudMessage = { to: '4915112345678', type: 'text', text: { body: 'hi' } };

function client(
  replies: Reply[],
  extra: Partial<Omit<WhatsAppClientOptions<CloudMessage>, 'endpoint'>> = {},
) {
  const clock = createManualClock(Date.UTC(2026, 0, 1));
  const { fetch, calls } = fakeFetch(replies);
  const events: WhatsAppEvent[] = [];
  const wa = createWhatsAppClient({
    accessToken: 'TOKEN',
    phoneNumberId: 'PN1',
    baseUrl: 'http://fake.test/',
    fetch,
    clock,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  const send = async (payload = MESSAGE, options = {}) => {
    const p = wa.sendMessage(payload, options);
    p.catch(() => {});
    await clock.runAll();
    return p;
  };
  return { wa, send, calls, events, clock };
}

describe('createWhatsAppClient', () => {
  it('posts the Cloud API request and resolves with the wamid, emitting accepted', async () => {
    const { send, calls, events } = client([ok('wamid.A')]);
    expect(await send()).toEqual({
      status: 'accepted',
      messageId: 'wamid.A',
      attempts: 1,
      deduplicated: false,
    });
    expect(calls[0]?.url).toBe('http://fake.test/v23.0/PN1/messages');
    expect(calls[0]?.headers.authorization).toBe('Bearer TOKEN');
    expect(calls[0]?.body).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      ...MESSAGE,
    });
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'message_status', messageId: 'wamid.A', status: 'accepted' }),
    );
  });

  it('retries 130429 (HTTP 400), 5xx and timeouts, then succeeds', async () => {
    const { send, calls } = client([graph(400, 130429), { status: 503 }, 'hang', ok()], {
      requestTimeoutMs: 5000,
    });
    expect(await send()).toMatchObject({ messageId: 'wamid.OK', attempts: 4 });
    expect(calls).toHaveLength(4);
  });

  it('dead-letters a permanent failure after one attempt and rejects with PermanentError', async () => {
    const { dlq, added } = fakeDlq();
    const { send, calls, events } = client([graph(400, 131026)], { dlq });
    const error = await send(MESSAGE, { idempotencyKey: 'k1' }).catch((e) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect(calls).toHaveLength(1);
    expect(added).toEqual([
      expect.objectContaining({
        payload: MESSAGE,
        reason: 'client_error',
        disposition: 'permanent',
        source: 'whatsapp.send',
        origin: { kind: 'send', key: 'k1' },
        attempts: [expect.objectContaining({ errorCode: 131026, reason: 'client_error' })],
      }),
    ]);
    // The dead-letter queue reports what it stored; the client doesn't say it again.
    expect(events.filter((e) => e.type === 'dead_letter')).toEqual([]);
  });

  it('dead-letters exhausted retries with every attempt', async () => {
    const { dlq, added } = fakeDlq();
    const { send, calls } = client([graph(500, 131000)], { dlq, retry: { maxAttempts: 3 } });
    const error = await send().catch((e) => e);
    expect(error).toBeInstanceOf(RetryError);
    expect(calls).toHaveLength(3);
    expect(added[0]).toMatchObject({ disposition: 'exhausted', reason: 'server_error' });
    expect(added[0]?.attempts).toHaveLength(3);
  });

  it('sends once per idempotency key, also for concurrent calls', async () => {
    const store = fakeStore();
    const { wa, send, calls, clock } = client([ok('wamid.ONCE')], { store });
    const first = await send(MESSAGE, { idempotencyKey: 'order-1' });
    const again = await send(MESSAGE, { idempotencyKey: 'order-1' });
    expect(first).toMatchObject({ messageId: 'wamid.ONCE', deduplicated: false });
    expect(again).toEqual({
      status: 'accepted',
      messageId: 'wamid.ONCE',
      attempts: 0,
      deduplicated: true,
    });
    const both = Promise.all([
      wa.sendMessage(MESSAGE, { idempotencyKey: 'order-2' }),
      wa.sendMessage(MESSAGE, { idempotencyKey: 'order-2' }),
    ]);
    await clock.runAll();
    const [a, b] = await both;
    expect(a.messageId).toBe(b.messageId);
    expect(calls).toHaveLength(2);
    const reuse = await send({ ...MESSAGE, to: 'other' }, { idempotencyKey: 'order-1' }).catch(
      (e) => e,
    );
    expect(reuse).toBeInstanceOf(IdempotencyKeyReuseError);
  });

  it('keeps a permanent failure under its key: the duplicate rejects without a request', async () => {
    const store = fakeStore();
    const { send, calls } = client([graph(400, 131026), ok('wamid.LATER')], { store });
    await expect(send(MESSAGE, { idempotencyKey: 'k' })).rejects.toBeInstanceOf(PermanentError);
    await expect(send(MESSAGE, { idempotencyKey: 'k' })).rejects.toBeInstanceOf(PermanentError);
    expect(calls).toHaveLength(1);
  });

  it('with rememberFailures: false, releases the key after a failure so a later call sends', async () => {
    const store = fakeStore();
    const { send, calls } = client([graph(400, 131026), ok('wamid.LATER')], {
      store,
      rememberFailures: false,
    });
    await expect(send(MESSAGE, { idempotencyKey: 'k' })).rejects.toBeInstanceOf(PermanentError);
    expect(await send(MESSAGE, { idempotencyKey: 'k' })).toMatchObject({
      messageId: 'wamid.LATER',
    });
    expect(calls).toHaveLength(2);
  });

  it('takes a limiter token per attempt and routes throttle feedback by code', async () => {
    const number = fakeLimiter();
    const pair = fakeLimiter();
    const { send } = client([graph(400, 130429), graph(400, 131056), ok()], {
      limiter: number.limiter,
      pairLimiter: pair.limiter,
    });
    await send();
    expect(number.acquired).toEqual(['PN1', 'PN1', 'PN1']);
    const pairKey = `PN1:${MESSAGE.to}`;
    expect(pair.acquired).toEqual([pairKey, pairKey, pairKey]);
    expect(number.throttled.map(([k, c]) => [k, c.errorCode])).toEqual([['PN1', 130429]]);
    expect(pair.throttled.map(([k, c]) => [k, c.errorCode])).toEqual([[pairKey, 131056]]);
  });

  it('does not dead-letter when the caller aborts', async () => {
    const { dlq, added } = fakeDlq();
    const { wa, clock } = client(['hang'], { dlq });
    const controller = new AbortController();
    const p = wa.sendMessage(MESSAGE, { signal: controller.signal });
    await clock.advance(10);
    controller.abort(new Error('shutdown'));
    await expect(p).rejects.toThrow('shutdown');
    expect(added).toEqual([]);
  });

  it('aborts a send when the client-wide retry.signal aborts, beside the call signal', async () => {
    const { dlq, added } = fakeDlq();
    const shutdown = new AbortController();
    const { wa, clock, calls } = client(['hang'], { dlq, retry: { signal: shutdown.signal } });
    const call = new AbortController();
    const withBoth = wa.sendMessage(MESSAGE, { signal: call.signal });
    const withClientOnly = wa.sendMessage(MESSAGE);
    await clock.advance(10);
    expect(calls).toHaveLength(2);
    shutdown.abort(new Error('shutdown'));
    await expect(withBoth).rejects.toThrow('shutdown');
    await expect(withClientOnly).rejects.toThrow('shutdown');
    expect(added).toEqual([]);
    await expect(wa.sendMessage(MESSAGE, { signal: call.signal })).rejects.toThrow('shutdown');
    expect(calls).toHaveLength(2);
  });

  it('aborts a send when its call signal aborts, the client signal still live', async () => {
    const { dlq, added } = fakeDlq();
    const shutdown = new AbortController();
    const { wa, clock } = client(['hang', ok('wamid.B')], {
      dlq,
      retry: { signal: shutdown.signal },
    });
    const call = new AbortController();
    const p = wa.sendMessage(MESSAGE, { signal: call.signal });
    await clock.advance(10);
    call.abort(new Error('caller left'));
    await expect(p).rejects.toThrow('caller left');
    expect(added).toEqual([]);
    const next = wa.sendMessage(MESSAGE);
    await clock.runAll();
    expect(await next).toMatchObject({ messageId: 'wamid.B' });
  });

  it('validates options', () => {
    expect(() => createWhatsAppClient({ phoneNumberId: 'PN', accessToken: '' })).toThrow(
      /accessToken/,
    );
    expect(() => createWhatsAppClient({ phoneNumberId: '', accessToken: 't' })).toThrow(
      /phoneNumberId/,
    );
    expect(() =>
      createWhatsAppClient({ phoneNumberId: 'PN', accessToken: 't', requestTimeoutMs: Number.NaN }),
    ).toThrow(/requestTimeoutMs/);
    expect(() =>
      createWhatsAppClient({ phoneNumberId: 'PN', accessToken: 't', bulkhead: {} as never }),
    ).toThrow('bulkhead must have a run(key, fn) method, got {}');
  });
});

describe('createWhatsAppClient with WASenderApi', () => {
  it('honours 429 X-RateLimit-Reset and retries a 503 while the session reconnects', async () => {
    const clock = createManualClock(Date.UTC(2026, 0, 1));
    const { fetch, calls } = fakeFetch([
      {
        status: 429,
        body: { success: false, message: 'Too many' },
        headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '40' },
      },
      { status: 503, body: { success: false, message: 'Session reconnecting' } },
      {
        status: 200,
        body: {
          success: true,
          data: { msgId: 987, jid: '4915@s.whatsapp.net', status: 'in_progress' },
        },
      },
    ]);
    const wa = createWhatsAppClient({
      phoneNumberId: 'session-1',
      endpoint: wasenderEndpoint({ apiKey: 'KEY', baseUrl: 'http://wasender.test' }),
      fetch,
      clock,
    });
    const p = wa.sendMessage({ to: '+4915112345678', text: 'hi' });
    await clock.runAll();
    expect(await p).toMatchObject({ messageId: '987', attempts: 3 });
    expect(calls[0]?.url).toBe('http://wasender.test/api/send-message');
    expect(calls[0]?.body).toEqual({ to: '+4915112345678', text: 'hi' });
    expect(clock.sleeps.filter((ms) => ms !== 20_000)[0]).toBeGreaterThanOrEqual(40_000);
  });
});

describe('createWhatsAppClient: account-wide failures and the breaker', () => {
  const message: CloudMessage = { to: '4915', type: 'text', text: { body: 'hi' } };

  it('holds a 190 (expired token) with a HeldError and writes no dead letter', async () => {
    const { fetch, calls } = fakeFetch([graph(401, 190)]);
    const { dlq, added } = fakeDlq();
    const wa = createWhatsAppClient({ phoneNumberId: 'p1', accessToken: 't', fetch, dlq });
    const error = await wa.sendMessage(message).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HeldError);
    expect(shouldHold(error)).toBe(true);
    expect(calls).toHaveLength(1);
    expect(added).toEqual([]);
  });

  it('opens the number’s circuit and fails fast without a request while it is open', async () => {
    const clock = createManualClock(0);
    const { fetch, calls } = fakeFetch([graph(401, 190)]);
    const { dlq, added } = fakeDlq();
    const transitions: string[] = [];
    const breaker = createCircuitBreaker({
      store: createMemoryCircuitStore(),
      consecutiveFailures: 2,
      clock,
      onEvent: (e) => {
        if (e.type === 'breaker_transition') transitions.push(`${e.key} ${e.to}`);
      },
    });
    const wa = createWhatsAppClient({
      phoneNumberId: 'p1',
      accessToken: 't',
      fetch,
      dlq,
      breaker,
      clock,
    });
    const errors = [];
    for (let i = 0; i < 4; i++) errors.push(await wa.sendMessage(message).catch((e: unknown) => e));
    expect(errors.map((e) => (e as Error).name)).toEqual([
      'HeldError',
      'CircuitOpenError',
      'CircuitOpenError',
      'CircuitOpenError',
    ]);
    expect(calls).toHaveLength(2);
    expect(transitions).toEqual(['p1 open']);
    expect(added).toEqual([]);
  });
});
