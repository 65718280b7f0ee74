import { brandCheck, RetrykitError } from '../errors.js';

/** Details shared by the rate limiter's errors. */
interface RateLimitErrorDetails {
  /** The limiter key the caller waited on. */
  readonly key: string;
  /** Tokens the caller asked for. */
  readonly tokens: number;
}

/**
 * `acquire` gave up because the grant would come later than `maxWaitMs`. Nothing was taken.
 */
export class RateLimitTimeoutError extends RetrykitError {
  override readonly name = 'RateLimitTimeoutError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck('RateLimitTimeoutError', 'RATE_LIMIT_TIMEOUT');

  readonly key: string;
  readonly tokens: number;
  /** The `maxWaitMs` that could not be met, in milliseconds. */
  readonly maxWaitMs: number;
  /**
   * Milliseconds from giving up until the grant could have come, as the bucket estimated it
   * then: a caller that asks again this much later may be granted at once if nobody else
   * takes the tokens first. The memory bucket computes it from its state. The Redis bucket
   * uses the wait Redis reported; a caller that gave up while still queued behind earlier
   * callers of its own process never asked Redis, and gets a lower bound instead: the time
   * until the first of those is due to ask again (0 when it is asking right now).
   */
  readonly retryAfterMs: number;

  constructor(details: RateLimitErrorDetails & { maxWaitMs: number; retryAfterMs: number }) {
    super(
      'RATE_LIMIT_TIMEOUT',
      `Rate limit for "${details.key}": ${details.tokens} token(s) not available within ` +
        `maxWaitMs ${details.maxWaitMs} (about ${details.retryAfterMs} ms needed)`,
    );
    this.key = details.key;
    this.tokens = details.tokens;
    this.maxWaitMs = details.maxWaitMs;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** `acquire` was aborted by its `signal` while waiting. Nothing was taken; `cause` is the reason. */
export class RateLimitAbortedError extends RetrykitError {
  override readonly name = 'RateLimitAbortedError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck('RateLimitAbortedError', 'RATE_LIMIT_ABORTED');

  readonly key: string;
  readonly tokens: number;

  constructor(details: RateLimitErrorDetails, cause: unknown) {
    super('RATE_LIMIT_ABORTED', `Waiting for rate limit "${details.key}" was aborted`, { cause });
    this.key = details.key;
    this.tokens = details.tokens;
  }
}
