import type { RandomSource } from './clock.js';

/** The built-in jitter strategies. */
export type JitterKind = 'none' | 'full' | 'equal' | 'decorrelated' | 'proportional';

/** What a custom jitter function receives besides the capped exponential delay. */
export interface JitterContext {
  /** 0-based attempt number. */
  readonly attempt: number;
  /** The previous delay in milliseconds, or `undefined` before the first retry. */
  readonly previousDelayMs: number | undefined;
  /** A `() => number` in [0, 1). */
  readonly random: RandomSource;
  /** The resolved options. */
  readonly options: Readonly<ResolvedBackoffOptions>;
}

/**
 * A custom jitter: gets the capped exponential delay `v` in milliseconds and returns the delay
 * to use. The result is clamped to [0, `maxDelayMs`].
 *
 * @example
 * const plusMinusTenPercent: JitterFunction = (v, { random }) => v * (0.9 + 0.2 * random());
 */
export type JitterFunction = (delayMs: number, ctx: JitterContext) => number;

/** How long to wait between attempts. */
export interface BackoffOptions {
  /**
   * Delay before the first retry (attempt 0), in milliseconds.
   * @default 1000
   */
  readonly initialDelayMs?: number;
  /**
   * Growth factor per attempt (≥ 1): `delay = initialDelayMs · multiplier^attempt`.
   * @default 2
   */
  readonly multiplier?: number;
  /**
   * Cap on any single delay, in milliseconds. Also capped at 2^31 − 1 (setTimeout's limit).
   * @default 86_400_000 (24 hours)
   */
  readonly maxDelayMs?: number;
  /**
   * How to spread delays so that many clients don't retry in lockstep. With `v` the capped
   * exponential delay:
   * - `'none'`: `v`
   * - `'full'`: uniform in [0, v] (AWS "full jitter")
   * - `'equal'`: v/2 + uniform in [0, v/2]
   * - `'decorrelated'`: min(cap, uniform in [initialDelayMs, 3 · previous delay]) (Brooker)
   * - `'proportional'`: min(cap, v + uniform in [0, jitterRatio · v])
   * - a {@link JitterFunction}
   * @default 'full'
   */
  readonly jitter?: JitterKind | JitterFunction;
  /**
   * Share of `v` added at most by `'proportional'` jitter, in [0, 1].
   * @default 0.25
   */
  readonly jitterRatio?: number;
}

/** {@link BackoffOptions} with every default filled in. */
export interface ResolvedBackoffOptions {
  readonly initialDelayMs: number;
  readonly multiplier: number;
  readonly maxDelayMs: number;
  readonly jitter: JitterKind | JitterFunction;
  readonly jitterRatio: number;
}
