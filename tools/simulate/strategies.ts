import { type BackoffOptions, computeDelay, type RandomSource } from '../../src/index.js';

/** The strategies the simulator compares: retrykit's jitter kinds plus immediate retry. */
export const STRATEGIES = [
  'none',
  'full',
  'equal',
  'decorrelated',
  'proportional',
  'no-backoff',
] as const;

export type Strategy = (typeof STRATEGIES)[number];

/** How each strategy is named in tables, legends and the docs. */
export const STRATEGY_LABELS: Readonly<Record<Strategy, string>> = Object.freeze({
  none: 'exponential, no jitter',
  full: 'full jitter',
  equal: 'equal jitter',
  decorrelated: 'decorrelated jitter',
  proportional: 'proportional 25 %',
  'no-backoff': 'no backoff',
});

/** One colour per strategy, the same in every chart. */
export const STRATEGY_COLORS: Readonly<Record<Strategy, string>> = Object.freeze({
  none: '#d62728',
  full: '#1f77b4',
  equal: '#ff7f0e',
  decorrelated: '#2ca02c',
  proportional: '#9467bd',
  'no-backoff': '#7f7f7f',
});

/** Exponential growth shared by every strategy; the jitter is set per strategy. */
export interface Growth {
  readonly initialDelayMs: number;
  readonly multiplier: number;
  readonly maxDelayMs: number;
}

/**
 * Returns the delay function of a strategy: `(attempt, previousDelayMs) => ms`, where attempt 0
 * is the wait before the first retry, exactly as `retry` calls the shipped `computeDelay`.
 * `'no-backoff'` retries at once.
 */
export function delayFunction(
  strategy: Strategy,
  growth: Growth,
  random: RandomSource,
): (attempt: number, previousDelayMs: number | undefined) => number {
  if (strategy === 'no-backoff') return () => 0;
  const options: BackoffOptions = { ...growth, jitter: strategy, jitterRatio: 0.25 };
  return (attempt, previousDelayMs) => computeDelay(attempt, options, { previousDelayMs, random });
}

/** A normally distributed sample (Box–Muller) folded to be non-negative, like Brooker's `Net`. */
export function networkDelay(random: RandomSource, meanMs: number, sdMs: number): number {
  const u = 1 - random();
  const v = random();
  return Math.abs(meanMs + sdMs * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
}
