import type { ThrottleFeedback } from '../classify-types.js';

/** The outcome of `tryAcquire`: a value, never an exception, for "not now". */
export type AcquireResult =
  | {
      readonly ok: true /** Whole tokens left in the bucket after this grant. */;
      readonly remaining: number;
    }
  | {
      readonly ok: false /** Milliseconds until the request could be granted. */;
      readonly retryAfterMs: number;
    };

/** Options of `acquire`. */
export interface AcquireOptions {
  /** Gives up waiting (nothing is taken) when it aborts. */
  readonly signal?: AbortSignal;
  /** Gives up (nothing is taken) when the grant would come later than this, in milliseconds. */
  readonly maxWaitMs?: number;
}

/**
 * A per-key rate limiter: the memory token bucket (synchronous `tryAcquire`) and the Redis one
 * (asynchronous) both implement it, so senders accept either.
 */
export interface RateLimiter {
  /** Takes `tokens` (default 1) from `key`'s bucket now, or says how long to wait. */
  tryAcquire(key: string, tokens?: number): AcquireResult | Promise<AcquireResult>;
  /**
   * Waits until `tokens` (default 1) can be taken from `key`'s bucket, then takes them.
   * Resolves with the milliseconds waited. Rejects with a typed error on abort or when
   * `maxWaitMs` can't be met, taking nothing.
   */
  acquire(key: string, tokens?: number, options?: AcquireOptions): Promise<number>;
  /**
   * Throttle feedback for `key`, to pass as `retry`'s `feedback`: an adaptive limiter slows
   * down when told about throttles; a fixed one ignores it.
   */
  feedback(key: string): ThrottleFeedback;
}

/**
 * One key's own limits, set at runtime (e.g. when WhatsApp moves a phone number to another
 * throughput tier). Validated like the limiter's own: `refillPerSecond` > 0, `capacity` ≥ 1.
 */
export interface KeyRate {
  /** Tokens the key gains per second. */
  readonly refillPerSecond: number;
  /**
   * Most tokens the key holds (its burst, and its largest grantable request).
   * @default the limiter's `capacity`
   */
  readonly capacity?: number;
}

/**
 * A {@link RateLimiter} whose keys can each be given their own rate at runtime. The memory
 * and the Redis token bucket both implement it (the memory one synchronously).
 */
export interface AdjustableRateLimiter extends RateLimiter {
  /**
   * Gives `key` its own rate from now on. Tokens it already holds carry over, cut to the new
   * capacity; waiters on it are served at the new rate, and any asking for more than the new
   * capacity reject with a `RangeError`. Other keys keep the configured rate.
   */
  setRate(key: string, rate: KeyRate): void | Promise<void>;
  /** Returns `key` to the configured rate (tokens carry over as with `setRate`). */
  resetRate(key: string): void | Promise<void>;
}
