import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { composeClassifiers } from '../core/classify.js';
import type { Reason } from '../core/classify-types.js';
import { PermanentError, RetryError } from '../core/errors.js';
import { retry } from '../core/retry.js';
import { createManualClock, seededRandom } from '../testing/index.js';
import {
  classifyWhatsAppError,
  createWhatsAppClassifier,
  usageRetryAfterMs,
  WHATSAPP_ERROR_CODES,
  whatsAppCodeRule,
} from './classify.js';
import { WhatsAppApiError } from './errors.js';

function graphError(code: number, status: number, extra: Record<string, unknown> = {}) {
  return WhatsAppApiError.fromResponse(status, {
    error: {
      message: `(#${code}) test`,
      type: 'OAuthException',
      code,
      error_data: { messaging_product: 'whatsapp', details: 'test details' },
      fbtrace_id: 'Atrace',
      ...extra,
    },
  });
}

type Row = readonly [codes: readonly number[], http: number, retryable: boolean, reason: Reason];

/** The reference table (shared/reference/whatsapp.md), one row per line. */
const TABLE: readonly Row[] = [
  [[0], 401, false, 'auth'],
  [[1], 400, true, 'server_error'],
  [[2], 503, true, 'service_unavailable'],
  [[3], 500, false, 'auth'],
  [[4], 400, true, 'rate_limited'],
  [[10, 200, 250, 299], 403, false, 'auth'],
  [[33, 100], 400, false, 'client_error'],
  [[190], 401, false, 'auth'],
  [[368], 403, false, 'policy'],
  [[80007], 400, true, 'rate_limited'],
  [[130429], 400, true, 'rate_limited'],
  [[130472], 400, false, 'client_error'],
  [[130497], 403, false, 'policy'],
  [[131000], 500, true, 'server_error'],
  [[131005], 403, false, 'auth'],
  [[131008, 131009], 400, false, 'schema_mismatch'],
  [[131016], 500, true, 'service_unavailable'],
  [[131021], 400, false, 'client_error'],
  [[131026], 400, false, 'client_error'],
  [[131030], 400, false, 'client_error'],
  [[131031], 403, false, 'policy'],
  [[131037], 400, false, 'client_error'],
  [[131042], 400, false, 'client_error'],
  [[131045], 500, false, 'client_error'],
  [[131047], 400, false, 'policy'],
  [[131048], 400, false, 'policy'],
  [[131049], 400, false, 'policy'],
  [[131050], 400, false, 'policy'],
  [[131051, 131052, 131053], 400, false, 'client_error'],
  [[131056], 400, true, 'rate_limited'],
  [[131057], 500, true, 'service_unavailable'],
  [[132000, 132005, 132015, 132016], 400, false, 'schema_mismatch'],
  [[132001], 404, false, 'schema_mismatch'],
  [[132068], 400, false, 'policy'],
  [[132069], 400, true, 'rate_limited'],
  [[133000], 500, false, 'client_error'],
  [[133004], 503, true, 'service_unavailable'],
  [[133005, 133006, 133010], 400, false, 'client_error'],
  [[133008, 133009], 400, true, 'rate_limited'],
  [[133015], 400, true, 'service_unavailable'],
  [[133016], 400, true, 'rate_limited'],
  [[135000], 400, false, 'client_error'],
];

describe('classifyWhatsAppError: every row of the error table', () => {
  for (const [codes, http, retryable, reason] of TABLE) {
    for (const code of codes) {
      it(`${code} (HTTP ${http}) is ${retryable ? 'transient' : 'permanent'} ${reason}`, () => {
        const verdict = classifyWhatsAppError(graphError(code, http));
        expect(verdict).toMatchObject({ retryable, reason, code });
        // The same verdict from the raw body, without the HTTP status.
        const body = { error: { code, message: 'x' } };
        expect(classifyWhatsAppError(body)).toMatchObject({ retryable, reason, code });
      });
    }
  }

  it('covers every code the rule table declares', () => {
    const tested = new Set(TABLE.flatMap(([codes]) => codes));
    for (const code of Object.keys(WHATSAPP_ERROR_CODES)) expect(tested).toContain(Number(code));
  });

  it('classifies the throttling codes as retryable although they come with HTTP 400', () => {
    for (const code of [4, 80007, 130429, 131056]) {
      const verdict = composeClassifiers(classifyWhatsAppError)(graphError(code, 400));
      expect(verdict.retryable).toBe(true);
      expect(verdict.reason).toBe('rate_limited');
    }
  });
});

describe('per-code pacing', () => {
  it('131056 backs off 4^X seconds (never less)', async () => {
    const clock = createManualClock();
    let calls = 0;
    const done = retry(
      () => {
        calls++;
        if (calls <= 4) throw graphError(131056, 400);
        return 'ok';
      },
      {
        clock,
        random: seededRandom(1),
        classify: composeClassifiers(classifyWhatsAppError),
        maxAttempts: 6,
      },
    );
    await clock.runAll();
    expect(await done).toBe('ok');
    expect(clock.sleeps).toHaveLength(4);
    clock.sleeps.forEach((ms, x) => {
      expect(ms).toBeGreaterThanOrEqual(1000 * 4 ** x);
      expect(ms).toBeLessThanOrEqual(1250 * 4 ** x);
    });
  });

  it('133015 waits at least 5 minutes', async () => {
    const clock = createManualClock();
    let calls = 0;
    const done = retry(
      () => {
        if (calls++ === 0) throw graphError(133015, 400);
        return 'ok';
      },
      { clock, classify: composeClassifiers(classifyWhatsAppError) },
    );
    await clock.runAll();
    expect(await done).toBe('ok');
    expect(clock.sleeps[0]).toBeGreaterThanOrEqual(300_000);
  });

  it('132069 waits minutes, capped at an hour', () => {
    const verdict = classifyWhatsAppError(graphError(132069, 400));
    expect(verdict?.backoff?.maxDelayMs).toBe(3_600_000);
    expect(verdict?.backoff?.initialDelayMs).toBeGreaterThanOrEqual(60_000);
  });

  it('code 1 gets a few tries only', async () => {
    const clock = createManualClock();
    let calls = 0;
    const done = retry(
      () => {
        calls++;
        throw graphError(1, 400);
      },
      { clock, classify: composeClassifiers(classifyWhatsAppError), maxAttempts: 10 },
    );
    const assertion = expect(done).rejects.toBeInstanceOf(RetryError);
    await clock.runAll();
    await assertion;
    expect(calls).toBe(3);
  });

  it('131049 and 131048 are never retried automatically', async () => {
    for (const code of [131048, 131049]) {
      let calls = 0;
      const done = retry(
        () => {
          calls++;
          throw graphError(code, 400);
        },
        { classify: composeClassifiers(classifyWhatsAppError) },
      );
      await expect(done).rejects.toBeInstanceOf(PermanentError);
      expect(calls).toBe(1);
    }
  });

  it('133008 reads the wait time from the details', () => {
    const error = WhatsAppApiError.fromResponse(400, {
      error: { code: 133008, message: 'x', error_data: { details: 'Please wait 90 seconds' } },
    });
    expect(classifyWhatsAppError(error)?.retryAfterMs).toBe(90_000);
  });

  it('honours Retry-After and the usage headers when present', () => {
    const withRetryAfter = WhatsAppApiError.fromResponse(
      400,
      { error: { code: 130429, message: 'x' } },
      { 'Retry-After': '7' },
    );
    expect(classifyWhatsAppError(withRetryAfter)?.retryAfterMs).toBe(7000);
    const usage = JSON.stringify({
      '1234': [{ type: 'whatsapp', call_count: 100, estimated_time_to_regain_access: 3 }],
    });
    const withUsage = WhatsAppApiError.fromResponse(
      400,
      { error: { code: 80007, message: 'x' } },
      new Headers({ 'X-Business-Use-Case-Usage': usage }),
    );
    expect(classifyWhatsAppError(withUsage)?.retryAfterMs).toBe(180_000);
    expect(usageRetryAfterMs({ 'x-app-usage': 'not json' })).toBeUndefined();
  });
});

describe('fallbacks', () => {
  it('unknown codes fall back on the HTTP status', () => {
    expect(classifyWhatsAppError(graphError(999_999, 500))).toMatchObject({
      retryable: true,
      reason: 'server_error',
      code: 999_999,
    });
    expect(classifyWhatsAppError(graphError(999_999, 429))).toMatchObject({
      retryable: true,
      reason: 'rate_limited',
    });
    expect(classifyWhatsAppError(graphError(999_999, 400))).toMatchObject({
      retryable: false,
      reason: 'client_error',
    });
  });

  it("reads WASenderApi's 429 with X-RateLimit-Reset as seconds from now or epoch seconds", () => {
    const relative = WhatsAppApiError.fromResponse(
      429,
      { success: false, message: 'Too many requests' },
      { 'X-RateLimit-Limit': '256', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '12' },
    );
    expect(classifyWhatsAppError(relative)).toEqual({
      retryable: true,
      reason: 'rate_limited',
      retryAfterMs: 12_000,
    });
    const epoch = Math.ceil(Date.now() / 1000) + 30;
    const absolute = WhatsAppApiError.fromResponse(
      429,
      { success: false, message: 'Too many requests' },
      { 'x-ratelimit-reset': String(epoch) },
    );
    const wait = classifyWhatsAppError(absolute)?.retryAfterMs ?? 0;
    expect(wait).toBeGreaterThan(25_000);
    expect(wait).toBeLessThanOrEqual(31_000);
  });

  it("reads WASenderApi's 503 while the session reconnects as service_unavailable", () => {
    const error = WhatsAppApiError.fromResponse(503, '<html>Session reconnecting</html>');
    expect(classifyWhatsAppError(error)).toMatchObject({
      retryable: true,
      reason: 'service_unavailable',
    });
  });

  it('leaves network errors, timeouts and foreign errors to the core classifier', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(classifyWhatsAppError(reset)).toBeUndefined();
    expect(classifyWhatsAppError(new TypeError('fetch failed'))).toBeUndefined();
    expect(classifyWhatsAppError(new DOMException('late', 'TimeoutError'))).toBeUndefined();
    expect(classifyWhatsAppError(Object.assign(new Error('x'), { code: 42 }))).toBeUndefined();
    const compose = composeClassifiers(classifyWhatsAppError);
    expect(compose(reset)).toMatchObject({ retryable: true, reason: 'network' });
    expect(compose(new TypeError('fetch failed'))).toMatchObject({ reason: 'network' });
    expect(compose(new DOMException('late', 'TimeoutError'))).toMatchObject({ reason: 'timeout' });
  });

  it('classifies webhook error objects ({ code, title }) by code', () => {
    expect(classifyWhatsAppError({ code: 131026, title: 'Message undeliverable' })).toMatchObject({
      retryable: false,
      reason: 'client_error',
      code: 131026,
    });
  });

  it('lets rules be overridden', () => {
    const classifier = createWhatsAppClassifier({
      rules: {
        131049: { reason: 'policy', retryable: true, meaning: 'x', retryAfterMs: 86_400_000 },
      },
    });
    expect(classifier(graphError(131049, 400))).toMatchObject({
      retryable: true,
      retryAfterMs: 86_400_000,
    });
    expect(classifier(graphError(131048, 400))?.retryable).toBe(false);
  });

  it('resolves the range codes', () => {
    expect(whatsAppCodeRule(231)?.reason).toBe('auth');
    expect(whatsAppCodeRule(132010)?.reason).toBe('schema_mismatch');
    expect(whatsAppCodeRule(132017)).toBeUndefined();
  });

  it('never throws and never returns NaN for any input', () => {
    fc.assert(
      fc.property(fc.anything(), fc.integer(), fc.integer({ min: 100, max: 599 }), (v, c, s) => {
        const a = classifyWhatsAppError(v);
        const b = classifyWhatsAppError(graphError(c, s));
        for (const verdict of [a, b]) {
          if (verdict?.retryAfterMs !== undefined)
            expect(Number.isFinite(verdict.retryAfterMs)).toBe(true);
        }
      }),
    );
  });
});

describe('WhatsAppApiError', () => {
  it('parses every field of a Graph API error', () => {
    const error = WhatsAppApiError.fromResponse(
      400,
      {
        error: {
          message: '(#130429) Rate limit hit',
          type: 'OAuthException',
          code: 130429,
          error_data: { messaging_product: 'whatsapp', details: 'Cloud API message throughput' },
          error_subcode: 2494055,
          fbtrace_id: 'AbCdEf',
        },
      },
      new Headers({ 'X-App-Usage': '{}' }),
    );
    expect(error).toMatchObject({
      name: 'WhatsAppApiError',
      code: 'WHATSAPP_API',
      errorCode: 130429,
      type: 'OAuthException',
      subcode: 2494055,
      details: 'Cloud API message throughput',
      fbtraceId: 'AbCdEf',
      status: 400,
      message: '(#130429) Rate limit hit',
    });
    expect(error.headers['x-app-usage']).toBe('{}');
  });

  it('tolerates missing fields, text bodies and garbage', () => {
    expect(WhatsAppApiError.fromResponse(500, undefined)).toMatchObject({
      errorCode: undefined,
      status: 500,
      message: 'WhatsApp API answered HTTP 500',
    });
    expect(WhatsAppApiError.fromResponse(502, 'Bad gateway').message).toBe('Bad gateway');
    expect(WhatsAppApiError.fromResponse(400, '{"error":{"code":"131026"}}').errorCode).toBe(
      131026,
    );
    expect(
      WhatsAppApiError.fromResponse(400, { error: { message: '(#100) Invalid parameter' } })
        .errorCode,
    ).toBe(100);
    fc.assert(
      fc.property(fc.anything(), fc.option(fc.integer({ min: 100, max: 599 })), (body, s) => {
        const error = WhatsAppApiError.fromResponse(s ?? undefined, body);
        expect(error.code).toBe('WHATSAPP_API');
      }),
    );
  });
});
