import type { Classification } from './classify-types.js';
import { headerValue, isObject, type Loose } from './loose.js';

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ESOCKETTIMEDOUT',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** The HTTP status a response or an HTTP client's error carries (fetch, axios, got, undici). */
export function statusOf(error: unknown): number | undefined {
  if (!isObject(error)) return undefined;
  const direct = error.status ?? error.statusCode;
  if (typeof direct === 'number') return direct;
  const response = error.response;
  if (isObject(response)) {
    const nested = response.status ?? response.statusCode;
    if (typeof nested === 'number') return nested;
  }
  return undefined;
}

/** The headers a response or an HTTP client's error carries, if any. */
export function headersOf(error: unknown): unknown {
  if (!isObject(error)) return undefined;
  if (error.headers !== undefined) return error.headers;
  const response = error.response;
  return isObject(response) ? response.headers : undefined;
}

/** An HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`, or the obsolete forms naming GMT). */
const HTTP_DATE = /^[A-Za-z]{3},|GMT$/;

/**
 * `X-RateLimit-Reset` values from 10^9 are Unix times in seconds (10^9 s is 2001-09-09; as a
 * duration it would be 31 years), from 10^12 Unix times in milliseconds (10^12 ms is again
 * 2001-09-09; in seconds it would be the year 33658). Smaller values are seconds from now.
 */
const EPOCH_SECONDS_FROM = 1e9;
const EPOCH_MILLISECONDS_FROM = 1e12;

/**
 * How long the server asked to wait, in milliseconds, from `Retry-After` (delta seconds or an
 * HTTP-date) or `X-RateLimit-Reset`, which servers send in three units: seconds from now
 * (below 10^9), a Unix time in seconds (10^9 up to 10^12) or in milliseconds (10^12 and
 * above). Accepts a `Headers` object or a plain record. `undefined` when absent or
 * unreadable; never negative.
 *
 * @param now Current time in epoch milliseconds, for dates. @default Date.now()
 */
export function parseRetryAfter(headers: unknown, now: number = Date.now()): number | undefined {
  const retryAfter = headerValue(headers, 'retry-after')?.trim();
  if (retryAfter !== undefined && retryAfter !== '') {
    if (/^\d+(\.\d+)?$/.test(retryAfter)) return Number(retryAfter) * 1000;
    const date = HTTP_DATE.test(retryAfter) ? Date.parse(retryAfter) : Number.NaN;
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  const reset = headerValue(headers, 'x-ratelimit-reset')?.trim();
  if (reset !== undefined && /^\d+(\.\d+)?$/.test(reset)) {
    const value = Number(reset);
    if (value >= EPOCH_MILLISECONDS_FROM) return Math.max(0, value - now);
    if (value >= EPOCH_SECONDS_FROM) return Math.max(0, value * 1000 - now);
    return value * 1000;
  }
  return undefined;
}

/** Classifies an HTTP status: 408, 425, 429 and 5xx (but 501, 505) are transient. */
export function classifyStatus(status: number, retryAfterMs?: number): Classification {
  const after = retryAfterMs === undefined ? {} : { retryAfterMs };
  if (status === 429) return { retryable: true, reason: 'rate_limited', ...after };
  if (status === 408) return { retryable: true, reason: 'timeout', ...after };
  if (status === 425) return { retryable: true, reason: 'server_error', ...after };
  if (status === 503) return { retryable: true, reason: 'service_unavailable', ...after };
  if (status === 501 || status === 505) return { retryable: false, reason: 'server_error' };
  if (status >= 500 && status <= 599) return { retryable: true, reason: 'server_error', ...after };
  if (status === 401 || status === 407) return { retryable: false, reason: 'auth' };
  if (status === 403) return { retryable: false, reason: 'auth' };
  if (status === 422) return { retryable: false, reason: 'schema_mismatch' };
  if (status >= 400 && status <= 499) return { retryable: false, reason: 'client_error' };
  return { retryable: false, reason: 'unknown' };
}

function errorCode(error: Loose): string | undefined {
  const code = error.code;
  if (typeof code === 'string') return code;
  const cause = error.cause;
  if (isObject(cause) && typeof cause.code === 'string') return cause.code;
  return undefined;
}

/** The verdict on anything else, including a value that throws when read. */
export const UNKNOWN: Classification = Object.freeze({ retryable: true, reason: 'unknown' });

/**
 * The default classifier's rules for anything but a `PermanentError` (see `classify` in
 * `retry/classify.ts`): the HTTP status, abort and timeout errors, network error codes. Here, at
 * the root of core, so that `PermanentError` can classify its cause when it is made. May throw
 * on a value that throws when read; `classify` catches that.
 */
export function classifyFailure(error: unknown): Classification {
  const status = statusOf(error);
  if (status !== undefined && status >= 400) {
    return classifyStatus(status, parseRetryAfter(headersOf(error)));
  }
  if (!isObject(error)) return { retryable: true, reason: 'unknown' };
  const name = error.name;
  if (name === 'TimeoutError') return { retryable: true, reason: 'timeout' };
  if (name === 'AbortError') return { retryable: false, reason: 'aborted' };
  const code = errorCode(error);
  if (code !== undefined) {
    if (TIMEOUT_CODES.has(code)) return { retryable: true, reason: 'timeout' };
    if (NETWORK_CODES.has(code) || code.startsWith('UND_ERR_'))
      return { retryable: true, reason: 'network' };
  }
  if (name === 'TypeError' && error.message === 'fetch failed')
    return { retryable: true, reason: 'network' };
  if (typeof error.message === 'string' && /socket hang up/i.test(error.message)) {
    return { retryable: true, reason: 'network' };
  }
  return UNKNOWN;
}
