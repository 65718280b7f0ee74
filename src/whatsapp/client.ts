import { watchAbort } from '../core/abort-watch.js';
import type { CircuitBreaker } from '../core/breaker/breaker.js';
import type { Bulkhead } from '../core/bulkhead/bulkhead.js';
import type { Classification, ThrottleFeedback } from '../core/classify-types.js';
import { type Clock, systemClock } from '../core/clock.js';
import { toDeadLetter } from '../core/dead-letter/dead-letter.js';
import type { DeadLetterAttempt, DeadLetterQueue } from '../core/dead-letter/dead-letter-types.js';
import { attemptOf } from '../core/dead-letter/failure.js';
import { isRetrykitError, PermanentError, shouldHold } from '../core/errors.js';
import { emit } from '../core/events.js';
import type { IdempotencyStore } from '../core/idempotency/idempotency-types.js';
import { idempotent } from '../core/idempotency/idempotent.js';
import type { RateLimiter } from '../core/rate-limit/rate-limit-types.js';
import { composeClassifiers } from '../core/retry/classify.js';
import {
  type AttemptContext,
  createRetry,
  type RetryEvent,
  type RetryOptions,
} from '../core/retry/retry.js';
import {
  assertFunction,
  assertInteger,
  assertKey,
  assertNumber,
  showValue,
} from '../core/validate.js';
import { classifyWhatsAppError } from './classify.js';
import type { WhatsAppDeliveryStore } from './delivery/delivery.js';
import { deliveryTag, tagCallbackData } from './delivery/tag.js';
import { type CloudMessage, cloudApiEndpoint, type WhatsAppEndpoint } from './endpoints.js';
import { WhatsAppApiError } from './errors.js';
import type { WhatsAppEventListener } from './events.js';

/** Options of {@link createWhatsAppClient}. */
export interface WhatsAppClientOptions<P = CloudMessage> {
  /**
   * The business phone number ID: the Cloud API sender, and the key of `limiter` (WhatsApp's
   * throughput limit is per phone number). For other endpoints, any stable sender ID.
   */
  readonly phoneNumberId: string;
  /** Cloud API access token. Required unless `endpoint` is given. */
  readonly accessToken?: string;
  /** Cloud API base URL (point it at a fake in tests). @default 'https://graph.facebook.com' */
  readonly baseUrl?: string;
  /** Graph API version. @default 'v23.0' */
  readonly apiVersion?: string;
  /**
   * Another sending API, e.g. `wasenderEndpoint({ apiKey })`, or your own.
   * @default cloudApiEndpoint({ accessToken, phoneNumberId, baseUrl, apiVersion })
   */
  readonly endpoint?: WhatsAppEndpoint<P>;
  /** The `fetch` to use. @default globalThis.fetch */
  readonly fetch?: typeof globalThis.fetch;
  /**
   * Throughput limiter, keyed by `phoneNumberId`; every attempt (retries too) takes a token.
   * An adaptive one slows down on 130429, 80007 and 4. E.g. `createMemoryTokenBucket(...)`.
   */
  readonly limiter?: RateLimiter;
  /**
   * Pair limiter, keyed by `{phoneNumberId}:{recipient}` (about 1 message per 6 s from one
   * business number to one user, bursts borrowing ahead); an adaptive one slows down on 131056.
   */
  readonly pairLimiter?: RateLimiter;
  /**
   * Caps this phone number's sends in flight: each `sendMessage` runs in
   * `bulkhead.run(phoneNumberId, …)`, limiter waits and retries included, so a hung API holds
   * at most `maxConcurrent` sends of the number and `maxQueued` waiting; one more rejects with
   * `BulkheadRejectedError` before anything is claimed, sent or dead-lettered. One bulkhead
   * (`createBulkhead`) may serve the clients of many numbers.
   */
  readonly bulkhead?: Bulkhead;
  /**
   * Circuit breaker, keyed by `phoneNumberId`: while the number's circuit is open (an expired
   * token, a 5xx storm) sends fail fast with a `CircuitOpenError` instead of retrying into
   * the outage, and are not dead-lettered. With a Redis circuit store, every client of the
   * number opens and closes together.
   */
  readonly breaker?: CircuitBreaker;
  /**
   * Idempotency store: with an `idempotencyKey`, a repeated or concurrent call with the same key
   * returns the first call's message ID instead of sending again.
   */
  readonly store?: IdempotencyStore;
  /**
   * Delivery store (`createMemoryDeliveryStore()`, or `createRedisDeliveryStore()` shared with
   * the webhook handler's `deliveries`): every send with an `idempotencyKey` keeps a record
   * under that key. Before the first HTTP request the client calls `begin(key, payload)` and
   * records an attempt `<key>#<n>` (n counts the record's attempts, so a later deliberate
   * re-send with the same key is a new attempt); after the 200 it fills in the wamid. Read it
   * with `getDelivery(deliveries, key)`. The record waits in the store's due index for the
   * delivery reconciler (`createDeliveryReconciler`): `leaseMs` from the first request (a send
   * whose process died), `timeoutGraceMs` after it was accepted or held; a status webhook of
   * the latest send settles or wakes it. A send that fails in the call (dead-lettered, held by
   * `shouldHold`, aborted) leaves the index: its caller owns it. Sends without a key are not
   * recorded. When the store
   * fails before the request, the send rejects with its `StoreUnavailableError` and nothing is
   * sent (as when `store` fails); when it fails after the 200, the send still resolves and
   * that attempt keeps no wamid (its status webhooks then come back `unknown`). Cloud API
   * sends carry the key's correlation tag in `biz_opaque_callback_data`: `rk:<tag>`, or
   * `rk:<tag>|<your value>` (yours alone when both would pass 512 characters); the record keeps
   * the payload as given. With `get`, a repeated call whose key was held answers from the
   * record: `accepted` with the latest wamid once a send of the message has one.
   */
  readonly deliveries?: Pick<WhatsAppDeliveryStore, 'begin' | 'recordAttempt'> &
    Partial<Pick<WhatsAppDeliveryStore, 'get'>>;
  /**
   * With `deliveries`, how long a send whose outcome is unknown is held before the delivery
   * reconciler (`createDeliveryReconciler`) sends it again, in milliseconds: a request that
   * timed out, or whose connection dropped after it left (not a refused connection or a failed
   * DNS lookup: those never reached the API). Such a send is not retried at once: the call
   * resolves with `status: 'held'`, and a status webhook that arrives for it within this window
   * (matched by the correlation tag) settles it instead of a second send. For the `breaker`
   * and the metrics a held send is a failed attempt (a hung API opens the circuit), and the
   * limiter hears no success.
   * @default 60_000
   */
  readonly timeoutGraceMs?: number;
  /**
   * Failures land here: `permanent` ones at once (131026, 131047, …), `exhausted` ones when
   * retries run out. The entry's payload is the send payload; its ID the idempotency key.
   * A failure that is not the message's (`shouldHold`: an expired token, an open circuit) is
   * never written here: the caller holds the message and sends it again later.
   */
  readonly dlq?: DeadLetterQueue<P>;
  /**
   * Retry settings. `classify` defaults to `composeClassifiers(classifyWhatsAppError)`,
   * `onEvent` and `clock` to the client's. A `signal` here aborts every send of the client (a
   * shutdown), beside each call's own `signal`: a send stops when either aborts, with that
   * signal's reason, and is not dead-lettered. `attemptTimeoutMs` cuts one attempt (limiter
   * waits and the request): with `deliveries`, one cut while its request was in flight is held
   * like a `requestTimeoutMs` timeout; one cut while it waited for a limiter is retried.
   * @default { maxAttempts: 5 } with the core backoff defaults
   */
  readonly retry?: RetryOptions;
  /**
   * Abort one HTTP request after this many milliseconds (a hung connection); the attempt
   * counts as a `timeout` and is retried, or with `deliveries` held (see `timeoutGraceMs`).
   * @default 20_000
   */
  readonly requestTimeoutMs?: number;
  /**
   * How long an idempotency claim holds while a send (all its retries) runs, in milliseconds.
   * @default 120_000
   */
  readonly leaseMs?: number;
  /**
   * How long a sent message's ID is remembered under its idempotency key, in milliseconds.
   * @default 86_400_000 (1 day)
   */
  readonly resultTtlMs?: number;
  /**
   * Keep a permanent failure (131026, 131047, …) under its idempotency key for `resultTtlMs`,
   * so that a duplicate call rejects with the same `PermanentError` (reason and Meta's code in
   * its `classification`) without calling the API again or writing a second dead letter. A
   * deliberate re-send (a redrive once the cause is fixed) then needs a new key. `false`
   * releases the key: the next call with it sends again. Failures that ran out of retries,
   * held ones (`shouldHold`: an expired token, an open circuit) and aborts are never kept.
   * @default true
   */
  readonly rememberFailures?: boolean;
  /**
   * How long a concurrent call with the same key waits for the first one's result, in
   * milliseconds, before failing with `IdempotencyInProgressError`.
   * @default 10_000
   */
  readonly waitForResultMs?: number;
  /**
   * Receives retry events and `message_status` (`accepted`, with the wamid). Idempotency hits
   * come from `store` and dead letters from `dlq`: give them the same listener.
   */
  readonly onEvent?: WhatsAppEventListener;
  /** Time source for timeouts, waits and dead-letter times. @default systemClock */
  readonly clock?: Clock;
}

/** The defaults of {@link WhatsAppClientOptions}. */
export const WHATSAPP_CLIENT_DEFAULTS = Object.freeze({
  requestTimeoutMs: 20_000,
  timeoutGraceMs: 60_000,
  leaseMs: 120_000,
  resultTtlMs: 86_400_000,
  waitForResultMs: 10_000,
  maxAttempts: 5,
  rememberFailures: true,
});

/** Options of {@link WhatsAppClient.sendMessage}. */
export interface SendOptions {
  /**
   * Makes the send happen once: a repeated call (a retried job, a double click) with the same
   * key returns the first result, or rejects with its permanent failure (see
   * `rememberFailures`). Needs the client's `store`. Use your own ID for the message,
   * e.g. `order-42:shipped`.
   */
  readonly idempotencyKey?: string;
  /**
   * Aborts waiting, retrying and the request in flight. Nothing is dead-lettered then. The
   * client's `retry.signal`, when set, aborts the send too.
   */
  readonly signal?: AbortSignal;
}

/** A message the API accepted. */
export interface AcceptedSendResult {
  readonly status: 'accepted';
  /** The message ID the API returned (a wamid for the Cloud API). */
  readonly messageId: string;
  /** HTTP requests made by this call; 0 when `deduplicated`. */
  readonly attempts: number;
  /**
   * `true` when an earlier call with the same idempotency key had sent it already (or had it
   * held, and a send of it has been accepted since: `messageId` is then the latest wamid).
   */
  readonly deduplicated: boolean;
}

/**
 * A send whose outcome is unknown (it timed out, or its connection dropped after the request
 * left), held in the client's `deliveries`: a status webhook settles it, or the delivery
 * reconciler sends it again after `timeoutGraceMs`. The message is not lost: treat the call as
 * done (a job around it completes), and read the outcome with `getDelivery`.
 */
export interface HeldSendResult {
  readonly status: 'held';
  readonly messageId: undefined;
  /** HTTP requests made by this call; 0 when `deduplicated`. */
  readonly attempts: number;
  /** `true` when an earlier call with the same idempotency key was held already. */
  readonly deduplicated: boolean;
}

/** What {@link WhatsAppClient.sendMessage} resolves with. */
export type SendResult = AcceptedSendResult | HeldSendResult;

/** Options of {@link WhatsAppClient.resendMessage}. */
export interface ResendOptions {
  /**
   * Fencing: the number of attempts the caller saw in the record. The re-send is recorded as
   * attempt `afterAttempts + 1` only if the record still holds exactly that many; otherwise
   * nothing is sent (`conflict`), so two reconcilers never send the same attempt.
   */
  readonly afterAttempts: number;
  /** Aborts waiting, retrying and the request in flight. */
  readonly signal?: AbortSignal;
}

/** What {@link WhatsAppClient.resendMessage} did. */
export type ResendResult =
  /** Sent again and accepted, as attempt `attemptId`. */
  | {
      readonly status: 'accepted';
      readonly attemptId: string;
      readonly messageId: string;
      /** HTTP requests made by this call (0 when its sub-key had sent it already). */
      readonly attempts: number;
    }
  /** Sent again, outcome unknown (a timeout): held for `timeoutGraceMs` like a first send. */
  | { readonly status: 'held'; readonly attemptId: string; readonly attempts: number }
  /** Another writer added an attempt first (see `afterAttempts`): nothing sent. */
  | { readonly status: 'conflict' }
  /** No record under the key (never recorded, or expired): nothing sent. */
  | { readonly status: 'missing' };

/** A WhatsApp sender with rate limiting, retries, idempotency and dead letters. */
export interface WhatsAppClient<P = CloudMessage> {
  /**
   * The phone number id the client sends from (its `phoneNumberId` option). With
   * `deliveries`, every record it begins carries it as its `sender`, so one delivery
   * reconciler with `clients` re-sends each message from the number that sent it first.
   */
  readonly phoneNumberId: string;
  /**
   * Sends one message: waits for the pair limiter (per recipient) and the phone number's
   * limiter, retries transient failures (throttles, 5xx, timeouts, network) with backoff, and
   * resolves with the message ID. Rejects with a `PermanentError` (a permanent failure, e.g.
   * 131026) or a `RetryError` (retries ran out), after writing the dead letter; with a
   * `HeldError` (an account-wide failure such as an expired token, 190) or a
   * `CircuitOpenError` (the `breaker` is open) without one: send those again later; with the
   * signal's reason on abort.
   */
  sendMessage(payload: P, options?: SendOptions): Promise<SendResult>;
  /**
   * Sends a recorded message again (needs `deliveries` with `get`): the record's original
   * payload as a new attempt `<key>#<n+1>`, fenced by `afterAttempts`, through the same
   * limiters, bulkhead, breaker and retries, and under the idempotency sub-key `<key>#<n+1>`
   * when the client has a `store`. Its wamid joins the record. This is the delivery
   * reconciler's tool; a failure rejects as `sendMessage` does but is never dead-lettered here
   * (the reconciler dead-letters the message with its whole history).
   */
  resendMessage(key: string, options: ResendOptions): Promise<ResendResult>;
}

/** What `idempotent` hears of a failure the client must not remember: released for a re-send. */
const KEEP_OPEN: Classification = Object.freeze({ retryable: true, reason: 'unknown' });

/** Aborts a finished request's controller, which cancels its timeout timer. */
const DONE = Symbol('request done');

/** What an idempotency key remembers of a send: its wamid, or that it was held. */
type StoredSend = { readonly messageId: string } | { readonly held: true };

/** What an idempotency key remembers of a held send. */
const HELD = Object.freeze({ held: true as const });

/**
 * Thrown by an attempt of a tracked send whose request may have reached the API (a timeout, a
 * connection dropped after the request left): `retry` stops on it, counting it as a failure
 * for the breaker, and the client holds the send. Never leaves the client (only as the `cause`
 * of the `HeldError` or `CircuitOpenError` in `retry`'s events).
 */
class UnconfirmedSend extends Error {
  override readonly name = 'UnconfirmedSend';

  constructor(cause: unknown) {
    super(`Outcome unknown, held for its status webhooks: ${String(cause)}`, { cause });
  }
}

/** Whether `retry` stopped on an {@link UnconfirmedSend} (itself, or as its error's cause). */
function isUnconfirmed(error: unknown): boolean {
  if (error instanceof UnconfirmedSend) return true;
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { cause?: unknown }).cause instanceof UnconfirmedSend
  );
}

function noop(): void {}

/**
 * Failure codes of a request that never reached the API: no connection was made, so sending
 * again at once can't duplicate it.
 */
const NEVER_LEFT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, cause } = error as { code?: unknown; cause?: unknown };
  if (typeof code === 'string') return code;
  return typeof cause === 'object' && cause !== null ? codeOf(cause) : undefined;
}

/** A 53-bit hash of the payload's JSON (cyrb53): the idempotency fingerprint. */
function fingerprintOf(payload: unknown): string {
  const text = JSON.stringify(payload) ?? '';
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** `payload` with the correlation tag `tag` in `biz_opaque_callback_data`. */
function withTag<P>(tag: string, payload: P): P {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return payload;
  const callerData = (payload as Record<string, unknown>).biz_opaque_callback_data;
  return { ...payload, biz_opaque_callback_data: tagCallbackData(tag, callerData) };
}

/** A send recorded in `deliveries`: the attempt it is, and the payload that goes out. */
interface Tracked<P> {
  readonly key: string;
  readonly attempt: { readonly attemptId: string; readonly at: number };
  readonly wire: P;
  /** A first send moves the record's due time; a re-send leaves that to the reconciler. */
  readonly ownsSchedule: boolean;
}

/** A retrykit error that keeps every failure of its call (`RetryError`, `retry`'s `PermanentError`). */
function carriesFailures(error: unknown): boolean {
  return isRetrykitError(error) && Array.isArray((error as { errors?: unknown }).errors);
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Creates a WhatsApp sender. With only credentials it retries transient failures; add a
 * `limiter` (and `pairLimiter`) to stay under WhatsApp's throughput limits, a `store` to send
 * each idempotency key once, and a `dlq` to keep what failed for good.
 *
 * @example
 * const whatsapp = createWhatsAppClient({
 *   accessToken, phoneNumberId,
 *   limiter: createMemoryTokenBucket(WHATSAPP_RATE_LIMITS.perPhoneNumber),
 *   pairLimiter: createMemoryTokenBucket(WHATSAPP_RATE_LIMITS.pair),
 *   store: createMemoryIdempotencyStore({ maxEntries: 100_000 }),
 *   dlq: createMemoryDeadLetterQueue(),
 * });
 * const sent = await whatsapp.sendMessage(
 *   { to: '4915112345678', type: 'text', text: { body: 'Your order shipped' } },
 *   { idempotencyKey: 'order-42:shipped' },
 * );
 * if (sent.status === 'accepted') console.log(sent.messageId); // else held (with `deliveries`)
 */
export function createWhatsAppClient(
  options: Omit<WhatsAppClientOptions<CloudMessage>, 'endpoint'>,
): WhatsAppClient<CloudMessage>;
export function createWhatsAppClient<P>(
  options: WhatsAppClientOptions<P> & { readonly endpoint: WhatsAppEndpoint<P> },
): WhatsAppClient<P>;
export function createWhatsAppClient<P>(options: WhatsAppClientOptions<P>): WhatsAppClient<P> {
  const phoneNumberId = assertKey('phoneNumberId', options.phoneNumberId);
  const endpoint =
    options.endpoint ??
    (cloudApiEndpoint({
      accessToken: options.accessToken as string,
      phoneNumberId,
      ...(options.baseUrl === undefined ? {} : { baseUrl: options.baseUrl }),
      ...(options.apiVersion === undefined ? {} : { apiVersion: options.apiVersion }),
    }) as unknown as WhatsAppEndpoint<P>);
  const fetchFn = options.fetch ?? globalThis.fetch;
  assertFunction('fetch', fetchFn);
  const { limiter, pairLimiter, store, dlq, onEvent, bulkhead, breaker, deliveries } = options;
  if (
    deliveries !== undefined &&
    (typeof deliveries?.begin !== 'function' || typeof deliveries.recordAttempt !== 'function')
  ) {
    throw new TypeError(
      `deliveries must be a delivery store (begin, recordAttempt), got ${showValue(deliveries)}`,
    );
  }
  if (bulkhead !== undefined && typeof bulkhead?.run !== 'function') {
    throw new TypeError(`bulkhead must have a run(key, fn) method, got ${showValue(bulkhead)}`);
  }
  const clock = options.clock ?? systemClock;
  const requestTimeoutMs = assertNumber(
    'requestTimeoutMs',
    options.requestTimeoutMs ?? WHATSAPP_CLIENT_DEFAULTS.requestTimeoutMs,
    1,
  );
  const leaseMs = assertNumber('leaseMs', options.leaseMs ?? WHATSAPP_CLIENT_DEFAULTS.leaseMs, 1);
  const timeoutGraceMs = assertNumber(
    'timeoutGraceMs',
    options.timeoutGraceMs ?? WHATSAPP_CLIENT_DEFAULTS.timeoutGraceMs,
    0,
  );
  const resultTtlMs = assertNumber(
    'resultTtlMs',
    options.resultTtlMs ?? WHATSAPP_CLIENT_DEFAULTS.resultTtlMs,
    1,
  );
  const waitForResultMs = assertNumber(
    'waitForResultMs',
    options.waitForResultMs ?? WHATSAPP_CLIENT_DEFAULTS.waitForResultMs,
    0,
  );
  const rememberFailures = options.rememberFailures ?? WHATSAPP_CLIENT_DEFAULTS.rememberFailures;
  if (typeof rememberFailures !== 'boolean') {
    throw new TypeError(`rememberFailures must be a boolean, got ${showValue(rememberFailures)}`);
  }
  // The client times its attempts itself: a cut request may have reached the API (held, with
  // `deliveries`), a cut limiter wait has not (retried).
  const {
    signal: clientSignal,
    attemptTimeoutMs: rawAttemptTimeoutMs,
    ...userRetry
  } = options.retry ?? {};
  const attemptTimeoutMs =
    rawAttemptTimeoutMs === undefined
      ? undefined
      : assertNumber('retry.attemptTimeoutMs', rawAttemptTimeoutMs, 0);
  const classify = userRetry.classify ?? composeClassifiers(classifyWhatsAppError);
  const retry = createRetry({
    maxAttempts: WHATSAPP_CLIENT_DEFAULTS.maxAttempts,
    ...userRetry,
    classify: (error) =>
      error instanceof UnconfirmedSend ? classifyUnconfirmed(error) : classify(error),
    clock: userRetry.clock ?? clock,
    ...(userRetry.onEvent === undefined && onEvent !== undefined ? { onEvent } : {}),
    ...(breaker === undefined ? {} : { breaker, breakerKey: phoneNumberId }),
  });
  const numberFeedback = limiter?.feedback(phoneNumberId);

  const feedbackFor = (pairKey: string): ThrottleFeedback | undefined => {
    if (numberFeedback === undefined && pairLimiter === undefined) return undefined;
    const pairFeedback = pairLimiter?.feedback(pairKey);
    return {
      // 131056 is the recipient's pair limit: slowing the whole number down would not help.
      throttled(c: Classification) {
        if (c.errorCode === 131056) pairFeedback?.throttled(c);
        else numberFeedback?.throttled(c);
      },
      succeeded() {
        numberFeedback?.succeeded();
        pairFeedback?.succeeded();
      },
    };
  };

  /**
   * Failures of a request that may have reached the API (a timeout, a connection dropped after
   * the request left), as `request` throws them.
   */
  const ambiguous = new WeakSet<object>();

  /**
   * What `retry` hears of a tracked send whose outcome is unknown: the request's own failure
   * (a timeout counts for the breaker), not retryable and not the message's, so `retry` stops
   * with a `HeldError` (or a `CircuitOpenError` when it opened the circuit) and the send is
   * held. A classifier that throws on it leaves it a timeout.
   */
  const classifyUnconfirmed = (error: UnconfirmedSend): Classification => {
    let c: Classification;
    try {
      c = classify(error.cause);
    } catch {
      c = { retryable: false, reason: 'timeout' };
    }
    return { ...c, retryable: false, scope: 'account' };
  };

  /** One HTTP request, aborted by the caller's signal or after `requestTimeoutMs`. */
  const request = async (payload: P, signal: AbortSignal): Promise<{ messageId: string }> => {
    if (signal.aborted) throw signal.reason;
    const spec = endpoint.buildRequest(payload);
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    // The same controller cancels the timer once the request is done.
    clock.sleep(requestTimeoutMs, controller.signal).then(
      () =>
        controller.abort(
          new DOMException(`Request timed out after ${requestTimeoutMs} ms`, 'TimeoutError'),
        ),
      () => {},
    );
    let settled = false;
    try {
      const response = await fetchFn(spec.url, {
        method: spec.method ?? 'POST',
        headers: spec.headers,
        body: spec.body,
        signal: controller.signal,
      });
      const body = await readBody(response);
      settled = true;
      if (!response.ok)
        throw WhatsAppApiError.fromResponse(response.status, body, response.headers);
      return endpoint.parseResponse(body);
    } catch (error) {
      // fetch rejects with an AbortError; report why it was aborted instead.
      const thrown = !settled && controller.signal.aborted ? controller.signal.reason : error;
      if (!settled && !signal.aborted && typeof thrown === 'object' && thrown !== null) {
        const code = codeOf(thrown);
        if (code === undefined || !NEVER_LEFT.has(code)) ambiguous.add(thrown);
      }
      throw thrown;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (!controller.signal.aborted) controller.abort(DONE);
    }
  };

  const deadLetter = async (
    payload: P,
    error: unknown,
    earlier: readonly DeadLetterAttempt[],
    id: string | undefined,
  ): Promise<void> => {
    if (dlq === undefined) return;
    await dlq.add(
      toDeadLetter(error, {
        payload,
        source: 'whatsapp.send',
        origin: id === undefined ? { kind: 'send' } : { kind: 'send', key: id },
        // A `permanent()` thrown by the send itself carries no earlier failures: the client's own.
        history: carriesFailures(error) ? [] : earlier,
        classify,
        clock,
        ...(id === undefined ? {} : { id }),
      }),
    );
  };

  // Only Cloud API messages have `biz_opaque_callback_data`.
  const tagged = options.endpoint === undefined;

  /**
   * The payload to send for `key`, with its correlation tag for the Cloud API; `alias` is the
   * tag, the record's alias in `deliveries`.
   */
  const wireOf = async (key: string, payload: P): Promise<{ wire: P; alias?: string }> => {
    if (!tagged) return { wire: payload };
    const alias = await deliveryTag(key);
    return { wire: withTag(alias, payload), alias };
  };

  /**
   * Records a new attempt of `key` before its first request (rejects when the store fails),
   * due once `leaseMs` runs out (so a send that crashed midway is found by the reconciler).
   * With `store`, a call that gets here although the key's record has sends (the caller that
   * held the idempotency claim died) sends nothing when one of them was accepted and not
   * reported failed (its result, deduplicated), or when the record is still in the due index
   * (held: the reconciler owns it and re-sends it, fenced).
   */
  const beginAttempt = async (
    storeRef: Pick<WhatsAppDeliveryStore, 'begin' | 'recordAttempt'>,
    key: string,
    payload: P,
  ): Promise<Tracked<P> | { readonly result: SendResult }> => {
    const { wire, alias } = await wireOf(key, payload);
    const { record } = await storeRef.begin(key, payload, {
      sender: phoneNumberId,
      dueInMs: leaseMs,
      ...(alias === undefined ? {} : { alias }),
    });
    if (store !== undefined && record.attempts.length > 0) {
      const reached = [...record.attempts]
        .reverse()
        .find((a) => a.externalId !== undefined && a.status !== 'failed');
      if (reached?.externalId !== undefined) {
        const messageId = reached.externalId;
        return { result: { status: 'accepted', messageId, attempts: 0, deduplicated: true } };
      }
      if (record.dueAt !== undefined) {
        return {
          result: { status: 'held', messageId: undefined, attempts: 0, deduplicated: true },
        };
      }
    }
    const attempt = {
      attemptId: `${key}#${record.attempts.length + 1}`,
      at: Math.floor(clock.now()),
    };
    await storeRef.recordAttempt(key, attempt, { dueInMs: leaseMs });
    return { key, attempt, wire, ownsSchedule: true };
  };

  /**
   * Limiter waits, retries and dead letters of one message, no idempotency. A `tracked` send
   * records its wamid; its ambiguous failures are held, not retried. With `ownsSchedule` (a
   * first send) it also moves the record's due time: `timeoutGraceMs` when held, out of the
   * due index when the send fails (the caller owns that failure). Without (a re-send), the
   * reconciler does, and dead-letters.
   */
  const send = async (
    payload: P,
    signal: AbortSignal | undefined,
    idempotencyKey: string | undefined,
    tracked: Tracked<P> | undefined,
  ): Promise<SendResult> => {
    const recipient = endpoint.recipient(payload);
    const pairKey = `${phoneNumberId}:${recipient}`;
    const earlier: DeadLetterAttempt[] = [];
    let attempts = 0;
    /** Limiter waits and the request; `phase.requesting` once the request may have left. */
    const attemptIn = async (
      attemptSignal: AbortSignal,
      phase: { requesting: boolean },
    ): Promise<{ messageId: string }> => {
      if (pairLimiter !== undefined)
        await pairLimiter.acquire(pairKey, 1, { signal: attemptSignal });
      if (limiter !== undefined) await limiter.acquire(phoneNumberId, 1, { signal: attemptSignal });
      attempts++;
      phase.requesting = true;
      try {
        return await request(tracked?.wire ?? payload, attemptSignal);
      } catch (error) {
        // It may have been sent: hold it for the status webhooks rather than send it twice.
        if (tracked !== undefined && typeof error === 'object' && error !== null) {
          if (ambiguous.has(error)) throw new UnconfirmedSend(error);
        }
        throw error;
      }
    };
    /**
     * One attempt, cut after `retry.attemptTimeoutMs`: with the request in flight, a tracked
     * send is then held like a request timeout; waiting for a limiter, nothing left (retried).
     */
    const attempt = (ctx: AttemptContext): Promise<{ messageId: string }> => {
      if (attemptTimeoutMs === undefined) return attemptIn(ctx.signal, { requesting: false });
      if (ctx.signal.aborted) return Promise.reject(ctx.signal.reason);
      return new Promise((resolve, reject) => {
        const phase = { requesting: false };
        const controller = new AbortController();
        const timer = new AbortController();
        const unwatch = watchAbort(ctx.signal, () => controller.abort(ctx.signal.reason));
        clock.sleep(attemptTimeoutMs, timer.signal).then(() => {
          const error = new DOMException(
            `Attempt ${ctx.attempt} timed out after ${attemptTimeoutMs} ms`,
            'TimeoutError',
          );
          reject(phase.requesting && tracked !== undefined ? new UnconfirmedSend(error) : error);
          controller.abort(error);
        }, noop);
        attemptIn(controller.signal, phase)
          .then(resolve, reject)
          .finally(() => {
            timer.abort();
            unwatch();
          });
      });
    };
    const feedback = feedbackFor(pairKey);
    try {
      let sent: { messageId: string } | undefined;
      try {
        sent = await retry(attempt, {
          // A signal of this call's own, so that limiter and request listeners never pile up
          // on one shared never-aborting signal.
          signal: signal ?? new AbortController().signal,
          ...(feedback === undefined ? {} : { feedback }),
          onRetry: (event: RetryEvent) => {
            earlier.push(attemptOf(event.error, event.classification, iso(clock.now())));
            userRetry.onRetry?.(event);
          },
        });
      } catch (error) {
        // The breaker counted it as a failure; the message itself waits for its statuses.
        if (!isUnconfirmed(error)) throw error;
      }
      if (sent === undefined) {
        const t = tracked as Tracked<P>;
        if (t.ownsSchedule) {
          await deliveries
            ?.recordAttempt(t.key, t.attempt, { dueInMs: timeoutGraceMs })
            .catch(() => undefined);
        }
        emit(onEvent, {
          type: 'message_held',
          time: clock.now(),
          key: t.key,
          attemptId: t.attempt.attemptId,
          graceMs: timeoutGraceMs,
        });
        return { status: 'held', messageId: undefined, attempts, deduplicated: false };
      }
      if (tracked !== undefined) {
        // Sent: a store failure now must not fail the call (its retry would send it again).
        // A first send is looked at again after the grace window unless a status settles it
        // first (the reconciler then waits for a stuck one).
        await deliveries
          ?.recordAttempt(
            tracked.key,
            { ...tracked.attempt, externalId: sent.messageId },
            tracked.ownsSchedule ? { dueInMs: timeoutGraceMs } : {},
          )
          .catch(() => undefined);
      }
      emit(onEvent, {
        type: 'message_status',
        time: clock.now(),
        messageId: sent.messageId,
        status: 'accepted',
      });
      return { status: 'accepted', messageId: sent.messageId, attempts, deduplicated: false };
    } catch (error) {
      if (tracked?.ownsSchedule === true) {
        await deliveries
          ?.recordAttempt(tracked.key, tracked.attempt, { dueInMs: null })
          .catch(() => undefined);
      }
      if (tracked?.ownsSchedule !== false && signal?.aborted !== true && !shouldHold(error)) {
        try {
          await deadLetter(payload, error, earlier, idempotencyKey);
        } catch {
          // The caller still gets the send failure: nothing is silently dropped.
        }
      }
      throw error;
    }
  };

  /** `run` under `idempotent()`: the first call with a key sends, the others get its result. */
  const sendOnce = async (
    storeRef: IdempotencyStore,
    key: string,
    payload: P,
    signal: AbortSignal | undefined,
    run: () => Promise<SendResult>,
  ): Promise<SendResult> => {
    let sent: SendResult | undefined;
    const stored = await idempotent<StoredSend>(
      storeRef,
      key,
      async () => {
        sent = await run();
        return sent.status === 'held' ? HELD : { messageId: sent.messageId };
      },
      {
        leaseMs,
        resultTtlMs,
        waitForResultMs,
        fingerprint: fingerprintOf(payload),
        rememberFailures,
        // Only what the send found wrong with the message: never an abort or a held failure.
        classify: (error) =>
          error instanceof PermanentError && !shouldHold(error) && signal?.aborted !== true
            ? classify(error)
            : KEEP_OPEN,
        clock,
        ...(signal === undefined ? {} : { signal }),
      },
    );
    if (sent !== undefined) return sent;
    return 'messageId' in stored
      ? { status: 'accepted', messageId: stored.messageId, attempts: 0, deduplicated: true }
      : { status: 'held', messageId: undefined, attempts: 0, deduplicated: true };
  };

  /**
   * A deduplicated `held` answer brought up to date from `deliveries` (when it has `get`):
   * `accepted` with the latest wamid once a send of the message got one (a re-send, or a late
   * status that named the held send's wamid). A store that can't be read leaves it `held`.
   */
  const settledSince = async (key: string, held: SendResult): Promise<SendResult> => {
    if (typeof deliveries?.get !== 'function') return held;
    const record = await deliveries.get(key).catch(() => undefined);
    let wamid: string | undefined;
    for (const a of record?.attempts ?? []) wamid = a.externalId ?? wamid;
    return wamid === undefined
      ? held
      : { status: 'accepted', messageId: wamid, attempts: 0, deduplicated: true };
  };

  /** `start` in the bulkhead of the phone number, and `release` once settled. */
  const guarded = <T>(
    signal: AbortSignal | undefined,
    release: (() => void) | undefined,
    start: () => Promise<T>,
  ): Promise<T> => {
    const running =
      bulkhead === undefined
        ? start()
        : bulkhead.run(phoneNumberId, start, signal === undefined ? {} : { signal });
    return release === undefined ? running : running.finally(release);
  };

  const resend = async (
    key: string,
    afterAttempts: number,
    signal: AbortSignal | undefined,
  ): Promise<ResendResult> => {
    const storeRef = deliveries as NonNullable<typeof deliveries>;
    const record = await (storeRef.get as NonNullable<typeof storeRef.get>)(key);
    if (record === undefined) return { status: 'missing' };
    const payload = record.payload as P;
    const attempt = { attemptId: `${key}#${afterAttempts + 1}`, at: Math.floor(clock.now()) };
    const recorded = await storeRef.recordAttempt(key, attempt, { ifAttempts: afterAttempts });
    if (recorded.outcome === 'missing') return { status: 'missing' };
    if (recorded.outcome === 'conflict') return { status: 'conflict' };
    const { wire } = await wireOf(key, payload);
    const tracked: Tracked<P> = { key, attempt, wire, ownsSchedule: false };
    const run = () => send(payload, signal, key, tracked);
    const result =
      store === undefined
        ? await run()
        : await sendOnce(store, attempt.attemptId, payload, signal, run);
    return result.status === 'held'
      ? { status: 'held', attemptId: attempt.attemptId, attempts: result.attempts }
      : {
          status: 'accepted',
          attemptId: attempt.attemptId,
          messageId: result.messageId,
          attempts: result.attempts,
        };
  };

  return {
    phoneNumberId,
    sendMessage(payload, sendOptions = {}) {
      const { idempotencyKey } = sendOptions;
      if (idempotencyKey !== undefined) assertKey('idempotencyKey', idempotencyKey);
      const { signal, release } = eitherSignal(sendOptions.signal, clientSignal);
      const first = async (): Promise<SendResult> => {
        if (deliveries === undefined || idempotencyKey === undefined) {
          return send(payload, signal, idempotencyKey, undefined);
        }
        const begun = await beginAttempt(deliveries, idempotencyKey, payload);
        if ('result' in begun) return begun.result;
        return send(payload, signal, idempotencyKey, begun);
      };
      const start = async (): Promise<SendResult> => {
        if (idempotencyKey === undefined || store === undefined) return first();
        const result = await sendOnce(store, idempotencyKey, payload, signal, first);
        return result.status === 'held' && result.deduplicated
          ? settledSince(idempotencyKey, result)
          : result;
      };
      return guarded(signal, release, start);
    },

    resendMessage(key, resendOptions) {
      assertKey('key', key);
      if (typeof deliveries?.get !== 'function') {
        throw new TypeError('resendMessage needs the client option deliveries, with get()');
      }
      if (typeof resendOptions !== 'object' || resendOptions === null) {
        throw new TypeError(`options must be an object, got ${showValue(resendOptions)}`);
      }
      const afterAttempts = assertInteger('afterAttempts', resendOptions.afterAttempts);
      const { signal, release } = eitherSignal(resendOptions.signal, clientSignal);
      return guarded(signal, release, () => resend(key, afterAttempts, signal));
    },
  };
}

/**
 * The signal of one send: the call's, the client's, or, when both are set and neither has
 * aborted, one that aborts with the reason of whichever aborts first. `release` stops watching
 * them once the send settles; the client's long-lived signal keeps one listener however many
 * sends watch it.
 */
function eitherSignal(
  call: AbortSignal | undefined,
  client: AbortSignal | undefined,
): { signal: AbortSignal | undefined; release?: () => void } {
  if (client === undefined || call?.aborted) return { signal: call };
  if (call === undefined || client.aborted) return { signal: client };
  const controller = new AbortController();
  const unwatchCall = watchAbort(call, () => controller.abort(call.reason));
  const unwatchClient = watchAbort(client, () => controller.abort(client.reason));
  return {
    signal: controller.signal,
    release: () => {
      unwatchCall();
      unwatchClient();
    },
  };
}
