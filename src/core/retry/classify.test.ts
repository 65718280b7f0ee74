import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PermanentError, permanent } from '../errors.js';
import { classify, classifyStatus, composeClassifiers, parseRetryAfter } from './classify.js';

describe('classify', () => {
  it.each([
    [408, true, 'timeout'],
    [425, true, 'server_error'],
    [429, true, 'rate_limited'],
    [500, true, 'server_error'],
    [502, true, 'server_error'],
    [503, true, 'service_unavailable'],
    [504, true, 'server_error'],
    [599, true, 'server_error'],
    [501, false, 'server_error'],
    [505, false, 'server_error'],
    [400, false, 'client_error'],
    [401, false, 'auth'],
    [403, false, 'auth'],
    [404, false, 'client_error'],
    [422, false, 'schema_mismatch'],
  ] as const)('HTTP %i → retryable %s, %s', (status, retryable, reason) => {
    expect(classifyStatus(status)).toEqual({ retryable, reason });
    expect(classify({ status })).toMatchObject({ retryable, reason });
    expect(classify({ statusCode: status })).toMatchObject({ retryable, reason });
    expect(classify({ response: { status } })).toMatchObject({ retryable, reason });
  });

  it('reads a fetch Response with its Retry-After header', () => {
    const response = new Response(null, { status: 429, headers: { 'Retry-After': '7' } });
    expect(classify(response)).toEqual({
      retryable: true,
      reason: 'rate_limited',
      retryAfterMs: 7000,
    });
  });

  it('reads an axios-style error with response headers', () => {
    const error = Object.assign(new Error('Request failed'), {
      response: { status: 503, headers: { 'retry-after': '2' } },
    });
    expect(classify(error)).toEqual({
      retryable: true,
      reason: 'service_unavailable',
      retryAfterMs: 2000,
    });
  });

  it.each(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'])(
    'treats %s as a transient network error',
    (code) => {
      expect(classify(Object.assign(new Error('x'), { code }))).toEqual({
        retryable: true,
        reason: 'network',
      });
    },
  );

  it.each(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT'])(
    'treats %s as a timeout',
    (code) => {
      expect(classify(Object.assign(new Error('x'), { code }))).toEqual({
        retryable: true,
        reason: 'timeout',
      });
    },
  );

  it("reads undici's `TypeError: fetch failed` and its cause", () => {
    expect(classify(new TypeError('fetch failed'))).toEqual({ retryable: true, reason: 'network' });
    const withCause = new TypeError('fetch failed', {
      cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }),
    });
    expect(classify(withCause)).toEqual({ retryable: true, reason: 'network' });
  });

  it('treats AbortSignal.timeout as a timeout and a plain abort as final', async () => {
    const timeout = await fetch('http://127.0.0.1:9', { signal: AbortSignal.timeout(0) }).catch(
      (e: unknown) => e,
    );
    expect(classify(timeout)).toMatchObject({ retryable: true });
    expect(classify(new DOMException('t', 'TimeoutError'))).toEqual({
      retryable: true,
      reason: 'timeout',
    });
    expect(classify(new DOMException('a', 'AbortError'))).toEqual({
      retryable: false,
      reason: 'aborted',
    });
  });

  it('keeps PermanentError permanent, with the reason of what it wraps', () => {
    expect(classify(permanent(new Error('bad')))).toEqual({ retryable: false, reason: 'unknown' });
    expect(classify(new PermanentError({ status: 503 }))).toEqual({
      retryable: false,
      reason: 'service_unavailable',
    });
  });

  it('gives every PermanentError a classification: its own, or its cause’s reason', () => {
    expect(permanent({ status: 400 }).classification).toEqual({
      retryable: false,
      reason: 'client_error',
    });
    expect(new PermanentError(undefined).classification).toEqual({
      retryable: false,
      reason: 'unknown',
    });
    const inner = new PermanentError('x', { classification: { retryable: false, reason: 'auth' } });
    expect(permanent(new PermanentError(inner)).classification.reason).toBe('auth');
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('no reading me');
        },
      },
    );
    expect(permanent(hostile).classification).toEqual({ retryable: false, reason: 'unknown' });
    fc.assert(
      fc.property(fc.anything(), (cause) => {
        const error = new PermanentError(cause);
        expect(error.classification).toEqual(classify(error));
        expect(error.classification.retryable).toBe(false);
      }),
    );
  });

  it('treats anything unexpected as transient and unknown', () => {
    for (const thrown of [new Error('boom'), 'a string', 42, null, undefined, { weird: true }]) {
      expect(classify(thrown)).toEqual({ retryable: true, reason: 'unknown' });
    }
  });

  it('never throws, whatever is thrown (property)', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const c = classify(value);
        expect(typeof c.retryable).toBe('boolean');
      }),
    );
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-23T12:00:00Z');

  it('reads delta seconds and HTTP dates', () => {
    expect(parseRetryAfter({ 'Retry-After': '120' }, now)).toBe(120_000);
    expect(parseRetryAfter({ 'retry-after': 'Mon, 23 Nov 2026 12:00:30 GMT' }, now)).toBe(30_000);
    expect(parseRetryAfter({ 'retry-after': 'Mon, 23 Nov 2026 11:00:00 GMT' }, now)).toBe(0);
    expect(parseRetryAfter(new Headers({ 'Retry-After': '1.5' }), now)).toBe(1_500);
  });

  it('tells X-RateLimit-Reset epoch milliseconds, epoch seconds and seconds-from-now apart', () => {
    expect(parseRetryAfter({ 'X-RateLimit-Reset': String(now / 1000 + 45) }, now)).toBe(45_000);
    expect(parseRetryAfter({ 'X-RateLimit-Reset': String(now + 45_000) }, now)).toBe(45_000);
    expect(parseRetryAfter({ 'x-ratelimit-reset': '45' }, now)).toBe(45_000);
    expect(parseRetryAfter({ 'x-ratelimit-reset': ['12'] }, now)).toBe(12_000);
    expect(parseRetryAfter({ 'x-ratelimit-reset': String(now - 5_000) }, now)).toBe(0);
    expect(parseRetryAfter({ 'x-ratelimit-reset': String(now / 1000 - 5) }, now)).toBe(0);
  });

  it('reads X-RateLimit-Reset alike in all three units (property)', () => {
    fc.assert(
      fc.property(
        // From 2001-09-09 (where both Unix-time forms start) to the year 2286.
        fc.integer({ min: 1_000_000_000_000, max: 9_999_999_999_000 }),
        fc.integer({ min: 0, max: 999_999_999 }),
        (nowMs, seconds) => {
          const ms = seconds * 1000;
          const at = (value: number) =>
            parseRetryAfter({ 'x-ratelimit-reset': String(value) }, nowMs);
          expect(at(seconds)).toBe(ms);
          // A fractional Unix time in seconds carries float error below a microsecond.
          expect(Math.abs((at((nowMs + ms) / 1000) as number) - ms)).toBeLessThan(0.01);
          expect(at(nowMs + ms)).toBe(ms);
        },
      ),
    );
  });

  it('never throws, whatever the thrown value does when read', () => {
    const trap = () => {
      throw new Error('trap');
    };
    const proxy = new Proxy({}, { get: trap, getPrototypeOf: trap, has: trap, ownKeys: trap });
    expect(classify(proxy)).toEqual({ retryable: true, reason: 'unknown' });
    const getter = Object.defineProperty(new Error('x'), 'code', { get: trap });
    expect(classify(getter)).toEqual({ retryable: true, reason: 'unknown' });
    const headers = { status: 429, headers: { get: trap } };
    expect(classify(headers)).toEqual({ retryable: true, reason: 'unknown' });
    expect(composeClassifiers(() => undefined)(proxy)).toEqual({
      retryable: true,
      reason: 'unknown',
    });
  });

  it('prefers Retry-After and ignores garbage', () => {
    expect(parseRetryAfter({ 'retry-after': '3', 'x-ratelimit-reset': '90' }, now)).toBe(3_000);
    expect(parseRetryAfter({ 'retry-after': 'soon' }, now)).toBeUndefined();
    expect(parseRetryAfter({ 'retry-after': '-5' }, now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter({}, now)).toBeUndefined();
  });

  it('is never negative or NaN (property)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('retry-after', 'x-ratelimit-reset', 'other'), fc.string()),
        (headers) => {
          const ms = parseRetryAfter(headers, now);
          if (ms !== undefined) {
            expect(Number.isFinite(ms)).toBe(true);
            expect(ms).toBeGreaterThanOrEqual(0);
          }
        },
      ),
    );
  });
});

describe('composeClassifiers', () => {
  it('lets the first verdict win and falls back on classify', () => {
    const special = composeClassifiers(
      (e) =>
        (e as { code?: number }).code === 130429
          ? { retryable: true, reason: 'rate_limited' }
          : undefined,
      () => undefined,
    );
    expect(special({ code: 130429, status: 400 })).toEqual({
      retryable: true,
      reason: 'rate_limited',
    });
    expect(special({ status: 400 })).toEqual({ retryable: false, reason: 'client_error' });
  });

  it('asks the classifiers about a PermanentError of the caller’s own, as before it had one', () => {
    const c = composeClassifiers((error) =>
      error instanceof PermanentError ? { retryable: false, reason: 'policy' } : undefined,
    );
    expect(c(permanent({ status: 400 }))).toEqual({ retryable: false, reason: 'policy' });
    expect(composeClassifiers()(permanent({ status: 400 }))).toEqual({
      retryable: false,
      reason: 'client_error',
    });
  });

  it('never overrides a classification attached to a PermanentError', () => {
    const c = composeClassifiers(() => ({ retryable: true, reason: 'network' }));
    const error = new PermanentError('x', {
      classification: { retryable: false, reason: 'policy' },
    });
    expect(c(error)).toEqual({ retryable: false, reason: 'policy' });
  });
});
