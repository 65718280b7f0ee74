import { assertInteger, assertNoRenamedOptions, assertNumber, showValue } from '../validate.js';
import type { AttachedSection } from './metrics-section.js';
import type { BreakerStates, QueueDepths } from './snapshot.js';
import {
  CALLS_STARTED,
  type CounterSlots,
  GIVE_UP_BY_STOP_REASON,
  GIVE_UPS,
  LATENCY_COUNT,
  LATENCY_SUM,
  RETRIES,
  STOP_REASONS,
  SUCCEEDED,
} from './window.js';

/**
 * Limits {@link MetricsHandle.checkHealth} compares the window against. A breach is a value
 * strictly above its limit; `Infinity` turns a check off.
 */
export interface HealthThresholds {
  /**
   * Largest healthy share of attempts that are retries (retries ÷ (first attempts + retries)).
   * A healthy system handles 99 % of its work on the first attempt; above 2 % something
   * upstream is degrading (throttling, a flapping dependency) and retries start adding load.
   * @default 0.02
   */
  readonly retryRatio?: number;
  /**
   * Largest healthy share of finished calls that failed for good (gave up), aborted calls left
   * out. Above 2 % messages are being lost to the dead-letter queue faster than a person can
   * look at them.
   * @default 0.02
   */
  readonly errorRatio?: number;
  /**
   * Largest healthy mean duration of a call, retries and waits included, in milliseconds.
   * Users notice 5 s; past it, backoff is stacking up or the API is slow.
   * @default 5000
   */
  readonly meanLatencyMs?: number;
  /**
   * A queue whose sampled depth rose this many samples in a row is not being drained.
   * Five rises rule out the ordinary sawtooth of a busy queue while still catching a
   * sustained backlog within five sampling periods.
   * @default 5
   */
  readonly queueRisingSamples?: number;
  /**
   * Largest healthy number of circuit breaker circuits that are not closed (open or
   * half-open): by default any open circuit is a breach, alerted once and resolved when every
   * circuit has closed. `Infinity` turns the check off.
   * @default 0
   */
  readonly openCircuits?: number;
  /**
   * Rates and means are only judged over at least this many calls (attempts, deliveries):
   * below it one failure is already ≥ 5 % and would page someone for noise.
   * @default 20
   */
  readonly minSamples?: number;
}

/** The defaults of {@link HealthThresholds}. */
export const HEALTH_DEFAULTS = Object.freeze({
  retryRatio: 0.02,
  errorRatio: 0.02,
  meanLatencyMs: 5000,
  queueRisingSamples: 5,
  openCircuits: 0,
  minSamples: 20,
});

/** {@link HealthThresholds} with every field set and checked. */
export type ResolvedThresholds = { readonly [K in keyof typeof HEALTH_DEFAULTS]: number };

/**
 * A threshold the window is over. `value` is strictly greater than `threshold`. A section's
 * check is named `` `${section}.${check}` `` (e.g. `messages.meanDeliveryLatencyMs`).
 */
export type HealthBreach =
  | {
      readonly check: 'retryRatio' | 'errorRatio' | 'meanLatencyMs' | `${string}.${string}`;
      /** The measured ratio (0..1) or mean (milliseconds). */
      readonly value: number;
      readonly threshold: number;
      /** How many calls, attempts or deliveries the value is computed over. */
      readonly samples: number;
    }
  | {
      readonly check: 'queueRising';
      /** Consecutive samples in which the depth rose. */
      readonly value: number;
      readonly threshold: number;
      readonly queue: string;
      /** The last sampled depth. */
      readonly depth: number;
    }
  | {
      readonly check: 'openCircuits';
      /** Circuits not closed now. */
      readonly value: number;
      readonly threshold: number;
      /** Their keys. */
      readonly keys: readonly string[];
    };

/** The answer of {@link MetricsHandle.checkHealth}. */
export interface HealthReport {
  /** `true` when nothing is breached. */
  readonly healthy: boolean;
  readonly breaches: readonly HealthBreach[];
  /** When it was computed, in milliseconds of the metrics clock. */
  readonly time: number;
}

/** Passed to `onResolve` when a breach that was alerted has cleared. */
export interface HealthResolution {
  /** The breach as it was when it was alerted. */
  readonly breach: HealthBreach;
  /** When the alert fired, in milliseconds of the metrics clock. */
  readonly startedAt: number;
  /** When it was seen cleared. */
  readonly resolvedAt: number;
}

function thresholdValue(name: string, value: unknown, max: number, integer: boolean): number {
  if (value === Infinity) return value;
  return integer ? assertInteger(name, value, 1) : assertNumber(name, value, 0, max);
}

/** `t` checked and merged over `base`; errors name the field under `prefix`. */
export function resolveThresholds(
  base: ResolvedThresholds,
  t: HealthThresholds | undefined,
  prefix: string,
): ResolvedThresholds {
  if (t === undefined) return base;
  if (typeof t !== 'object' || t === null) {
    throw new TypeError(`${prefix} must be an object, got ${showValue(t)}`);
  }
  assertNoRenamedOptions(t, { retryRate: 'retryRatio', errorRate: 'errorRatio' });
  const pick = (key: keyof ResolvedThresholds, max: number, integer: boolean): number =>
    t[key] === undefined ? base[key] : thresholdValue(`${prefix}.${key}`, t[key], max, integer);
  return {
    retryRatio: pick('retryRatio', 1, false),
    errorRatio: pick('errorRatio', 1, false),
    meanLatencyMs: pick('meanLatencyMs', Infinity, false),
    queueRisingSamples: pick('queueRisingSamples', Infinity, true),
    openCircuits:
      t.openCircuits === undefined || t.openCircuits === Infinity
        ? (t.openCircuits ?? base.openCircuits)
        : assertInteger(`${prefix}.openCircuits`, t.openCircuits, 0),
    minSamples:
      t.minSamples === undefined
        ? base.minSamples
        : assertInteger(`${prefix}.minSamples`, t.minSamples, 1),
  };
}

/** Calls that gave up for good over the window, aborted calls left out. */
export function failedCalls(c: CounterSlots): number {
  return c.get(GIVE_UPS) - c.get(GIVE_UP_BY_STOP_REASON + STOP_REASONS.indexOf('aborted'));
}

function coreBreaches(c: CounterSlots, t: ResolvedThresholds, out: HealthBreach[]): void {
  const judge = (
    check: 'retryRatio' | 'errorRatio' | 'meanLatencyMs',
    part: number,
    samples: number,
  ): void => {
    if (samples < t.minSamples || samples <= 0) return;
    const value = part / samples;
    if (value > t[check]) out.push({ check, value, threshold: t[check], samples });
  };
  const retries = c.get(RETRIES);
  judge('retryRatio', retries, c.get(CALLS_STARTED) + retries);
  const failed = failedCalls(c);
  judge('errorRatio', failed, c.get(SUCCEEDED) + failed);
  judge('meanLatencyMs', c.get(LATENCY_SUM), c.get(LATENCY_COUNT));
}

function queueBreaches(queues: QueueDepths, t: ResolvedThresholds, out: HealthBreach[]): void {
  for (const [queue, q] of queues.entries()) {
    if (q.rising < t.queueRisingSamples) continue;
    out.push({
      check: 'queueRising',
      value: q.rising,
      threshold: t.queueRisingSamples,
      queue,
      depth: q.depth,
    });
  }
}

function breakerBreaches(
  breakers: BreakerStates,
  t: ResolvedThresholds,
  out: HealthBreach[],
): void {
  if (breakers.size <= t.openCircuits) return;
  out.push({
    check: 'openCircuits',
    value: breakers.size,
    threshold: t.openCircuits,
    keys: breakers.keys(),
  });
}

function sectionBreaches(
  sections: ReadonlyArray<readonly [string, AttachedSection<unknown>]>,
  t: ResolvedThresholds,
  out: HealthBreach[],
): void {
  for (const [name, section] of sections) {
    for (const b of section.health?.(t.minSamples) ?? []) {
      out.push({
        check: `${name}.${b.check}`,
        value: b.value,
        threshold: b.threshold,
        samples: b.samples,
      });
    }
  }
}

/** Everything the window holds that is over `t`: core ratios, queues, then sections. */
export function evaluateHealth(
  counters: CounterSlots,
  queues: QueueDepths,
  breakers: BreakerStates,
  sections: ReadonlyArray<readonly [string, AttachedSection<unknown>]>,
  t: ResolvedThresholds,
): HealthBreach[] {
  const breaches: HealthBreach[] = [];
  coreBreaches(counters, t, breaches);
  queueBreaches(queues, t, breaches);
  breakerBreaches(breakers, t, breaches);
  sectionBreaches(sections, t, breaches);
  return breaches;
}

function keyOf(b: HealthBreach): string {
  return b.check === 'queueRising' ? `queueRising:${b.queue}` : b.check;
}

function callHook<T>(hook: ((arg: T) => void) | undefined, arg: T): void {
  if (hook === undefined) return;
  try {
    hook(arg);
  } catch {
    // An alert hook never changes what is measured.
  }
}

/** Which breaches were alerted and not yet resolved; fires `onAlert`/`onResolve` on change. */
export class AlertState {
  readonly #active = new Map<string, { breach: HealthBreach; startedAt: number }>();
  readonly #onAlert: ((breach: HealthBreach) => void) | undefined;
  readonly #onResolve: ((resolution: HealthResolution) => void) | undefined;

  constructor(
    onAlert: ((breach: HealthBreach) => void) | undefined,
    onResolve: ((resolution: HealthResolution) => void) | undefined,
  ) {
    this.#onAlert = onAlert;
    this.#onResolve = onResolve;
  }

  /** `false` when no hook is set: then there is nothing to track. */
  get enabled(): boolean {
    return this.#onAlert !== undefined || this.#onResolve !== undefined;
  }

  update(breaches: readonly HealthBreach[], now: number): void {
    const seen = new Set<string>();
    for (const breach of breaches) {
      const key = keyOf(breach);
      seen.add(key);
      if (this.#active.has(key)) continue;
      this.#active.set(key, { breach, startedAt: now });
      callHook(this.#onAlert, breach);
    }
    for (const [key, { breach, startedAt }] of this.#active) {
      if (seen.has(key)) continue;
      this.#active.delete(key);
      callHook(this.#onResolve, { breach, startedAt, resolvedAt: now });
    }
  }
}
