import type { ThrottleFeedback } from '../classify-types.js';
import { type Clock, MAX_TIMER_MS } from '../clock.js';
import type { EventListener } from '../events.js';
import { assertNumber, showValue } from '../validate.js';
import type { AcquireResult } from './rate-limit-types.js';

/** The size and speed of a token bucket; shared by the memory and the Redis limiter. */
export interface TokenBucketLimits {
  /**
   * Most tokens a bucket holds: the largest burst, and the largest request it can ever grant.
   * A new key starts full. At least 1: a smaller bucket could never grant a single token.
   */
  readonly capacity: number;
  /** Tokens added per second (fractions allowed: 1/6 is one token every 6 seconds). */
  readonly refillPerSecond: number;
}

/** Options every token-bucket limiter takes. */
export interface TokenBucketBaseOptions extends TokenBucketLimits {
  /**
   * Time source for the bucket maths (memory limiter) and for waiting in `acquire`.
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Receives a `rate_limit_wait` event when `acquire` waited for tokens (the bucket, or the
   * line before the caller, was short of them), or a caller was refused. A grant from tokens
   * on hand reports nothing, however long the store took to answer.
   */
  readonly onEvent?: EventListener;
}

/**
 * Tuning of adaptive mode. After a throttle the key's refill drops to `decreaseFactor` times
 * its current value, then recovers along a cubic curve (see `cubicRate`), never above
 * `refillPerSecond` and never below `minRefillRatio · refillPerSecond`.
 */
export interface AdaptiveOptions {
  /**
   * Multiplier applied to the effective refill on a throttle (0 < β < 1).
   * @default 0.7
   */
  readonly decreaseFactor?: number;
  /**
   * Lowest effective refill, as a fraction of `refillPerSecond` (0 < r ≤ 1).
   * @default 0.05
   */
  readonly minRefillRatio?: number;
  /**
   * Milliseconds the recovery takes to climb back to the rate the key had when throttled;
   * after that it keeps rising, faster and faster, up to `refillPerSecond`.
   * @default 10_000
   */
  readonly recoveryMs?: number;
  /**
   * Throttles reported within this many milliseconds of the last decrease count as the same
   * one: a burst of in-flight requests failing together lowers the rate once, not once each.
   * @default 1_000
   */
  readonly throttleWindowMs?: number;
  /**
   * Longest a server's `Retry-After` may keep a throttled key empty, in milliseconds. A longer
   * ask (a 130429 asking for a day, a far-future date) empties the bucket for this long only;
   * after that the key refills at its lowered rate. 0 ignores `Retry-After` (the bucket is
   * emptied, and refills at once); at most 2^31 − 1 (about 24.8 days).
   * @default 300_000 (5 minutes)
   */
  readonly maxThrottleMs?: number;
}

/** The defaults of {@link AdaptiveOptions}. */
export const ADAPTIVE_DEFAULTS = Object.freeze({
  decreaseFactor: 0.7,
  minRefillRatio: 0.05,
  recoveryMs: 10_000,
  throttleWindowMs: 1_000,
  maxThrottleMs: 300_000,
});

/** {@link AdaptiveOptions} with every field set. */
export type ResolvedAdaptiveOptions = Required<AdaptiveOptions>;

/** Validates `capacity` and `refillPerSecond`; returns the refill in tokens per millisecond. */
export function validateLimits(options: TokenBucketLimits, prefix = ''): number {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${prefix || 'options'} must be an object, got ${showValue(options)}`);
  }
  // Below 1 a bucket could never hold a whole token: `tryAcquire` would refuse for ever.
  assertNumber(`${prefix}capacity`, options.capacity, 1);
  const refillPerSecond = assertNumber(`${prefix}refillPerSecond`, options.refillPerSecond, 0);
  if (refillPerSecond === 0) throw new RangeError(`${prefix}refillPerSecond must be > 0, got 0`);
  return refillPerSecond / 1000;
}

/** Resolves `adaptive` (`true`, an object, or `false`/`undefined` for off). */
export function resolveAdaptive(
  adaptive: boolean | AdaptiveOptions | undefined,
): ResolvedAdaptiveOptions | undefined {
  if (adaptive === undefined || adaptive === false) return undefined;
  if (adaptive !== true && (typeof adaptive !== 'object' || adaptive === null)) {
    throw new TypeError(`adaptive must be a boolean or an object, got ${showValue(adaptive)}`);
  }
  const o = adaptive === true ? {} : adaptive;
  const decreaseFactor = assertNumber(
    'adaptive.decreaseFactor',
    o.decreaseFactor ?? ADAPTIVE_DEFAULTS.decreaseFactor,
    0,
    1,
  );
  if (decreaseFactor === 0 || decreaseFactor === 1) {
    throw new RangeError(
      `adaptive.decreaseFactor must be between 0 and 1 (exclusive), got ${decreaseFactor}`,
    );
  }
  const minRefillRatio = assertNumber(
    'adaptive.minRefillRatio',
    o.minRefillRatio ?? ADAPTIVE_DEFAULTS.minRefillRatio,
    0,
    1,
  );
  if (minRefillRatio === 0) throw new RangeError('adaptive.minRefillRatio must be > 0, got 0');
  const recoveryMs = assertNumber(
    'adaptive.recoveryMs',
    o.recoveryMs ?? ADAPTIVE_DEFAULTS.recoveryMs,
    1,
  );
  const throttleWindowMs = assertNumber(
    'adaptive.throttleWindowMs',
    o.throttleWindowMs ?? ADAPTIVE_DEFAULTS.throttleWindowMs,
    0,
  );
  const maxThrottleMs = assertNumber(
    'adaptive.maxThrottleMs',
    o.maxThrottleMs ?? ADAPTIVE_DEFAULTS.maxThrottleMs,
    0,
    MAX_TIMER_MS,
  );
  return { decreaseFactor, minRefillRatio, recoveryMs, throttleWindowMs, maxThrottleMs };
}

/** Throws the error a bad key deserves. */
export function rejectKey(key: unknown): never {
  if (typeof key !== 'string') throw new TypeError(`key must be a string, got ${showValue(key)}`);
  throw new RangeError('key must not be empty');
}

/** Throws the error a bad token count deserves. */
export function rejectTokens(tokens: unknown, capacity: number): never {
  if (typeof tokens !== 'number' || Number.isNaN(tokens)) {
    throw new TypeError(`tokens must be a number, got ${showValue(tokens)}`);
  }
  if (tokens > capacity) {
    throw new RangeError(
      `tokens must be at most the capacity ${capacity} (it could never be granted), got ${tokens}`,
    );
  }
  throw new RangeError(`tokens must be a finite number > 0, got ${tokens}`);
}

/** `true` when `tokens` is a request the bucket can ever grant. */
export function validTokens(tokens: unknown, capacity: number): tokens is number {
  return typeof tokens === 'number' && tokens > 0 && tokens <= capacity;
}

const CACHED = 4096;
// Filled up front: a first write at a high index (a bucket of capacity 2,000 starts at 1,999)
// would otherwise turn a sparse array into a slow dictionary.
const grants: (AcquireResult | undefined)[] = new Array(CACHED).fill(undefined);
const refusals: (AcquireResult | undefined)[] = new Array(CACHED).fill(undefined);

/**
 * `{ ok: true, remaining }`. Results below 4,096 are frozen and shared, so the hot path
 * allocates nothing.
 */
export function granted(remaining: number): AcquireResult {
  if (remaining >= CACHED) return { ok: true, remaining };
  let result = grants[remaining];
  if (result === undefined) {
    result = Object.freeze({ ok: true, remaining });
    grants[remaining] = result;
  }
  return result;
}

/** `{ ok: false, retryAfterMs }`, shared like {@link granted}. */
export function refused(retryAfterMs: number): AcquireResult {
  if (retryAfterMs >= CACHED) return { ok: false, retryAfterMs };
  let result = refusals[retryAfterMs];
  if (result === undefined) {
    result = Object.freeze({ ok: false, retryAfterMs });
    refusals[retryAfterMs] = result;
  }
  return result;
}

/** The feedback of a limiter that does not adapt. */
export const NO_FEEDBACK: ThrottleFeedback = Object.freeze({
  throttled() {},
  succeeded() {},
});
