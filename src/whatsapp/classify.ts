import type { Classification, Classifier, FailureScope, Reason } from '../core/classify-types.js';
import { PermanentError } from '../core/errors.js';
import { headerValue, isObject } from '../core/loose.js';
import type { BackoffOptions } from '../core/retry/backoff.js';
import { classifyStatus, headersOf, parseRetryAfter, statusOf } from '../core/retry/classify.js';
import { isWebhookPayloadError, isWhatsAppApiError, parseErrorBody } from './errors.js';

/** How retrykit treats one WhatsApp error code. */
export interface WhatsAppCodeRule {
  readonly reason: Reason;
  readonly retryable: boolean;
  /** What the code means, for docs and logs. */
  readonly meaning: string;
  /** Minimum wait before the next try, in milliseconds. */
  readonly retryAfterMs?: number;
  /** Backoff overrides for this code. */
  readonly backoff?: Partial<BackoffOptions>;
  /** Cap on total attempts for this code. */
  readonly maxAttempts?: number;
  /**
   * `'account'` when the code says nothing about the message but about the sender (an
   * expired token, an account-wide block): the message is held, not dead-lettered, and a
   * circuit breaker counts it. See `Classification.scope`.
   * @default 'message'
   */
  readonly scope?: FailureScope;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

const permanent = (reason: Reason, meaning: string): WhatsAppCodeRule =>
  Object.freeze({ reason, retryable: false, meaning });
/** Not retried, and not the message's fault: held until the account is fixed. */
const accountWide = (reason: Reason, meaning: string): WhatsAppCodeRule =>
  Object.freeze({ reason, retryable: false, meaning, scope: 'account' });
const transient = (
  reason: Reason,
  meaning: string,
  pacing: Omit<WhatsAppCodeRule, 'reason' | 'retryable' | 'meaning'> = {},
): WhatsAppCodeRule => Object.freeze({ reason, retryable: true, meaning, ...pacing });

/**
 * Backoff for the Graph API's app- and account-level call limits (4, 17, 341, 80007, 80008):
 * Meta says "wait and retry" without a window, and usage headers, when sent, say how long.
 */
const CALL_LIMIT_BACKOFF: Partial<BackoffOptions> = Object.freeze({
  initialDelayMs: MINUTE_MS,
  multiplier: 2,
  jitter: 'proportional',
});

/**
 * Every WhatsApp Cloud API error code retrykit knows, with its verdict, pacing and the meaning
 * Meta documents for it. Sources, by group below: Meta's "WhatsApp error codes" page, the Graph
 * API "Handling errors" page (the Cloud API is a Graph API), the Marketing Messages API's
 * errors and the message-templates endpoint reference; docs/whatsapp.md names the source of
 * each row. Codes in ranges (permissions 200–299, templates 132000–132016) are resolved by
 * {@link whatsAppCodeRule}.
 *
 * Only `rate_limited` rules reach an adaptive limiter's `feedback()`, which also keeps the
 * bucket empty for a verdict's `retryAfterMs`; so a `rate_limited` rule never sets a fixed
 * `retryAfterMs` (that would stop every send of the number), and waits that are not about the
 * sending rate (133015, 134101) are `service_unavailable`.
 */
export const WHATSAPP_ERROR_CODES: Readonly<Record<number, WhatsAppCodeRule>> = Object.freeze({
  // Graph API codes, from the WhatsApp page and the Graph "Handling errors" page.
  0: accountWide(
    'auth',
    'AuthException: unable to authenticate the app user; get a new access token',
  ),
  1: transient('server_error', 'API Unknown: invalid request or possible server error', {
    maxAttempts: 3,
  }),
  2: transient('service_unavailable', 'API Service: temporary downtime or overload'),
  3: permanent('auth', 'API Method: capability or permissions issue'),
  4: transient('rate_limited', 'API Too Many Calls: the app reached its call rate limit', {
    backoff: CALL_LIMIT_BACKOFF,
  }),
  10: permanent('auth', 'Permission Denied: permission not granted or removed'),
  17: transient('rate_limited', 'API User Too Many Calls: temporary throttling, wait and retry', {
    backoff: CALL_LIMIT_BACKOFF,
  }),
  33: permanent(
    'client_error',
    'Parameter value is not valid: the business phone number was deleted',
  ),
  100: permanent('client_error', 'Invalid parameter: unsupported or misspelled parameter'),
  102: accountWide(
    'auth',
    'API Session: login status or access token expired or revoked; get a new token',
  ),
  // Every send fails alike until the token is refreshed: held, not dead-lettered.
  190: accountWide('auth', 'Access token has expired: get a new access token'),
  341: transient(
    'rate_limited',
    'Application limit reached: temporary downtime or throttling, wait and retry',
    { backoff: CALL_LIMIT_BACKOFF },
  ),
  // Meta disagrees with itself: the Graph page says "wait and retry the operation", the
  // WhatsApp page says the business account was restricted or disabled for a policy violation
  // and points to policy enforcement. retrykit follows the WhatsApp page: a WhatsApp
  // restriction lasts days or for good, far beyond a retry budget, and hammering a restricted
  // account does not lift it; the message is held (scope account), not dead-lettered, until it is.
  368: accountWide(
    'policy',
    'Temporarily blocked for policy violations: account restricted or disabled',
  ),
  506: permanent('client_error', 'Duplicate Post: change the content and try again'),
  1609005: permanent('client_error', 'Error Posting Link: the link could not be scraped; check it'),

  // WhatsApp error codes: throttling.
  80007: transient(
    'rate_limited',
    'Rate limit issues: the WhatsApp Business Account hit its rate limit',
    {
      backoff: CALL_LIMIT_BACKOFF,
    },
  ),
  130429: transient('rate_limited', 'Rate limit hit: Cloud API message throughput reached'),
  131048: permanent(
    'policy',
    'Spam rate limit hit: too many messages blocked or flagged; do not hammer',
  ),
  131056: transient(
    'rate_limited',
    'Pair rate limit hit: too many messages to the same recipient',
    {
      backoff: { initialDelayMs: 1000, multiplier: 4, jitter: 'proportional' },
    },
  ),
  133016: transient('rate_limited', 'Register/deregister rate limit exceeded for this number', {
    backoff: { initialDelayMs: 15 * MINUTE_MS, multiplier: 2, jitter: 'proportional' },
  }),

  // WhatsApp error codes: integrity.
  130497: permanent('policy', 'Business account restricted from messaging users in this country'),
  131031: accountWide(
    'policy',
    'Account has been locked (policy, or request data such as the PIN did not match)',
  ),

  // WhatsApp error codes: other.
  130472: permanent('client_error', "Recipient's number is part of an experiment"),
  131000: transient('server_error', 'Something went wrong: message failed for an unknown reason'),
  131005: permanent('auth', 'Access denied: permission not granted or removed'),
  131008: permanent('schema_mismatch', 'Required parameter is missing'),
  131009: permanent('schema_mismatch', 'Parameter value is not valid'),
  131016: transient(
    'service_unavailable',
    'Service unavailable: a service is temporarily unavailable',
  ),
  131021: permanent('client_error', 'Recipient cannot be sender'),
  131026: permanent(
    'client_error',
    'Message undeliverable: not a WhatsApp number, old client or terms not accepted',
  ),
  131030: permanent('client_error', 'Recipient phone number not in allowed list (test number)'),
  131037: permanent('client_error', 'Display name needs approval'),
  131042: permanent('client_error', 'Business eligibility payment issue'),
  131045: permanent('client_error', 'Incorrect certificate: phone number registration error'),
  131047: permanent(
    'policy',
    'Re-engagement message: the 24-hour window is closed, send a template',
  ),
  131049: permanent(
    'policy',
    'Meta chose not to deliver (ecosystem health): wait at least 24 h to resend',
  ),
  131050: permanent('policy', 'User stopped marketing messages: never retry'),
  131051: permanent('client_error', 'Unsupported message type'),
  131052: permanent(
    'client_error',
    'Media download error: the media the user sent could not be downloaded',
  ),
  131053: permanent(
    'client_error',
    'Media upload error: the media in the message could not be uploaded',
  ),
  131057: transient('service_unavailable', 'Account in maintenance mode (e.g. throughput upgrade)'),
  132000: permanent('schema_mismatch', 'Template parameter count mismatch'),
  132001: permanent(
    'schema_mismatch',
    'Template does not exist in this language or is not approved',
  ),
  132005: permanent('schema_mismatch', 'Template hydrated text too long'),
  132007: permanent('schema_mismatch', 'Template format character policy violated'),
  132012: permanent('schema_mismatch', 'Template parameter format mismatch'),
  132015: permanent('schema_mismatch', 'Template is paused for low quality'),
  132016: permanent('schema_mismatch', 'Template is disabled for low quality'),
  132068: permanent('policy', 'Flow is blocked'),
  132069: transient('rate_limited', 'Flow is throttled: 10 messages per flow in the last hour', {
    backoff: {
      initialDelayMs: 6 * MINUTE_MS,
      multiplier: 2,
      maxDelayMs: HOUR_MS,
      jitter: 'proportional',
    },
  }),
  133000: permanent('client_error', 'Incomplete deregistration: deregister the number again'),
  133004: transient('service_unavailable', 'Server temporarily unavailable'),
  133005: permanent('client_error', 'Two-step verification PIN mismatch'),
  133006: permanent('client_error', 'Phone number needs to be verified again'),
  133008: transient('rate_limited', 'Too many two-step verification PIN guesses', {
    backoff: { initialDelayMs: MINUTE_MS, multiplier: 2, jitter: 'proportional' },
  }),
  133009: transient('rate_limited', 'Two-step verification PIN entered too quickly', {
    backoff: { initialDelayMs: MINUTE_MS, multiplier: 2, jitter: 'proportional' },
  }),
  133010: permanent('client_error', 'Phone number not registered'),
  133015: transient('service_unavailable', 'Number recently deleted: wait 5 minutes', {
    retryAfterMs: 5 * MINUTE_MS,
  }),
  135000: permanent('client_error', 'Generic user error'),

  // Marketing Messages API.
  131055: permanent('client_error', 'Method not allowed: this API sends marketing templates only'),
  // "Wait a few minutes and try again" (HTTP 400): the template is still syncing. A wait about
  // one template, not about the sending rate, so not `rate_limited` (see above).
  134101: transient(
    'service_unavailable',
    'Template still syncing: wait a few minutes and try again',
    {
      backoff: {
        initialDelayMs: 2 * MINUTE_MS,
        multiplier: 2,
        maxDelayMs: 10 * MINUTE_MS,
        jitter: 'proportional',
      },
    },
  ),
  134102: permanent(
    'client_error',
    "Template unavailable for this API: check the account's eligibility",
  ),

  // Message-templates endpoint reference.
  80008: transient(
    'rate_limited',
    'Too many calls to this WhatsApp Business Account: wait and retry',
    {
      backoff: CALL_LIMIT_BACKOFF,
    },
  ),
});

const PERMISSION_RANGE = permanent('auth', 'API Permission: permission not granted or removed');
const TEMPLATE_RANGE = permanent('schema_mismatch', 'Template error without a row of its own');

/** The rule for `code`, including the ranges; `undefined` for a code retrykit doesn't know. */
export function whatsAppCodeRule(code: number): WhatsAppCodeRule | undefined {
  const rule = WHATSAPP_ERROR_CODES[code];
  if (rule !== undefined) return rule;
  if (code >= 200 && code <= 299) return PERMISSION_RANGE;
  if (code >= 132000 && code <= 132016) return TEMPLATE_RANGE;
  return undefined;
}

/**
 * Minutes until access returns, from Graph API usage headers (`X-Business-Use-Case-Usage`,
 * `X-App-Usage`: JSON with `estimated_time_to_regain_access` in minutes), in milliseconds.
 */
export function usageRetryAfterMs(headers: unknown): number | undefined {
  let longest: number | undefined;
  const visit = (node: unknown, depth: number): void => {
    if (depth > 4 || !isObject(node)) return;
    if (Array.isArray(node)) {
      for (const item of node) visit(item, depth + 1);
      return;
    }
    const minutes = node.estimated_time_to_regain_access;
    if (typeof minutes === 'number' && Number.isFinite(minutes) && minutes > 0) {
      longest = Math.max(longest ?? 0, minutes * MINUTE_MS);
    }
    for (const value of Object.values(node)) if (isObject(value)) visit(value, depth + 1);
  };
  for (const name of ['x-business-use-case-usage', 'x-app-usage', 'x-ad-account-usage']) {
    const raw = headerValue(headers, name);
    if (raw === undefined || raw.length > 10_000) continue;
    try {
      visit(JSON.parse(raw), 0);
    } catch {
      // An unreadable usage header says nothing about when to retry.
    }
  }
  return longest;
}

/** "Please wait 30 seconds" / "in 5 minutes" in Meta's details, in milliseconds. */
function waitInDetails(details: string | undefined): number | undefined {
  if (details === undefined) return undefined;
  const match = /(\d{1,6})\s*(second|sec|minute|min|hour)s?\b/i.exec(details);
  if (!match) return undefined;
  const unit = match[2]!.toLowerCase();
  const scale = unit.startsWith('h') ? HOUR_MS : unit.startsWith('m') ? MINUTE_MS : 1000;
  return Number(match[1]) * scale;
}

interface Extracted {
  readonly code: number | undefined;
  readonly status: number | undefined;
  readonly headers: unknown;
  readonly details: string | undefined;
}

/**
 * Finds a WhatsApp error code in a thrown error, a response body, a webhook error as Meta
 * sends it (`{ code, title }`) or as `parseWebhook` reads it (`{ errorCode, title }`).
 */
function extract(value: unknown): Extracted | undefined {
  if (isWhatsAppApiError(value)) {
    return {
      code: value.errorCode,
      status: value.status,
      headers: value.headers,
      details: value.details,
    };
  }
  if (!isObject(value)) return undefined;
  if (
    !(value instanceof Error) &&
    typeof value.errorCode === 'number' &&
    ('message' in value || 'title' in value)
  ) {
    const details = value.details;
    return {
      code: value.errorCode,
      status: undefined,
      headers: undefined,
      details: typeof details === 'string' ? details : undefined,
    };
  }
  const looksLikeBody =
    isObject(value.error) ||
    (!(value instanceof Error) &&
      typeof value.code === 'number' &&
      ('message' in value || 'title' in value));
  if (!looksLikeBody) return undefined;
  const fields = parseErrorBody(value);
  return {
    code: fields.errorCode,
    status: statusOf(value),
    headers: headersOf(value),
    details: fields.details,
  };
}

/** Builds a {@link Classification} from a rule, a code and the response headers. */
function fromRule(
  rule: WhatsAppCodeRule,
  code: number,
  headers: unknown,
  details: string | undefined,
): Classification {
  if (!rule.retryable) {
    return rule.scope === undefined
      ? { retryable: false, reason: rule.reason, errorCode: code }
      : { retryable: false, reason: rule.reason, errorCode: code, scope: rule.scope };
  }
  const waits = [
    rule.retryAfterMs,
    parseRetryAfter(headers),
    usageRetryAfterMs(headers),
    code === 133008 || code === 133009 ? waitInDetails(details) : undefined,
  ].filter((w): w is number => w !== undefined && w > 0);
  const retryAfterMs = waits.length === 0 ? undefined : Math.max(...waits);
  return {
    retryable: true,
    reason: rule.reason,
    errorCode: code,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    ...(rule.backoff === undefined ? {} : { backoff: rule.backoff }),
    ...(rule.maxAttempts === undefined ? {} : { maxAttempts: rule.maxAttempts }),
  };
}

/** Options of {@link createWhatsAppClassifier}. */
export interface WhatsAppClassifierOptions {
  /**
   * Rules that replace or add to {@link WHATSAPP_ERROR_CODES}, by code.
   *
   * @example
   * // Treat 131049 (held back for ecosystem health) as retryable a day later:
   * createWhatsAppClassifier({ rules: { 131049: { reason: 'policy', retryable: true,
   *   meaning: 'held back', retryAfterMs: 86_400_000 } } })
   */
  readonly rules?: Readonly<Record<number, WhatsAppCodeRule>>;
}

/**
 * A WhatsApp classifier with some code rules overridden; {@link classifyWhatsAppError} is the
 * one with none.
 */
export function createWhatsAppClassifier(options: WhatsAppClassifierOptions = {}): Classifier {
  const overrides = options.rules ?? {};
  return (error) => {
    if (error instanceof PermanentError) return undefined;
    if (isWebhookPayloadError(error)) return { retryable: false, reason: 'schema_mismatch' };
    const found = extract(error);
    if (found === undefined) return undefined;
    const { code, status, headers, details } = found;
    if (code !== undefined) {
      const rule = Object.hasOwn(overrides, code) ? overrides[code] : whatsAppCodeRule(code);
      if (rule !== undefined) return fromRule(rule, code, headers, details);
    }
    if (status === undefined || status < 400) return undefined;
    const verdict = classifyStatus(status, parseRetryAfter(headers) ?? usageRetryAfterMs(headers));
    return code === undefined ? verdict : { ...verdict, errorCode: code };
  };
}

/**
 * Classifies a WhatsApp Cloud API or WASenderApi failure on Meta's `error.code`, not just the
 * HTTP status (throttling codes such as 4, 17, 341, 80007, 130429 and 131056 come back with
 * HTTP 400). Accepts a {@link WhatsAppApiError}, a Graph API error body (`{ error: { code } }`)
 * or a webhook error object (`{ code, title }`); a `WebhookPayloadError` is `schema_mismatch`,
 * never retried. Codes outside {@link WHATSAPP_ERROR_CODES} fall back on the HTTP status (5xx
 * and 429 retried, other 4xx permanent); WASenderApi's 429 honours `X-RateLimit-Reset`, its
 * 503 (session reconnecting) is `service_unavailable`.
 * Returns `undefined` for anything else, so that {@link composeClassifiers} falls through to
 * the core classifier (network errors, timeouts).
 *
 * Pacing: the call limits (4, 17, 341, 80007, 80008) back off from a minute, doubling; 131056
 * backs off 4^X seconds; 133015 waits 5 minutes; 134101 from 2 minutes, up to 10; 132069 up to
 * an hour; code 1 gets 3 attempts; 131048 and 131049 are never retried automatically.
 *
 * @example
 * const classify = composeClassifiers(classifyWhatsAppError);
 * await retry(send, { classify });
 */
export const classifyWhatsAppError: Classifier = createWhatsAppClassifier();
