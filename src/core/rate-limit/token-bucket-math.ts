/**
 * Token-bucket arithmetic. The memory limiter calls these functions on its hot path and
 * `src/redis/scripts/token-bucket.lua` implements the same three steps line for line, so both
 * adapters grant exactly the same sequence. Time is in milliseconds, rates in tokens per
 * millisecond, token counts are real numbers (fractions carry over between calls).
 */

/**
 * Tokens in a bucket that held `tokens` at `updatedAtMs`, read at `nowMs`: it gains
 * `refillPerMs` per elapsed millisecond, never more than `capacity`. A clock that went
 * backwards (`nowMs < updatedAtMs`) adds nothing.
 */
export function refill(
  tokens: number,
  updatedAtMs: number,
  nowMs: number,
  capacity: number,
  refillPerMs: number,
): number {
  const elapsedMs = nowMs - updatedAtMs;
  if (!(elapsedMs > 0)) return tokens;
  const next = tokens + elapsedMs * refillPerMs;
  return Math.min(next, capacity);
}

/**
 * Whole milliseconds until a bucket holding `tokens` holds `requested`, refilling at
 * `refillPerMs`; 0 when it already does.
 */
export function msUntil(tokens: number, requested: number, refillPerMs: number): number {
  return tokens >= requested ? 0 : Math.ceil((requested - tokens) / refillPerMs);
}

/** Whole milliseconds until a bucket holding `tokens` is full again (its state can be dropped). */
export function msUntilFull(tokens: number, capacity: number, refillPerMs: number): number {
  return msUntil(tokens, capacity, refillPerMs);
}

/** A bucket's state: the tokens it held at `updatedAtMs`. */
export interface BucketState {
  readonly tokens: number;
  /** The latest clock reading the bucket has seen, in milliseconds. */
  readonly updatedAtMs: number;
}

/** What {@link takeTokens} decided, with the bucket's next state. */
export type TakeOutcome =
  | {
      readonly granted: true;
      readonly state: BucketState;
      /** Whole tokens left after the grant. */
      readonly remaining: number;
    }
  | {
      readonly granted: false;
      readonly state: BucketState;
      /** Milliseconds until the request could be granted. */
      readonly retryAfterMs: number;
    };

/**
 * One token-bucket decision: refill `state` up to `nowMs`, then take `requested` tokens if
 * they are there. A refusal takes nothing. Over any window of `w` milliseconds the tokens
 * granted never exceed `capacity + refillPerMs·w`.
 */
export function takeTokens(
  state: BucketState,
  nowMs: number,
  requested: number,
  capacity: number,
  refillPerMs: number,
): TakeOutcome {
  const tokens = refill(state.tokens, state.updatedAtMs, nowMs, capacity, refillPerMs);
  const updatedAtMs = Math.max(nowMs, state.updatedAtMs);
  if (tokens >= requested) {
    const left = tokens - requested;
    return {
      granted: true,
      state: { tokens: left, updatedAtMs },
      remaining: Math.floor(left),
    };
  }
  return {
    granted: false,
    state: { tokens, updatedAtMs },
    retryAfterMs: msUntil(tokens, requested, refillPerMs),
  };
}

/**
 * The effective refill rate of an adaptive bucket `sinceMs` milliseconds after its last
 * throttle, following CUBIC (RFC 8312, as the AWS SDKs' adaptive retry mode does): the rate
 * dropped to `decreaseFactor·rateAtThrottle`, climbs back to `rateAtThrottle` in a concave
 * curve that flattens at `recoveryMs`, then probes beyond it in a convex one. The result is
 * clamped to [`floor`, `ceiling`].
 *
 * `rate(t) = W·(1 + (1 − β)·((t − K) / K)³)`, W = `rateAtThrottle`, β = `decreaseFactor`,
 * K = `recoveryMs`. Any unit of rate works; the result is in the same unit.
 */
export function cubicRate(
  rateAtThrottle: number,
  sinceMs: number,
  decreaseFactor: number,
  recoveryMs: number,
  floor: number,
  ceiling: number,
): number {
  const x = (sinceMs - recoveryMs) / recoveryMs;
  const rate = rateAtThrottle * (1 + (1 - decreaseFactor) * x * x * x);
  if (rate >= ceiling) return ceiling;
  return Math.max(rate, floor);
}
