import { createBackgroundRetries } from '../background-retries.js';
import type { Classification, Reason } from '../classify-types.js';
import { type Clock, type RandomSource, systemClock } from '../clock.js';
import { brandCheck, describe, isRetrykitError, PermanentError, RetrykitError } from '../errors.js';
import { type BackoffOptions, delayFor, resolveBackoff } from '../retry/backoff.js';
import { classify as defaultClassify } from '../retry/classify.js';
import { assertStoreErrorPolicy, type StoreErrorPolicy } from '../store-error.js';
import {
  assertFunction,
  assertKey,
  assertNoRenamedOptions,
  assertNumber,
  showValue,
} from '../validate.js';
import type { ClaimOptions, IdempotencyStore } from './idempotency-types.js';

const DAY_MS = 86_400_000;

/**
 * The defaults of {@link IdempotentOptions}, and the TTLs we recommend.
 *
 * - `webhookResultTtlMs` (8 days): Meta redelivers an unacknowledged webhook for up to 7 days,
 *   so a webhook's dedupe mark must outlive that, with a day to spare.
 * - `resultTtlMs` (1 day): a send key must outlive every retry of that send, including a job
 *   queue's (BullMQ) delayed retries and a redrive from the dead-letter queue the same day.
 */
export const IDEMPOTENCY_DEFAULTS = Object.freeze({
  /** Lease on a claimed key, in milliseconds: 60 seconds. */
  leaseMs: 60_000,
  /** How long a result is kept, in milliseconds: 1 day (sends). */
  resultTtlMs: DAY_MS,
  /** The TTL for webhook dedupe, in milliseconds: 8 days (Meta redelivers for 7). */
  webhookResultTtlMs: 8 * DAY_MS,
  /** How long a duplicate waits for the first call's result, in milliseconds: 10 seconds. */
  waitForResultMs: 10_000,
  /** Backoff between a waiting duplicate's looks at the store: 50 ms doubling to 1 s. */
  pollBackoff: Object.freeze({
    initialDelayMs: 50,
    multiplier: 2,
    maxDelayMs: 1000,
    jitter: 'equal',
  } satisfies BackoffOptions),
  /** Permanent failures are released (not stored) unless asked. */
  rememberFailures: false,
  /** A store error fails the call. */
  onStoreError: 'fail',
} as const);

/** What the function wrapped by {@link idempotent} receives. */
export interface IdempotentContext {
  /** The idempotency key. */
  readonly key: string;
  /** The caller's `signal` (one that never aborts when none was given). */
  readonly signal: AbortSignal;
}

/** Why {@link idempotent} could not record a result that `fn` produced. */
export interface NotRecordedInfo {
  /** The idempotency key. */
  readonly key: string;
  /**
   * `lease_lost`: `fn` outlived its lease and the key was taken over, released or expired
   * (raise `leaseMs`); `store_unavailable`: the store failed while saving the result (it is
   * tried again in the background until the lease runs out).
   */
  readonly reason: 'lease_lost' | 'store_unavailable';
  /** Milliseconds from the claim to the attempt to record. */
  readonly heldMs: number;
  /** The store's error, for `store_unavailable`. */
  readonly error?: unknown;
}

/** Options of {@link idempotent}. */
export interface IdempotentOptions {
  /**
   * How long the claim is held while `fn` runs, in milliseconds. If `fn` takes longer, a
   * duplicate may take the key over and run it again: make it comfortably longer than `fn`'s
   * slowest run (timeouts included). There is no automatic lease renewal.
   * @default 60_000
   */
  readonly leaseMs?: number;
  /**
   * How long the result is remembered, in milliseconds. Use
   * `IDEMPOTENCY_DEFAULTS.webhookResultTtlMs` (8 days) for webhook IDs, a day or more for sends.
   * @default 86_400_000 (1 day)
   */
  readonly resultTtlMs?: number;
  /**
   * A digest of the request. A later call with the same key and a different fingerprint fails
   * with {@link IdempotencyKeyReuseError} instead of returning the other request's result.
   *
   * @example
   * { fingerprint: await sha256(JSON.stringify(payload)) }
   */
  readonly fingerprint?: string;
  /**
   * An id of this piece of work made by the caller, passed to the store's `claim`: a call whose
   * key is held in progress under the same `requestId` takes it at once instead of waiting for
   * the lease to run out. Pass an id that stays the same across retries of one run, such as a
   * BullMQ job id, so that a retry after a claim that timed out (and still ran on the store)
   * finds its own claim. Two calls that may run at the same time must never share one: both
   * would run `fn`. Without it each call's claim gets a random token.
   * @default undefined
   *
   * @example
   * { requestId: `job:${job.id}` }
   */
  readonly requestId?: string;
  /**
   * How long a duplicate waits for the first call's result, in milliseconds, before failing
   * with {@link IdempotencyInProgressError}. 0 fails at once.
   * @default 10_000
   */
  readonly waitForResultMs?: number;
  /** Backoff between a waiting duplicate's looks at the store. @default IDEMPOTENCY_DEFAULTS.pollBackoff */
  readonly pollBackoff?: BackoffOptions;
  /** Aborts the wait for another call's result (not `fn` itself, which receives it). */
  readonly signal?: AbortSignal;
  /**
   * Store a permanent failure (a `PermanentError`, or a throw that `classify` calls
   * non-retryable) so that later calls with the key rethrow it without running `fn`, as a
   * `PermanentError` with the same reason and platform code. Otherwise every failure releases
   * the key, and the next call runs `fn` again.
   * @default false
   */
  readonly rememberFailures?: boolean;
  /**
   * Decides which failures are permanent, for `rememberFailures`.
   * @default classify
   *
   * @example
   * import { composeClassifiers } from 'retrykit';
   * import { classifyWhatsAppError } from 'retrykit/whatsapp';
   * { classify: composeClassifiers(classifyWhatsAppError) }
   */
  readonly classify?: (error: unknown) => Classification;
  /**
   * What to do when the store can't be reached before `fn` ran. `'fail'` rejects with the
   * store's `StoreUnavailableError`: nothing runs. `'proceed'` runs `fn` unguarded, accepting a
   * possible duplicate over a lost call.
   * @default 'fail'
   */
  readonly onStoreError?: StoreErrorPolicy;
  /**
   * Called when `fn` succeeded but its result could not be stored (the call still resolves
   * with it). Must not throw.
   *
   * @example
   * { onNotRecorded: ({ key, reason, heldMs }) => log.warn({ key, reason, heldMs }, 'idempotency record lost') }
   */
  readonly onNotRecorded?: (info: NotRecordedInfo) => void;
  /** Time source and sleep. @default systemClock */
  readonly clock?: Clock;
  /** Random source for the poll jitter. @default Math.random */
  readonly random?: RandomSource;
}

/**
 * Another call holds the key and did not finish within `waitForResultMs`. Try again later (a
 * webhook handler can answer 5xx and let the sender redeliver).
 */
export class IdempotencyInProgressError extends RetrykitError {
  override readonly name = 'IdempotencyInProgressError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck(
    'IdempotencyInProgressError',
    'IDEMPOTENCY_IN_PROGRESS',
  );

  /** The idempotency key. */
  readonly key: string;
  /** Milliseconds left on the holder's lease at the last look. */
  readonly retryAfterMs: number;
  /** Milliseconds this call waited. */
  readonly waitedMs: number;

  constructor(key: string, retryAfterMs: number, waitedMs: number) {
    super(
      'IDEMPOTENCY_IN_PROGRESS',
      `Idempotency key ${JSON.stringify(key)} is held by another call (lease ends in ${retryAfterMs} ms; waited ${waitedMs} ms)`,
    );
    this.key = key;
    this.retryAfterMs = retryAfterMs;
    this.waitedMs = waitedMs;
  }
}

/** The key was used before with a different `fingerprint`: a different request. */
export class IdempotencyKeyReuseError extends RetrykitError {
  override readonly name = 'IdempotencyKeyReuseError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck(
    'IdempotencyKeyReuseError',
    'IDEMPOTENCY_KEY_REUSE',
  );

  /** The idempotency key. */
  readonly key: string;

  constructor(key: string) {
    super(
      'IDEMPOTENCY_KEY_REUSE',
      `Idempotency key ${JSON.stringify(key)} was already used with a different fingerprint (a different request)`,
    );
    this.key = key;
  }
}

/** A permanent failure as {@link idempotent} stores it with `rememberFailures`. */
export interface StoredFailure {
  /** The original error's `name` (of its `cause`, for a `PermanentError`). */
  readonly name: string;
  /** The original error's message. */
  readonly message: string;
  /** The error's own `code`, when it had a string or number one. */
  readonly code?: string | number;
  /** Why it failed, as classified. */
  readonly reason: Reason;
  /** The platform's code the failure was classified with (`Classification.errorCode`, e.g. 131026). */
  readonly errorCode?: string | number;
}

const FAILURE = 'retrykit:failure';

function storedFailure(result: unknown): StoredFailure | undefined {
  if (typeof result !== 'object' || result === null || !(FAILURE in result)) return undefined;
  return (result as Record<typeof FAILURE, StoredFailure>)[FAILURE];
}

function describeFailure(error: unknown, classification: Classification): StoredFailure {
  const inner = error instanceof PermanentError && error.cause !== undefined ? error.cause : error;
  const name = inner instanceof Error ? inner.name : 'Error';
  const code = (inner as { code?: unknown } | null)?.code;
  return {
    name,
    message: describe(inner),
    reason: classification.reason,
    ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
    ...(classification.errorCode === undefined ? {} : { errorCode: classification.errorCode }),
  };
}

/** The error a remembered failure is rethrown as: a `PermanentError`, so `retry` stops. */
function replay(key: string, failure: StoredFailure): PermanentError {
  const { errorCode } = failure;
  const original = Object.assign(new Error(failure.message), {
    name: failure.name,
    ...(failure.code === undefined ? {} : { code: failure.code }),
    ...(errorCode === undefined ? {} : { errorCode }),
  });
  return new PermanentError(original, {
    message: `An earlier call with idempotency key ${JSON.stringify(key)} failed permanently: ${failure.message}`,
    classification: {
      retryable: false,
      reason: failure.reason,
      ...(errorCode === undefined ? {} : { errorCode }),
    },
  });
}

const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/**
 * Completions and releases that failed with the store unreachable, tried again in the
 * background while the lease lasts; at most this many at once in a process.
 */
const MAX_PENDING_FOLLOW_UPS = 10_000;
const followUps = createBackgroundRetries(MAX_PENDING_FOLLOW_UPS);

/**
 * Runs `fn` once per `key`, however many times and from however many processes it is called:
 * the first call claims the key, runs `fn` and stores its result for `resultTtlMs`; later calls get
 * that result without running `fn`. A duplicate that arrives while the first is running waits
 * up to `waitForResultMs` for its result.
 *
 * - `fn` throws: the key is released and the error rethrown, so a retry runs `fn` again. With
 *   `rememberFailures`, a permanent failure is stored instead, and later calls rethrow it as a
 *   `PermanentError` (same message, `name` and `code` on its `cause`).
 * - The store is down: rejects with `StoreUnavailableError` without running `fn` (unless
 *   `onStoreError: 'proceed'`). A store that can't answer never counts as "not seen before". A
 *   claim that timed out yet ran later is released by the Redis store, so a retry runs `fn`
 *   without waiting out the lease; with `requestId`, a retry takes its own claim at once.
 * - `fn` outlives `leaseMs`: another call may take the key over and run `fn` too; this call's
 *   result is then not stored (see `onNotRecorded`).
 *
 * @example
 * const receipt = await idempotent(store, `send:${order.id}`, () => whatsapp.send(order), {
 *   resultTtlMs: IDEMPOTENCY_DEFAULTS.resultTtlMs,
 * });
 */
export async function idempotent<T>(
  store: IdempotencyStore,
  key: string,
  fn: (ctx: IdempotentContext) => T | PromiseLike<T>,
  options: IdempotentOptions = {},
): Promise<Awaited<T>> {
  if (typeof store !== 'object' || store === null || typeof store.claim !== 'function') {
    throw new TypeError(`store must be an IdempotencyStore, got ${showValue(store)}`);
  }
  assertKey('key', key);
  assertFunction('fn', fn);
  assertNoRenamedOptions(options, { ttlMs: 'resultTtlMs' });
  const leaseMs = assertNumber('leaseMs', options.leaseMs ?? IDEMPOTENCY_DEFAULTS.leaseMs, 1);
  const resultTtlMs = assertNumber(
    'resultTtlMs',
    options.resultTtlMs ?? IDEMPOTENCY_DEFAULTS.resultTtlMs,
    1,
  );
  const waitForResultMs = assertNumber(
    'waitForResultMs',
    options.waitForResultMs ?? IDEMPOTENCY_DEFAULTS.waitForResultMs,
    0,
  );
  const fingerprint =
    options.fingerprint === undefined ? undefined : assertKey('fingerprint', options.fingerprint);
  const requestId =
    options.requestId === undefined ? undefined : assertKey('requestId', options.requestId);
  const pollBackoff = resolveBackoff(
    options.pollBackoff ?? IDEMPOTENCY_DEFAULTS.pollBackoff,
    'pollBackoff',
  );
  const onStoreError = assertStoreErrorPolicy(
    options.onStoreError ?? IDEMPOTENCY_DEFAULTS.onStoreError,
  );
  for (const name of ['classify', 'onNotRecorded', 'random'] as const) {
    if (options[name] !== undefined) assertFunction(name, options[name]);
  }
  const rememberFailures = options.rememberFailures ?? IDEMPOTENCY_DEFAULTS.rememberFailures;
  if (typeof rememberFailures !== 'boolean') {
    throw new TypeError(`rememberFailures must be a boolean, got ${showValue(rememberFailures)}`);
  }
  const classify = options.classify ?? defaultClassify;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const signal = options.signal;
  const { onNotRecorded } = options;
  const context: IdempotentContext = { key, signal: signal ?? NEVER_ABORTED };
  const claimOptions: ClaimOptions = {
    leaseMs,
    ...(fingerprint === undefined ? {} : { fingerprint }),
    ...(requestId === undefined ? {} : { requestId }),
  };

  const start = clock.now();
  let polls = 0;
  let previousDelay: number | undefined;
  for (;;) {
    signal?.throwIfAborted();
    let claim: Awaited<ReturnType<IdempotencyStore['claim']>>;
    try {
      claim = await store.claim(key, claimOptions);
    } catch (error) {
      if (onStoreError === 'proceed' && isStoreUnavailable(error)) return await fn(context);
      throw error;
    }
    const now = clock.now();
    switch (claim.status) {
      case 'claimed':
        return run(claim.token, now);
      case 'mismatch':
        throw new IdempotencyKeyReuseError(key);
      case 'completed': {
        const failure = storedFailure(claim.result);
        if (failure !== undefined) throw replay(key, failure);
        return claim.result as Awaited<T>;
      }
      case 'in_progress': {
        const waited = now - start;
        const left = waitForResultMs - waited;
        if (left <= 0) throw new IdempotencyInProgressError(key, claim.retryAfterMs, waited);
        const backoff = delayFor(pollBackoff, polls++, previousDelay, random);
        previousDelay = backoff;
        // Look again no later than the lease's end (a crashed holder's key can be taken over
        // then) nor the end of our wait, and not sooner than 1 ms (no busy loop).
        const delay = Math.min(left, Math.max(1, Math.min(backoff, claim.retryAfterMs + 1)));
        await clock.sleep(delay, signal);
      }
    }
  }

  async function run(token: string, claimedAt: number): Promise<Awaited<T>> {
    let value: Awaited<T>;
    try {
      value = await fn(context);
    } catch (error) {
      await settleFailure(token, claimedAt, error);
      throw error;
    }
    let stored: boolean;
    const record = () => store.complete(key, token, value, { resultTtlMs });
    try {
      stored = await record();
    } catch (error) {
      if (!isStoreUnavailable(error)) {
        // The result can't be stored at all (e.g. not serialisable): free the key and say so.
        await store.release(key, token).catch(() => false);
        throw error;
      }
      // Until the lease runs out the key is still ours: keep trying, so that a store that comes
      // back in time answers the next duplicate with this result instead of running `fn` again.
      followUps.add(key, record, leaseLeft(claimedAt));
      notRecorded('store_unavailable', claimedAt, error);
      return value;
    }
    if (!stored) notRecorded('lease_lost', claimedAt);
    return value;
  }

  async function settleFailure(token: string, claimedAt: number, error: unknown): Promise<void> {
    if (rememberFailures) {
      const classification = classify(error);
      if (!classification.retryable) {
        const record = { [FAILURE]: describeFailure(error, classification) };
        const stored = await store.complete(key, token, record, { resultTtlMs }).catch(() => false);
        if (stored) return;
      }
    }
    // A failed release is tried again in the background until the lease would have run out, so
    // that the next call need not wait for it.
    const release = () => store.release(key, token);
    await release().catch(() => {
      followUps.add(key, release, leaseLeft(claimedAt));
    });
  }

  function leaseLeft(claimedAt: number): number {
    return Math.max(0, leaseMs - (clock.now() - claimedAt));
  }

  function notRecorded(reason: NotRecordedInfo['reason'], claimedAt: number, error?: unknown) {
    if (onNotRecorded === undefined) return;
    const info: NotRecordedInfo = {
      key,
      reason,
      heldMs: clock.now() - claimedAt,
      ...(error === undefined ? {} : { error }),
    };
    try {
      onNotRecorded(info);
    } catch {
      // A broken hook must not turn a success into a failure.
    }
  }
}

function isStoreUnavailable(error: unknown): boolean {
  return isRetrykitError(error) && error.code === 'STORE_UNAVAILABLE';
}
