import type { BackoffOptions, JitterKind, ResolvedBackoffOptions } from '../backoff-types.js';
import type { Classification, Reason } from '../classify-types.js';
import { MAX_TIMER_MS, type RandomSource } from '../clock.js';
import { assertNumber, assertOneOf, showValue } from '../validate.js';

export type {
  BackoffOptions,
  JitterContext,
  JitterFunction,
  JitterKind,
  ResolvedBackoffOptions,
} from '../backoff-types.js';

/** @internal The built-in jitter strategies, in the order the docs list them. */
export const JITTER_KINDS = Object.freeze([
  'none',
  'full',
  'equal',
  'decorrelated',
  'proportional',
] as const satisfies readonly JitterKind[]);

/** Per-call inputs to {@link computeDelay}. */
export interface DelayContext {
  /** The previous delay in milliseconds; decorrelated jitter grows from it. */
  readonly previousDelayMs?: number | undefined;
  /**
   * A `() => number` in [0, 1).
   * @default Math.random
   */
  readonly random?: RandomSource;
}

/** The defaults of {@link BackoffOptions}. */
export const BACKOFF_DEFAULTS: Readonly<ResolvedBackoffOptions> = Object.freeze({
  initialDelayMs: 1000,
  multiplier: 2,
  maxDelayMs: 86_400_000,
  jitter: 'full',
  jitterRatio: 0.25,
});

const resolvedCache = new WeakMap<BackoffOptions, ResolvedBackoffOptions>();

/**
 * Validates `options` and fills in defaults. Throws a `TypeError` or `RangeError` naming the
 * option and the value. Results are cached per options object.
 */
export function resolveBackoff(
  options: BackoffOptions = {},
  prefix = 'backoff',
): ResolvedBackoffOptions {
  const cached = resolvedCache.get(options);
  if (cached !== undefined) return cached;
  const initialDelayMs = options.initialDelayMs ?? BACKOFF_DEFAULTS.initialDelayMs;
  const multiplier = options.multiplier ?? BACKOFF_DEFAULTS.multiplier;
  const maxDelayMs = options.maxDelayMs ?? BACKOFF_DEFAULTS.maxDelayMs;
  const jitter = options.jitter ?? BACKOFF_DEFAULTS.jitter;
  const jitterRatio = options.jitterRatio ?? BACKOFF_DEFAULTS.jitterRatio;
  assertNumber(`${prefix}.initialDelayMs`, initialDelayMs, 0);
  assertNumber(`${prefix}.multiplier`, multiplier, 1);
  assertNumber(`${prefix}.maxDelayMs`, maxDelayMs, 0);
  assertNumber(`${prefix}.jitterRatio`, jitterRatio, 0, 1);
  if (typeof jitter !== 'function') assertOneOf(`${prefix}.jitter`, jitter, JITTER_KINDS);
  const resolved = Object.freeze({ initialDelayMs, multiplier, maxDelayMs, jitter, jitterRatio });
  resolvedCache.set(options, resolved);
  return resolved;
}

/** `min(cap, initial · multiplier^attempt)`; an overflow to Infinity lands on the cap. */
function exponential(o: ResolvedBackoffOptions, cap: number, attempt: number): number {
  if (o.initialDelayMs === 0) return 0;
  const v = o.initialDelayMs * o.multiplier ** attempt;
  return Math.min(v, cap);
}

/**
 * The delay before retry number `attempt` (0-based: attempt 0 is the wait before the first
 * retry), in milliseconds. With `{ initialDelayMs: 1000, multiplier: 2, jitter: 'none' }` the
 * delays are 1000, 2000, 4000, 8000, 16000…
 *
 * Always finite, ≥ 0, ≤ `maxDelayMs` and ≤ 2^31 − 1. Throws for invalid options or attempt.
 */
export function computeDelay(
  attempt: number,
  options?: BackoffOptions,
  ctx?: DelayContext,
): number {
  if (!Number.isInteger(attempt) || attempt < 0) {
    throw new RangeError(`attempt must be a non-negative integer, got ${showValue(attempt)}`);
  }
  return delayFor(
    resolveBackoff(options),
    attempt,
    ctx?.previousDelayMs,
    ctx?.random ?? Math.random,
  );
}

/** {@link computeDelay} on already-resolved options: the hot path of `retry`. */
export function delayFor(
  o: ResolvedBackoffOptions,
  attempt: number,
  previousDelayMs: number | undefined,
  random: RandomSource,
): number {
  const cap = Math.min(o.maxDelayMs, MAX_TIMER_MS);
  const v = exponential(o, cap, attempt);
  let d: number;
  switch (o.jitter) {
    case 'none':
      return v;
    case 'full':
      d = v * random();
      break;
    case 'equal':
      d = Math.min(v, v / 2 + (v / 2) * random());
      break;
    case 'proportional':
      d = v + o.jitterRatio * v * random();
      break;
    case 'decorrelated': {
      const low = Math.min(o.initialDelayMs, cap);
      const prev = previousDelayMs !== undefined && previousDelayMs > low ? previousDelayMs : low;
      const high = Math.min(prev * 3, cap);
      d = Math.min(high, low + (high - low) * random());
      break;
    }
    default:
      d = o.jitter(v, { attempt, previousDelayMs, random, options: o });
  }
  return clamp(d, cap);
}

function clamp(d: number, cap: number): number {
  if (!(d > 0)) return 0; // also catches NaN from a custom jitter
  return Math.min(d, cap);
}

/**
 * The first `count` delays for `options`, in milliseconds: handy for docs, plots and
 * checking a configuration.
 */
export function backoffSchedule(
  options: BackoffOptions,
  count: number,
  random: RandomSource = Math.random,
): number[] {
  const o = resolveBackoff(options);
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`count must be a non-negative integer, got ${showValue(count)}`);
  }
  const out: number[] = [];
  let previous: number | undefined;
  for (let attempt = 0; attempt < count; attempt++) {
    previous = delayFor(o, attempt, previous, random);
    out.push(previous);
  }
  return out;
}

/** @internal The backoff after a failure: the base options and the per-reason overrides, resolved. */
export interface BackoffPolicy {
  readonly backoff: ResolvedBackoffOptions;
  readonly byReason: Partial<Record<Reason, ResolvedBackoffOptions>>;
}

/** @internal Validates `backoff` and `backoffByReason` (each override merged over `backoff`). */
export function resolveBackoffPolicy(
  backoff: BackoffOptions | undefined,
  backoffByReason: Partial<Record<Reason, BackoffOptions>> | undefined,
): BackoffPolicy {
  const base = resolveBackoff(backoff);
  const byReason: Partial<Record<Reason, ResolvedBackoffOptions>> = {};
  for (const [reason, override] of Object.entries(backoffByReason ?? {})) {
    if (override !== undefined) {
      byReason[reason as Reason] = resolveBackoff(
        { ...base, ...override },
        `backoffByReason.${reason}`,
      );
    }
  }
  return { backoff: base, byReason };
}

/**
 * @internal What follows a retryable failure: the delay before the next attempt in
 * milliseconds, or why there is none.
 */
export type DelayDecision = number | 'max_elapsed' | 'retry_after_exceeds_elapsed';

/** @internal The failure {@link delayAfterFailure} decides on. */
export interface FailureDelayInput {
  /** 0-based number of the attempt that failed. */
  readonly attempt: number;
  /**
   * The delay before the failed attempt; `undefined` before the first retry. `'unknown'` when
   * the caller keeps none (BullMQ): jitters that grow from it get the previous attempt's
   * un-jittered delay.
   */
  readonly previousDelayMs: number | undefined | 'unknown';
  /** What is left of the elapsed budget, in milliseconds. */
  readonly leftMs: number;
  readonly random: RandomSource;
}

/**
 * @internal The one decision after a retryable failure, for `retry` and the BullMQ strategy
 * alike: the backoff for the failure's reason (the classification's own `backoff` merged
 * over it), then the server's wait.
 *
 * A server's wait (`retryAfterMs`) is honoured even above `maxDelayMs`, as long as it ends
 * within the budget: a shorter sleep would only earn another refusal. A wait past the budget
 * gives up at once (`retry_after_exceeds_elapsed`), and so does a backoff past it
 * (`max_elapsed`). The server's wait gets up to 10 % more (at most 1 s) so that clients
 * don't resync, never past the budget. Always finite and ≥ 0 when a number.
 */
export function delayAfterFailure(
  policy: BackoffPolicy,
  c: Classification,
  input: FailureDelayInput,
): DelayDecision {
  const { attempt, leftMs, random } = input;
  let b = policy.byReason[c.reason] ?? policy.backoff;
  if (c.backoff !== undefined) b = resolveBackoff({ ...b, ...c.backoff });
  let previous = input.previousDelayMs;
  if (previous === 'unknown') {
    previous =
      attempt > 0 && (b.jitter === 'decorrelated' || typeof b.jitter === 'function')
        ? delayFor({ ...b, jitter: 'none' }, attempt - 1, undefined, random)
        : undefined;
  }
  const delay = delayFor(b, attempt, previous, random);
  if (c.retryAfterMs === undefined || !(c.retryAfterMs > 0)) {
    return delay > leftMs ? 'max_elapsed' : delay;
  }
  if (c.retryAfterMs > leftMs) return 'retry_after_exceeds_elapsed';
  const spread = Math.min(c.retryAfterMs * 0.1, 1000) * random();
  return Math.min(Math.max(delay, c.retryAfterMs + spread), leftMs);
}
