import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Classification, Reason } from '../core/classify-types.js';
import { PermanentError, RetryError } from '../core/errors.js';
import { classifyStatus, composeClassifiers } from '../core/retry/classify.js';
import { retry } from '../core/retry/retry.js';
import { createManualClock, seededRandom } from '../testing/index.js';
import {
  classifyWhatsAppError,
  createWhatsAppClassifier,
  usageRetryAfterMs,
  WHATSAPP_ERROR_CODES,
  whatsAppCodeRule,
} from './classify.js';
import { WhatsAppApiError } from './errors.js';
import { parseWebhook } from './webhook.js';

/** The documented shape: every field but `code` and `message` may be missing. */
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

const CALL_LIMIT = { initialDelayMs: 60_000, multiplier: 2, jitter: 'proportional' } as const;

type Verdict = Omit<Classification, 'errorCode'>;
const no = (reason: Reason): Verdict => ({ retryable: false, reason });
/** Not retried and not the message's fault: held, not dead-lettered. */
const held = (reason: Reason): Verdict => ({ retryable: false, reason, scope: 'account' });
const yes = (reason: Reason, pacing: Omit<Verdict, 'retryable' | 'reason'> = {}): Verdict => ({
  retryable: true,
  reason,
  ...pacing,
});

type Row = readonly [code: number, http: number, title: string, verdict: Verdict];

/**
 * Every documented code, with the HTTP status Meta documents (400 where it documents none) and
 * the code's title, and the verdict retrykit gives it, pacing included.
 */
const DOCUMENTED: readonly Row[] = [
  // Graph API "Handling errors"
  [0, 401, 'AuthException', held('auth')],
  [1, 400, 'API Unknown', yes('server_error', { maxAttempts: 3 })],
  [2, 503, 'API Service', yes('service_unavailable')],
  [3, 500, 'API Method', no('auth')],
  [4, 400, 'API Too Many Calls', yes('rate_limited', { backoff: CALL_LIMIT })],
  [10, 403, 'Permission Denied', no('auth')],
  [17, 400, 'User request limit reached', yes('rate_limited', { backoff: CALL_LIMIT })],
  [33, 400, 'Parameter value is not valid', no('client_error')],
  [100, 400, 'Invalid parameter', no('client_error')],
  [102, 401, 'API Session', held('auth')],
  [190, 401, 'Access token has expired', held('auth')],
  [200, 403, 'API Permission', no('auth')],
  [250, 403, 'API Permission', no('auth')],
  [299, 403, 'API Permission', no('auth')],
  [341, 400, 'Application limit reached', yes('rate_limited', { backoff: CALL_LIMIT })],
  [368, 403, 'Temporarily blocked for policies violations', held('policy')],
  [506, 400, 'Duplicate Post', no('client_error')],
  [1609005, 400, 'Error Posting Link', no('client_error')],
  // WhatsApp error codes: throttling
  [80007, 400, 'Rate limit issues', yes('rate_limited', { backoff: CALL_LIMIT })],
  [130429, 400, 'Rate limit hit', yes('rate_limited')],
  [131048, 400, 'Spam rate limit hit', no('policy')],
  [
    131056,
    400,
    '(Business Account, Consumer Account) pair rate limit hit',
    yes('rate_limited', {
      backoff: { initialDelayMs: 1000, multiplier: 4, jitter: 'proportional' },
    }),
  ],
  [
    133016,
    400,
    'Account register deregister rate limit exceeded',
    yes('rate_limited', {
      backoff: { initialDelayMs: 900_000, multiplier: 2, jitter: 'proportional' },
    }),
  ],
  // WhatsApp error codes: integrity
  [
    130497,
    403,
    'Business account is restricted from messaging users in this country',
    no('policy'),
  ],
  [131031, 403, 'Account has been locked', held('policy')],
  // WhatsApp error codes: other
  [130472, 400, "User's number is part of an experiment", no('client_error')],
  [131000, 500, 'Something went wrong', yes('server_error')],
  [131005, 403, 'Access denied', no('auth')],
  [131008, 400, 'Required parameter is missing', no('schema_mismatch')],
  [131009, 400, 'Parameter value is not valid', no('schema_mismatch')],
  [131016, 500, 'Service unavailable', yes('service_unavailable')],
  [131021, 400, 'Recipient cannot be sender', no('client_error')],
  [131026, 400, 'Message Undeliverable', no('client_error')],
  [131030, 400, 'Recipient phone number not in allowed list', no('client_error')],
  [131037, 400, 'WhatsApp provided number needs display name approval', no('client_error')],
  [131042, 400, 'Business eligibility payment issue', no('client_error')],
  [131045, 500, 'Incorrect certificate', no('client_error')],
  [131047, 400, 'Re-engagement message', no('policy')],
  [131049, 400, 'Meta chose not to deliver', no('policy')],
  [131050, 400, 'User stopped marketing messages', no('policy')],
  [131051, 400, 'Unsupported message type', no('client_error')],
  [131052, 400, 'Media download error', no('client_error')],
  [131053, 400, 'Media upload error', no('client_error')],
  [131057, 500, 'Account in maintenance mode', yes('service_unavailable')],
  [132000, 400, 'Template Param Count Mismatch', no('schema_mismatch')],
  [132001, 404, 'Template does not exist', no('schema_mismatch')],
  [132005, 400, 'Template Hydrated Text Too Long', no('schema_mismatch')],
  [132007, 400, 'Template Format Character Policy Violated', no('schema_mismatch')],
  [132010, 400, 'Template error', no('schema_mismatch')],
  [132012, 400, 'Template Parameter Format Mismatch', no('schema_mismatch')],
  [132015, 400, 'Template is Paused', no('schema_mismatch')],
  [132016, 400, 'Template is Disabled', no('schema_mismatch')],
  [132068, 400, 'Flow is blocked', no('policy')],
  [
    132069,
    400,
    'Flow is throttled',
    yes('rate_limited', {
      backoff: {
        initialDelayMs: 360_000,
        multiplier: 2,
        maxDelayMs: 3_600_000,
        jitter: 'proportional',
      },
    }),
  ],
  [133000, 500, 'Incomplete deregistration', no('client_error')],
  [133004, 503, 'Server temporarily unavailable', yes('service_unavailable')],
  [133005, 400, 'Two step verification PIN Mismatch', no('client_error')],
  [133006, 400, 'Phone number re-verification needed', no('client_error')],
  [
    133008,
    400,
    'Too many two step verification PIN guesses for this phone number',
    yes('rate_limited', {
      backoff: { initialDelayMs: 60_000, multiplier: 2, jitter: 'proportional' },
    }),
  ],
  [
    133009,
    400,
    'Two step verification PIN Guessed Too Fast',
    yes('rate_limited', {
      backoff: { initialDelayMs: 60_000, multiplier: 2, jitter: 'proportional' },
    }),
  ],
  [133010, 400, 'Phone number Not Registered', no('client_error')],
  [
    133015,
    400,
    'Please wait a few minutes before attempting to register this phone number',
    yes('service_unavailable', { retryAfterMs: 300_000 }),
  ],
  [135000, 400, 'Generic user error', no('client_error')],
  // Marketing Messages API
  [131055, 400, 'Method not allowed', no('client_error')],
  [
    134101,
    400,
    'Template syncing',
    yes('service_unavailable', {
      backoff: {
        initialDelayMs: 120_000,
        multiplier: 2,
        maxDelayMs: 600_000,
        jitter: 'proportional',
      },
    }),
  ],
  [134102, 400, 'Template unavailable', no('client_error')],
  // Message-templates endpoint reference
  [
    80008,
    400,
    'Too many calls to this WhatsApp Business account',
    yes('rate_limited', { backoff: CALL_LIMIT }),
  ],
];

describe('classifyWhatsAppError: every documented code', () => {
  for (const [code, http, title, verdict] of DOCUMENTED) {
    const expected = { ...verdict, errorCode: code };
    describe(`${code} ${title} (HTTP ${http})`, () => {
      it(`is ${verdict.retryable ? 'retried' : 'permanent'}: ${verdict.reason}`, () => {
        const full = WhatsAppApiError.fromResponse(http, {
          error: {
            message: `(#${code}) ${title}`,
            type: 'OAuthException',
            code,
            error_data: { messaging_product: 'whatsapp', details: `${title}.` },
            error_subcode: 2_494_010,
            fbtrace_id: 'AaBbCcDdEeFf',
          },
        });
        expect(classifyWhatsAppError(full)).toEqual(expected);
      });

      it('gives the same verdict for a body with only code and message, without a status', () => {
        const body = { error: { code, message: `(#${code}) ${title}` } };
        expect(classifyWhatsAppError(body)).toEqual(expected);
        expect(classifyWhatsAppError(WhatsAppApiError.fromResponse(http, body))).toEqual(expected);
      });

      it('finds the code in the message alone, and in a webhook error object', () => {
        const messageOnly = WhatsAppApiError.fromResponse(http, {
          error: { message: `(#${code}) ${title}` },
        });
        expect(classifyWhatsAppError(messageOnly)).toEqual(expected);
        const webhookError = {
          code,
          title,
          message: title,
          error_data: { details: `${title}.` },
          href: '/documentation/business-messaging/whatsapp/support/error-codes',
        };
        expect(classifyWhatsAppError(webhookError)).toEqual(expected);
      });
    });
  }

  it('tests every code the rule table declares, and declares every documented code', () => {
    const tested = new Set(DOCUMENTED.map(([code]) => code));
    for (const code of Object.keys(WHATSAPP_ERROR_CODES)) expect(tested).toContain(Number(code));
    for (const code of tested) expect(whatsAppCodeRule(code)).toBeDefined();
  });

  it('gives every rule a meaning, and no rate_limited rule a fixed wait', () => {
    // An adaptive limiter keeps the number's bucket empty for a throttle's retryAfterMs: a
    // fixed wait on a rate_limited rule would stop every send of the number for that long.
    for (const [code, rule] of Object.entries(WHATSAPP_ERROR_CODES)) {
      expect(rule.meaning.length, String(code)).toBeGreaterThan(10);
      if (rule.reason === 'rate_limited') expect(rule.retryAfterMs, String(code)).toBeUndefined();
    }
  });

  it('retries the throttling codes although they come with HTTP 400', () => {
    for (const code of [4, 17, 341, 80007, 80008, 130429, 131056]) {
      const verdict = composeClassifiers(classifyWhatsAppError)(graphError(code, 400));
      expect(verdict.retryable).toBe(true);
      expect(verdict.reason).toBe('rate_limited');
    }
  });
});

describe('docs/whatsapp.md lists the same codes with the same verdicts', () => {
  const doc = readFileSync(new URL('../../docs/whatsapp.md', import.meta.url), 'utf8');
  const table = /<!-- error-codes -->([\s\S]*?)<!-- \/error-codes -->/.exec(doc)?.[1] ?? '';
  const rows = table
    .split('\n')
    .filter((line) => /^\|\s*\d/.test(line))
    .map((line) => line.split('|').map((cell) => cell.trim()));

  it('has the table', () => {
    expect(rows.length).toBeGreaterThan(60);
  });

  it("every code in the docs has the classifier's verdict", () => {
    for (const cells of rows) {
      const [, codes = '', , , , reason = '', retried = ''] = cells;
      const range = /^(\d+)–(\d+)$/.exec(codes);
      const ends = range ? [Number(range[1]), Number(range[2])] : [Number(codes)];
      for (const code of ends) {
        const rule = whatsAppCodeRule(code);
        expect(rule, codes).toBeDefined();
        expect(`\`${rule?.reason}\``, codes).toBe(reason);
        const held = rule?.scope === 'account' ? ' (held)' : '';
        expect(rule?.retryable ? 'yes' : `no${held}`, codes).toBe(retried);
      }
    }
  });

  it('every code of the classifier is in the docs', () => {
    const listed = new Set(rows.map((cells) => cells[1]));
    for (const code of Object.keys(WHATSAPP_ERROR_CODES)) expect(listed, code).toContain(code);
    expect(listed).toContain('200–299');
    expect(listed).toContain('132000–132016');
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

  it('17 and 341 back off from a minute, doubling, and slow an adaptive limiter down', async () => {
    for (const code of [17, 341]) {
      const clock = createManualClock();
      const throttled: Classification[] = [];
      let calls = 0;
      const done = retry(
        () => {
          calls++;
          if (calls <= 3) throw graphError(code, 400);
          return 'ok';
        },
        {
          clock,
          random: seededRandom(code),
          classify: composeClassifiers(classifyWhatsAppError),
          feedback: { throttled: (c) => throttled.push(c), succeeded() {} },
        },
      );
      await clock.runAll();
      expect(await done).toBe('ok');
      expect(clock.sleeps).toHaveLength(3);
      clock.sleeps.forEach((ms, x) => {
        expect(ms).toBeGreaterThanOrEqual(60_000 * 2 ** x);
        expect(ms).toBeLessThanOrEqual(75_000 * 2 ** x);
      });
      // The limiter is told, but not asked to stop the number: no fixed wait comes with it.
      expect(throttled.map((c) => [c.errorCode, c.retryAfterMs])).toEqual([
        [code, undefined],
        [code, undefined],
        [code, undefined],
      ]);
    }
  });

  it('17 and 341 wait as long as the usage headers say access returns', () => {
    const usage = JSON.stringify({ call_count: 100, estimated_time_to_regain_access: 12 });
    for (const code of [17, 341]) {
      const error = WhatsAppApiError.fromResponse(
        400,
        { error: { code, message: `(#${code}) Application request limit reached` } },
        { 'X-App-Usage': usage },
      );
      expect(classifyWhatsAppError(error)?.retryAfterMs).toBe(720_000);
    }
  });

  it('134101 waits minutes for the template, without telling the limiter', async () => {
    const clock = createManualClock();
    const throttled: Classification[] = [];
    let calls = 0;
    const done = retry(
      () => {
        calls++;
        if (calls <= 4) {
          throw WhatsAppApiError.fromResponse(400, {
            error: {
              message: '(#134101) Template syncing',
              type: 'OAuthException',
              code: 134101,
              error_data: {
                messaging_product: 'whatsapp',
                details: 'Wait a few minutes and try again.',
              },
              fbtrace_id: 'AzYxWv',
            },
          });
        }
        return 'ok';
      },
      {
        clock,
        random: seededRandom(7),
        classify: composeClassifiers(classifyWhatsAppError),
        feedback: { throttled: (c) => throttled.push(c), succeeded() {} },
      },
    );
    await clock.runAll();
    expect(await done).toBe('ok');
    expect(clock.sleeps).toHaveLength(4);
    clock.sleeps.forEach((ms, x) => {
      expect(ms).toBeGreaterThanOrEqual(Math.min(120_000 * 2 ** x, 600_000));
      expect(ms).toBeLessThanOrEqual(600_000);
    });
    // Five attempts span more than the ten minutes a template can take to sync.
    expect(clock.sleeps.reduce((a, b) => a + b, 0)).toBeGreaterThan(600_000);
    expect(throttled).toEqual([]);
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
      errorCode: 999_999,
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

  it('codes outside the table fall back on the status whatever the status', () => {
    const unknownCode = fc
      .integer({ min: -1, max: 2_000_000_000 })
      .filter((c) => whatsAppCodeRule(c) === undefined);
    fc.assert(
      fc.property(unknownCode, fc.integer({ min: 400, max: 599 }), (code, status) => {
        const verdict = classifyWhatsAppError(graphError(code, status));
        // 5xx but 501 and 505, 429, and the "try later" 408 and 425 are retried.
        const transient =
          [408, 425, 429].includes(status) || (status >= 500 && status !== 501 && status !== 505);
        expect(verdict).toMatchObject({ retryable: transient, errorCode: code });
        // The status-only verdict, with the code added.
        expect(verdict).toEqual({ ...classifyStatus(status), errorCode: code });
      }),
    );
    for (const [status, reason] of [
      [401, 'auth'],
      [403, 'auth'],
      [404, 'client_error'],
      [502, 'server_error'],
      [503, 'service_unavailable'],
      [504, 'server_error'],
    ] as const) {
      expect(classifyWhatsAppError(graphError(131_999, status))?.reason).toBe(reason);
    }
  });

  it('a body with an unknown code and no status is left to the next classifier', () => {
    expect(classifyWhatsAppError({ error: { code: 131_999, message: 'x' } })).toBeUndefined();
    expect(classifyWhatsAppError({ code: 131_999, title: 'New error' })).toBeUndefined();
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
      errorCode: 131026,
    });
  });

  it('classifies webhook errors as parseWebhook reads them ({ errorCode, title })', () => {
    const { errors } = parseWebhook({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: 'WABA',
          changes: [
            {
              field: 'messages',
              value: {
                messaging_product: 'whatsapp',
                metadata: { phone_number_id: 'PN1' },
                errors: [{ code: 130429, title: 'Rate limit hit' }],
              },
            },
          ],
        },
      ],
    });
    expect(classifyWhatsAppError(errors[0])).toMatchObject({
      retryable: true,
      reason: 'rate_limited',
      errorCode: 130429,
    });
    const detail = { errorCode: 131026, title: 'Message undeliverable', message: undefined };
    expect(classifyWhatsAppError({ ...detail, details: undefined })).toMatchObject({
      retryable: false,
      reason: 'client_error',
      errorCode: 131026,
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
