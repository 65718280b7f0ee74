import { REASONS, type Reason } from '../classify-types.js';
import { type Clock, systemClock } from '../clock.js';
import type { StopReason } from '../errors.js';
import type { AnyEvent, EventListener, IdempotencyHitEvent, RetrykitEvent } from '../events.js';
import {
  assertFunction,
  assertInteger,
  assertNoRenamedOptions,
  assertNumber,
  showValue,
} from '../validate.js';
import { bucketOf, HISTOGRAM_BUCKETS, HISTOGRAM_RELATIVE_ERROR, quantileOf } from './histogram.js';
import type {
  AttachedSection,
  InstrumentOptions,
  LatencySummary,
  MetricsSection,
  MetricsWindow,
  SectionCounter,
  SectionLatency,
  SectionSnapshots,
} from './metrics-section.js';

const STOP_REASONS: readonly StopReason[] = [
  'permanent',
  'max_attempts',
  'max_elapsed',
  'retry_after_exceeds_elapsed',
  'budget_exhausted',
  'aborted',
];
const IDEMPOTENCY: readonly IdempotencyHitEvent['status'][] = [
  'completed',
  'in_progress',
  'duplicate',
];

const R = REASONS.length;
const REASON_INDEX = new Map<string, number>(REASONS.map((r, i) => [r, i]));
const UNKNOWN = R - 1;

// Counter layout of one window slot.
const CALLS_STARTED = 0;
const ATTEMPTS_STARTED = 1;
const SUCCEEDED = 2;
const FIRST_OK = 3;
const FIRST_FAILED = 4;
const FAILURES = 5;
const RETRIES = 6;
const RETRY_DELAY_SUM = 7;
const GIVE_UPS = 8;
const LATENCY_SUM = 9;
const LATENCY_COUNT = 10;
const LIMIT_WAITS = 11;
const LIMIT_REFUSED = 12;
const LIMIT_WAIT_SUM = 13;
const DEAD_LETTERS = 14;
const FAILURE_BY_REASON = 15;
const RETRY_BY_REASON = FAILURE_BY_REASON + R;
const GIVE_UP_BY_REASON = RETRY_BY_REASON + R;
const DEAD_LETTER_BY_REASON = GIVE_UP_BY_REASON + R;
const GIVE_UP_BY_STOP_REASON = DEAD_LETTER_BY_REASON + R;
const IDEMPOTENCY_BY_STATUS = GIVE_UP_BY_STOP_REASON + STOP_REASONS.length;
const COUNTERS = IDEMPOTENCY_BY_STATUS + IDEMPOTENCY.length;

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
  minSamples: 20,
});

type ResolvedThresholds = { readonly [K in keyof typeof HEALTH_DEFAULTS]: number };

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

/** Options of {@link createMetrics}. */
export interface MetricsOptions<L extends readonly MetricsSection[] = readonly MetricsSection[]> {
  /**
   * Length of the sliding window, in milliseconds.
   * @default 300_000 (5 minutes, the usual range of a Prometheus alert rule)
   */
  readonly windowMs?: number;
  /**
   * Slots the window is divided into: it slides one slot (`windowMs / slots`) at a time, and
   * memory is proportional to it.
   * @default 30
   */
  readonly slots?: number;
  /** Time source for the window. Pass the one the components use. @default systemClock */
  readonly clock?: Clock;
  /** Limits for alerts and for `checkHealth()`; each field has its own default. */
  readonly thresholds?: HealthThresholds;
  /**
   * Called once when a threshold is first breached, and again only after it has cleared.
   * Checked each time the window slides (the first event or query of a new slot). Must not
   * throw (a throw is ignored).
   *
   * @example
   * { onAlert: (b) => pager.trigger(`retrykit ${b.check} at ${b.value}, limit ${b.threshold}`) }
   */
  readonly onAlert?: (breach: HealthBreach) => void;
  /**
   * Called once when an alerted breach has cleared. Must not throw (a throw is ignored).
   *
   * @example
   * { onResolve: ({ breach, startedAt, resolvedAt }) =>
   *     pager.resolve(`retrykit ${breach.check}`, resolvedAt - startedAt) }
   */
  readonly onResolve?: (resolution: HealthResolution) => void;
  /**
   * Distinct queue names whose depth is followed; the least recently sampled is forgotten first.
   * @default 100
   */
  readonly maxQueues?: number;
  /**
   * Parts added by layers above core (see `MetricsSection`): each sees every event, adds
   * `snapshot()[section.name]` and its checks to `checkHealth()` and `onAlert`.
   * @default []
   *
   * @example
   * import { whatsappDeliveryMetrics } from 'retrykit/whatsapp';
   * const metrics = createMetrics({ sections: [whatsappDeliveryMetrics()] });
   */
  readonly sections?: L;
}

/** The defaults of {@link MetricsOptions}. */
export const METRICS_DEFAULTS = Object.freeze({
  windowMs: 300_000,
  slots: 30,
  maxQueues: 100,
});

/** The last sampled depth of one queue. */
export interface QueueSummary {
  readonly depth: number;
  /** Consecutive samples in which the depth rose (0 when the last one did not). */
  readonly risingSamples: number;
  /** When the last sample arrived, in milliseconds of the metrics clock. */
  readonly sampledAt: number;
}

/** What {@link MetricsHandle.snapshot} returns: counts over the window and rates derived from them. */
export interface MetricsSnapshot {
  /** When it was taken, in milliseconds of the metrics clock. */
  readonly time: number;
  readonly windowMs: number;
  /** Milliseconds the counts actually cover (less than `windowMs` just after creation). */
  readonly coveredMs: number;
  readonly calls: {
    /** Calls whose first attempt started. */
    readonly started: number;
    readonly succeeded: number;
    /** Calls that succeeded on their first attempt. */
    readonly firstAttemptSucceeded: number;
    /** Calls that failed for good, aborted ones included. */
    readonly gaveUp: number;
    /** Finished calls (succeeded + gave up) per minute over `coveredMs`. */
    readonly perMinute: number | null;
  };
  readonly attempts: {
    readonly started: number;
    readonly failed: number;
    /** Failed attempts by classification reason (reasons with none are left out). */
    readonly failedByReason: Readonly<Partial<Record<Reason, number>>>;
  };
  readonly retries: {
    readonly scheduled: number;
    readonly byReason: Readonly<Partial<Record<Reason, number>>>;
    /** Mean backoff delay before a retry, in milliseconds. */
    readonly meanDelayMs: number | null;
  };
  readonly giveUps: {
    readonly total: number;
    readonly byReason: Readonly<Partial<Record<Reason, number>>>;
    /** Calls that gave up, by why retrying stopped. */
    readonly byStopReason: Readonly<Partial<Record<StopReason, number>>>;
  };
  /** Shares between 0 and 1; `null` when there is nothing to divide by. */
  readonly ratios: {
    /** First attempts that succeeded ÷ first attempts that finished. */
    readonly firstAttemptSuccess: number | null;
    /** Retries ÷ (first attempts + retries). */
    readonly retry: number | null;
    /** Calls that gave up ÷ calls that finished, aborted calls left out of both. */
    readonly error: number | null;
  };
  /** Duration of finished calls, retries included (aborted calls left out). */
  readonly latency: LatencySummary;
  readonly rateLimit: {
    /** Callers a limiter made wait. */
    readonly waits: number;
    /** Callers a limiter refused. */
    readonly refused: number;
    readonly meanWaitMs: number | null;
  };
  readonly idempotency: {
    readonly hits: number;
    readonly byStatus: Readonly<Partial<Record<IdempotencyHitEvent['status'], number>>>;
  };
  readonly deadLetters: {
    readonly total: number;
    readonly byReason: Readonly<Partial<Record<Reason, number>>>;
  };
  /** Last sampled depth by queue name (`default` when the event named none). */
  readonly queues: Readonly<Record<string, QueueSummary>>;
}

/**
 * What {@link createMetrics} returns; `S` holds the parts its sections add to `snapshot()`.
 */
export interface MetricsHandle<S = unknown> {
  /**
   * Pass it as `onEvent` to every component (combine several with `combineListeners`). Takes
   * events of layers above core too, for the sections.
   */
  readonly onEvent: EventListener<AnyEvent>;
  /** Counts and rates over the sliding window, with each section's part under its name. */
  snapshot(): MetricsSnapshot & S;
  /** Compares the window with `thresholds` (merged over the configured ones). */
  checkHealth(thresholds?: HealthThresholds): HealthReport;
}

function thresholdValue(name: string, value: unknown, max: number, integer: boolean): number {
  if (value === Infinity) return value;
  return integer ? assertInteger(name, value, 1) : assertNumber(name, value, 0, max);
}

function resolveThresholds(
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
    minSamples:
      t.minSamples === undefined
        ? base.minSamples
        : assertInteger(`${prefix}.minSamples`, t.minSamples, 1),
  };
}

function ratio(part: number, whole: number): number | null {
  return whole > 0 ? part / whole : null;
}

function nonZero<K extends string>(
  keys: readonly K[],
  agg: Float64Array,
  offset: number,
): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (let i = 0; i < keys.length; i++) {
    const n = agg[offset + i] ?? 0;
    if (n > 0) out[keys[i] as K] = n;
  }
  return out;
}

/** One latency histogram per slot plus their running sum. */
class WindowHistogram {
  readonly #slots: Uint32Array;
  readonly #sum: Float64Array;
  readonly #max: Float64Array;

  constructor(slots: number) {
    this.#slots = new Uint32Array(slots * HISTOGRAM_BUCKETS);
    this.#sum = new Float64Array(HISTOGRAM_BUCKETS);
    this.#max = new Float64Array(slots).fill(-Infinity);
  }

  record(slot: number, ms: number): void {
    const b = bucketOf(ms);
    this.#slots[slot * HISTOGRAM_BUCKETS + b] =
      (this.#slots[slot * HISTOGRAM_BUCKETS + b] ?? 0) + 1;
    this.#sum[b] = (this.#sum[b] ?? 0) + 1;
    if (ms > (this.#max[slot] ?? -Infinity)) this.#max[slot] = ms;
  }

  clear(slot: number): void {
    const from = slot * HISTOGRAM_BUCKETS;
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      const n = this.#slots[from + i] ?? 0;
      if (n !== 0) {
        this.#sum[i] = (this.#sum[i] ?? 0) - n;
        this.#slots[from + i] = 0;
      }
    }
    this.#max[slot] = -Infinity;
  }

  clearAll(): void {
    this.#slots.fill(0);
    this.#sum.fill(0);
    this.#max.fill(-Infinity);
  }

  summary(count: number, sumMs: number): LatencySummary {
    if (count <= 0) {
      return { count: 0, meanMs: null, p50Ms: null, p95Ms: null, p99Ms: null, maxMs: null };
    }
    let max = -Infinity;
    for (const m of this.#max) if (m > max) max = m;
    const at = (q: number): number => Math.min(quantileOf(this.#sum, 0, count, q), max);
    return {
      count,
      meanMs: sumMs / count,
      p50Ms: at(0.5),
      p95Ms: at(0.95),
      p99Ms: at(0.99),
      maxMs: max,
    };
  }
}

/** A section's counter: one value per slot plus their sum. */
class SlotCounter implements SectionCounter {
  readonly #slots: Float64Array;
  readonly #slot: () => number;
  #total = 0;

  constructor(slots: number, slot: () => number) {
    this.#slots = new Float64Array(slots);
    this.#slot = slot;
  }

  add(n = 1): void {
    if (!(n >= 0) || n === Infinity) return;
    const s = this.#slot();
    this.#slots[s] = (this.#slots[s] ?? 0) + n;
    this.#total += n;
  }

  total(): number {
    return this.#total;
  }

  clear(slot: number): void {
    this.#slots[slot] = 0;
  }

  /** Sums the slots again (rather than subtracting), which keeps float sums free of drift. */
  resum(): void {
    let t = 0;
    for (const v of this.#slots) t += v;
    this.#total = t;
  }
}

/** A section's latency: a windowed histogram with its count and sum. */
class SlotLatency implements SectionLatency {
  readonly histogram: WindowHistogram;
  readonly count: SlotCounter;
  readonly sum: SlotCounter;
  readonly #slot: () => number;

  constructor(slots: number, slot: () => number) {
    this.histogram = new WindowHistogram(slots);
    this.count = new SlotCounter(slots, slot);
    this.sum = new SlotCounter(slots, slot);
    this.#slot = slot;
  }

  record(ms: number): void {
    if (!(ms >= 0) || ms === Infinity) return;
    this.count.add();
    this.sum.add(ms);
    this.histogram.record(this.#slot(), ms);
  }

  summary(): LatencySummary {
    return this.histogram.summary(this.count.total(), this.sum.total());
  }
}

/** Keys of {@link MetricsSnapshot}: a section may not take one. */
const CORE_KEYS: ReadonlySet<string> = new Set([
  'time',
  'windowMs',
  'coveredMs',
  'calls',
  'attempts',
  'retries',
  'giveUps',
  'rates',
  'latency',
  'rateLimit',
  'idempotency',
  'deadLetters',
  'queues',
]);

function checkSections(sections: unknown): readonly MetricsSection[] {
  if (!Array.isArray(sections)) {
    throw new TypeError(`sections must be an array, got ${showValue(sections)}`);
  }
  const names = new Set<string>();
  for (const [i, section] of sections.entries()) {
    const name: unknown = (section as Partial<MetricsSection> | null)?.name;
    if (typeof name !== 'string' || name === '' || name.includes('.') || CORE_KEYS.has(name)) {
      throw new TypeError(
        `sections[${i}].name must be a non-empty string without "." and not a core snapshot key, got ${showValue(name)}`,
      );
    }
    if (names.has(name)) throw new TypeError(`sections[${i}].name "${name}" is already taken`);
    names.add(name);
    assertFunction(`sections[${i}].attach`, (section as MetricsSection).attach);
  }
  return sections as readonly MetricsSection[];
}

/**
 * Relative error bound of the latency percentiles in {@link MetricsSnapshot} (above 64 ms).
 */
export const LATENCY_PERCENTILE_ERROR = HISTOGRAM_RELATIVE_ERROR;

/**
 * Keeps a sliding window of what retrykit components report: calls, first-attempt successes,
 * retries, give-ups and failures by reason, call latency percentiles, limiter waits,
 * idempotency hits, dead letters and queue depths, plus what each of `sections` adds (WhatsApp
 * delivery: `whatsappDeliveryMetrics()` from `retrykit/whatsapp`). Memory is fixed at creation
 * (plus the bounded queue map and the sections' own) and each event costs O(1).
 *
 * @example
 * const metrics = createMetrics({
 *   windowMs: 60_000,
 *   onAlert: (b) => log.error(b, 'retrykit threshold breached'),
 * });
 * const send = createRetry({ onEvent: metrics.onEvent });
 * // …later, e.g. in a /health route:
 * const { healthy, breaches } = metrics.checkHealth();
 */
export function createMetrics<const L extends readonly MetricsSection[] = []>(
  options: MetricsOptions<L> = {},
): MetricsHandle<SectionSnapshots<L>> {
  const windowMs = assertNumber('windowMs', options.windowMs ?? METRICS_DEFAULTS.windowMs, 1);
  const slots = assertInteger('slots', options.slots ?? METRICS_DEFAULTS.slots, 1, 10_000);
  const sectionList = checkSections(options.sections ?? []);
  const maxQueues = assertInteger('maxQueues', options.maxQueues ?? METRICS_DEFAULTS.maxQueues, 1);
  const thresholds = resolveThresholds(HEALTH_DEFAULTS, options.thresholds, 'thresholds');
  for (const name of ['onAlert', 'onResolve'] as const) {
    if (options[name] !== undefined) assertFunction(name, options[name]);
  }
  const { onAlert, onResolve } = options;
  const clock = options.clock ?? systemClock;
  const slotMs = windowMs / slots;

  const counts = new Float64Array(slots * COUNTERS);
  const agg = new Float64Array(COUNTERS);
  const latency = new WindowHistogram(slots);
  const sectionCounters: SlotCounter[] = [];
  const sectionLatencies: SlotLatency[] = [];
  const queues = new Map<string, { depth: number; rising: number; time: number }>();
  const alerts = new Map<string, { breach: HealthBreach; startedAt: number }>();

  const createdAt = clock.now();
  let current = Math.floor(createdAt / slotMs);
  let slot = 0;
  let base = 0;

  const setSlot = (absolute: number): void => {
    current = absolute;
    slot = ((absolute % slots) + slots) % slots;
    base = slot * COUNTERS;
  };
  setSlot(current);

  const add = (counter: number, value = 1): void => {
    counts[base + counter] = (counts[base + counter] ?? 0) + value;
    agg[counter] = (agg[counter] ?? 0) + value;
  };

  /** Moves the window to the clock's slot; returns the time. */
  const advance = (): number => {
    const now = clock.now();
    const target = Math.floor(now / slotMs);
    if (!(target > current)) return now;
    const steps = target - current;
    if (steps >= slots) {
      counts.fill(0);
      latency.clearAll();
      for (const l of sectionLatencies) l.histogram.clearAll();
      for (let s = 0; s < slots; s++) for (const c of sectionCounters) c.clear(s);
    } else {
      for (let i = 1; i <= steps; i++) {
        const s = (((current + i) % slots) + slots) % slots;
        counts.fill(0, s * COUNTERS, (s + 1) * COUNTERS);
        latency.clear(s);
        for (const l of sectionLatencies) l.histogram.clear(s);
        for (const c of sectionCounters) c.clear(s);
      }
    }
    for (const c of sectionCounters) c.resum();
    // Summing the slots again (rather than subtracting) keeps float sums free of drift.
    agg.fill(0);
    for (let s = 0; s < slots; s++) {
      for (let c = 0; c < COUNTERS; c++) agg[c] = (agg[c] ?? 0) + (counts[s * COUNTERS + c] ?? 0);
    }
    setSlot(target);
    if (onAlert !== undefined || onResolve !== undefined) updateAlerts(now);
    return now;
  };

  const recordLatency = (ms: number): void => {
    if (!(ms >= 0) || ms === Infinity) return;
    add(LATENCY_SUM, ms);
    add(LATENCY_COUNT);
    latency.record(slot, ms);
  };

  const reasonIndex = (reason: string): number => REASON_INDEX.get(reason) ?? UNKNOWN;

  const coveredAt = (now: number): number =>
    Math.max(0, Math.min(now - createdAt, (slots - 1) * slotMs + (now - current * slotMs)));

  const window: MetricsWindow = {
    counter: (_name: string, _options: InstrumentOptions) => {
      const c = new SlotCounter(slots, () => slot);
      sectionCounters.push(c);
      return c;
    },
    latency: (_name: string, _options: InstrumentOptions) => {
      const l = new SlotLatency(slots, () => slot);
      sectionCounters.push(l.count, l.sum);
      sectionLatencies.push(l);
      return l;
    },
    perMinute: (count) => {
      const coveredMs = coveredAt(clock.now());
      return coveredMs > 0 ? (count / coveredMs) * 60_000 : null;
    },
  };
  const attached: ReadonlyArray<readonly [string, AttachedSection<unknown>]> = sectionList.map(
    (section) => [section.name, section.attach(window)] as const,
  );

  const onEvent: EventListener<AnyEvent> = (event: AnyEvent): void => {
    const now = advance();
    for (const [, section] of attached) section.observe(event);
    const e = event as RetrykitEvent;
    switch (e.type) {
      case 'attempt_start':
        add(ATTEMPTS_STARTED);
        if (e.attempt === 0) add(CALLS_STARTED);
        break;
      case 'attempt_success':
        add(SUCCEEDED);
        if (e.attempt === 0) add(FIRST_OK);
        recordLatency(e.elapsedMs);
        break;
      case 'attempt_failure':
        add(FAILURES);
        add(FAILURE_BY_REASON + reasonIndex(e.classification.reason));
        if (e.attempt === 0) add(FIRST_FAILED);
        break;
      case 'retry_scheduled':
        add(RETRIES);
        add(RETRY_BY_REASON + reasonIndex(e.reason));
        if (e.delayMs >= 0 && e.delayMs !== Infinity) add(RETRY_DELAY_SUM, e.delayMs);
        break;
      case 'give_up': {
        add(GIVE_UPS);
        add(GIVE_UP_BY_REASON + reasonIndex(e.reason));
        const stop = STOP_REASONS.indexOf(e.stopReason);
        if (stop >= 0) add(GIVE_UP_BY_STOP_REASON + stop);
        if (e.stopReason !== 'aborted') recordLatency(e.elapsedMs);
        break;
      }
      case 'rate_limit_wait':
        if (e.granted) {
          add(LIMIT_WAITS);
          if (e.waitMs >= 0 && e.waitMs !== Infinity) add(LIMIT_WAIT_SUM, e.waitMs);
        } else {
          add(LIMIT_REFUSED);
        }
        break;
      case 'idempotency_hit': {
        const i = IDEMPOTENCY.indexOf(e.status);
        if (i >= 0) add(IDEMPOTENCY_BY_STATUS + i);
        break;
      }
      case 'dead_letter':
        add(DEAD_LETTERS);
        add(DEAD_LETTER_BY_REASON + reasonIndex(e.reason));
        break;
      case 'queue_depth':
        sampleQueue(e.queue ?? 'default', e.depth, now);
        break;
    }
  };

  const sampleQueue = (name: string, depth: number, now: number): void => {
    if (!(depth >= 0)) return;
    const last = queues.get(name);
    if (last !== undefined) queues.delete(name);
    else if (queues.size >= maxQueues) {
      const oldest = queues.keys().next();
      if (oldest.done !== true) queues.delete(oldest.value);
    }
    const rising = last !== undefined && depth > last.depth ? last.rising + 1 : 0;
    queues.set(name, { depth, rising, time: now });
  };

  const evaluate = (t: ResolvedThresholds): HealthBreach[] => {
    const breaches: HealthBreach[] = [];
    const judge = (
      check: 'retryRatio' | 'errorRatio' | 'meanLatencyMs',
      part: number,
      samples: number,
    ): void => {
      if (samples < t.minSamples || samples <= 0) return;
      const value = part / samples;
      if (value > t[check]) breaches.push({ check, value, threshold: t[check], samples });
    };
    const retries = agg[RETRIES] ?? 0;
    judge('retryRatio', retries, (agg[CALLS_STARTED] ?? 0) + retries);
    const aborted = agg[GIVE_UP_BY_STOP_REASON + STOP_REASONS.indexOf('aborted')] ?? 0;
    const failed = (agg[GIVE_UPS] ?? 0) - aborted;
    judge('errorRatio', failed, (agg[SUCCEEDED] ?? 0) + failed);
    judge('meanLatencyMs', agg[LATENCY_SUM] ?? 0, agg[LATENCY_COUNT] ?? 0);
    for (const [queue, q] of queues) {
      if (q.rising >= t.queueRisingSamples) {
        breaches.push({
          check: 'queueRising',
          value: q.rising,
          threshold: t.queueRisingSamples,
          queue,
          depth: q.depth,
        });
      }
    }
    for (const [name, section] of attached) {
      for (const b of section.health?.(t.minSamples) ?? []) {
        breaches.push({
          check: `${name}.${b.check}`,
          value: b.value,
          threshold: b.threshold,
          samples: b.samples,
        });
      }
    }
    return breaches;
  };

  const keyOf = (b: HealthBreach): string =>
    b.check === 'queueRising' ? `queueRising:${b.queue}` : b.check;

  function updateAlerts(now: number): void {
    const breaches = evaluate(thresholds);
    const seen = new Set<string>();
    for (const breach of breaches) {
      const key = keyOf(breach);
      seen.add(key);
      if (alerts.has(key)) continue;
      alerts.set(key, { breach, startedAt: now });
      if (onAlert !== undefined) {
        try {
          onAlert(breach);
        } catch {
          // An alert hook never changes what is measured.
        }
      }
    }
    for (const [key, active] of alerts) {
      if (seen.has(key)) continue;
      alerts.delete(key);
      if (onResolve !== undefined) {
        try {
          onResolve({ breach: active.breach, startedAt: active.startedAt, resolvedAt: now });
        } catch {
          // An alert hook never changes what is measured.
        }
      }
    }
  }

  const snapshot = (): MetricsSnapshot & SectionSnapshots<L> => {
    const now = advance();
    const a = (i: number): number => agg[i] ?? 0;
    const coveredMs = coveredAt(now);
    const perMinute = (n: number): number | null =>
      coveredMs > 0 ? (n / coveredMs) * 60_000 : null;
    const aborted = a(GIVE_UP_BY_STOP_REASON + STOP_REASONS.indexOf('aborted'));
    const failedCalls = a(GIVE_UPS) - aborted;
    const queueSummaries: Record<string, QueueSummary> = {};
    for (const [name, q] of queues) {
      queueSummaries[name] = { depth: q.depth, risingSamples: q.rising, sampledAt: q.time };
    }
    const core: MetricsSnapshot = {
      time: now,
      windowMs,
      coveredMs,
      calls: {
        started: a(CALLS_STARTED),
        succeeded: a(SUCCEEDED),
        firstAttemptSucceeded: a(FIRST_OK),
        gaveUp: a(GIVE_UPS),
        perMinute: perMinute(a(SUCCEEDED) + a(GIVE_UPS)),
      },
      attempts: {
        started: a(ATTEMPTS_STARTED),
        failed: a(FAILURES),
        failedByReason: nonZero(REASONS, agg, FAILURE_BY_REASON),
      },
      retries: {
        scheduled: a(RETRIES),
        byReason: nonZero(REASONS, agg, RETRY_BY_REASON),
        meanDelayMs: ratio(a(RETRY_DELAY_SUM), a(RETRIES)),
      },
      giveUps: {
        total: a(GIVE_UPS),
        byReason: nonZero(REASONS, agg, GIVE_UP_BY_REASON),
        byStopReason: nonZero(STOP_REASONS, agg, GIVE_UP_BY_STOP_REASON),
      },
      ratios: {
        firstAttemptSuccess: ratio(a(FIRST_OK), a(FIRST_OK) + a(FIRST_FAILED)),
        retry: ratio(a(RETRIES), a(CALLS_STARTED) + a(RETRIES)),
        error: ratio(failedCalls, a(SUCCEEDED) + failedCalls),
      },
      latency: latency.summary(a(LATENCY_COUNT), a(LATENCY_SUM)),
      rateLimit: {
        waits: a(LIMIT_WAITS),
        refused: a(LIMIT_REFUSED),
        meanWaitMs: ratio(a(LIMIT_WAIT_SUM), a(LIMIT_WAITS)),
      },
      idempotency: {
        hits: IDEMPOTENCY.reduce((n, _, i) => n + a(IDEMPOTENCY_BY_STATUS + i), 0),
        byStatus: nonZero(IDEMPOTENCY, agg, IDEMPOTENCY_BY_STATUS),
      },
      deadLetters: {
        total: a(DEAD_LETTERS),
        byReason: nonZero(REASONS, agg, DEAD_LETTER_BY_REASON),
      },
      queues: queueSummaries,
    };
    if (attached.length === 0) return core as MetricsSnapshot & SectionSnapshots<L>;
    const parts: Record<string, unknown> = { ...core };
    for (const [name, section] of attached) parts[name] = section.snapshot();
    return parts as MetricsSnapshot & SectionSnapshots<L>;
  };

  const checkHealth = (overrides?: HealthThresholds): HealthReport => {
    const t = resolveThresholds(thresholds, overrides, 'checkHealth thresholds');
    const time = advance();
    const breaches = evaluate(t);
    return { healthy: breaches.length === 0, breaches, time };
  };

  return { onEvent, snapshot, checkHealth };
}
