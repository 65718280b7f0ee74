// The mergeable raw form of the core metrics: what a process counted over some time, as plain
// data that adds up across processes (fleet metrics in `retrykit/redis` store it), and the
// snapshot and health report of a merged one, computed by the same code as `createMetrics`.
import type { AnyEvent, RetrykitEvent } from '../events.js';
import { countEvent, type WindowState } from './count.js';
import {
  evaluateHealth,
  HEALTH_DEFAULTS,
  type HealthReport,
  type HealthThresholds,
  resolveThresholds,
} from './health.js';
import { HISTOGRAM_BUCKETS } from './histogram.js';
import {
  BreakerStates,
  type BreakerSummary,
  buildSnapshot,
  type MetricsSnapshot,
  QueueDepths,
  type QueueSummary,
} from './snapshot.js';
import { COUNTER_NAMES, COUNTERS, CounterSlots, SlotRing } from './window.js';
import { WindowHistogram } from './window-histogram.js';

/**
 * @internal Core metrics as plain, mergeable data. Counts and sums add up; the latency
 * histogram is kept by bucket (the log-linear buckets of `histogram.ts`), so percentiles of a
 * merge are those of the merged histogram.
 */
export interface RawMetrics {
  /** Counter values by name (`COUNTER_NAMES`), zeros left out. */
  readonly counters: Readonly<Record<string, number>>;
  /** Latency histogram: values counted by bucket index, empty buckets left out. */
  readonly latency: Readonly<Record<number, number>>;
  /** The largest latency, in milliseconds; `null` when none was measured. */
  readonly latencyMaxMs: number | null;
  /** The last sampled depth of each queue. */
  readonly queues: Readonly<Record<string, QueueSummary>>;
  /** Circuits that are not closed, by key. */
  readonly breakers: Readonly<Record<string, BreakerSummary>>;
}

const MAX_QUEUES = 100;

function emptyState(): WindowState {
  const counters = new CounterSlots(1);
  const latency = new WindowHistogram(1);
  return {
    ring: new SlotRing(1, 1, 0),
    counters,
    latency,
    queues: new QueueDepths(MAX_QUEUES),
    breakers: new BreakerStates(),
    parts: [counters, latency],
  };
}

function rawOf(w: WindowState): RawMetrics {
  const counters: Record<string, number> = {};
  for (let i = 0; i < COUNTERS; i++) {
    const v = w.counters.get(i);
    if (v !== 0) counters[COUNTER_NAMES[i] as string] = v;
  }
  const latency: Record<number, number> = {};
  w.latency.forEachBucket((b, n) => {
    latency[b] = n;
  });
  const max = w.latency.maxMs();
  return {
    counters,
    latency,
    latencyMaxMs: max === -Infinity ? null : max,
    queues: w.queues.summaries(),
    breakers: w.breakers.summaries(),
  };
}

/**
 * @internal Counts core events the way `createMetrics` does, with no window: `take()` hands
 * over what was counted since the last `take()` (the delta) and starts again from zero; queue
 * depths and open circuits are state, kept across takes. Memory is fixed (plus at most 100
 * queues and 1,000 circuits); each event costs O(1).
 */
export class MetricsRecorder {
  readonly #w = emptyState();
  #empty = true;

  /** Counts `event` at time `now` (milliseconds of the caller's clock). */
  record(event: AnyEvent, now: number): void {
    countEvent(this.#w, event as RetrykitEvent, now);
    this.#empty = false;
  }

  /** `true` when nothing was recorded since the last `take()`. */
  get empty(): boolean {
    return this.#empty;
  }

  /** What was counted since the last call (state included), and a fresh start for counts. */
  take(): RawMetrics {
    const raw = rawOf(this.#w);
    this.#w.counters.clearAll();
    this.#w.counters.resum();
    this.#w.latency.clearAll();
    this.#empty = true;
    return raw;
  }
}

/** Options of {@link snapshotOfRaw}. */
export interface RawSnapshotOptions {
  readonly time: number;
  readonly windowMs: number;
  readonly coveredMs: number;
}

function load(raw: RawMetrics): WindowState {
  const w = emptyState();
  const index = new Map(COUNTER_NAMES.map((name, i) => [name, i]));
  for (const [name, value] of Object.entries(raw.counters)) {
    const i = index.get(name);
    if (i !== undefined && Number.isFinite(value)) w.counters.add(0, i, value);
  }
  const max = raw.latencyMaxMs ?? 0;
  for (const [bucket, count] of Object.entries(raw.latency)) {
    const b = Number(bucket);
    if (Number.isInteger(b) && b >= 0 && b < HISTOGRAM_BUCKETS) {
      w.latency.recordBucket(0, b, count, max);
    }
  }
  const queues = Object.entries(raw.queues).sort(([, a], [, b]) => a.sampledAt - b.sampledAt);
  for (const [name, q] of queues.slice(-MAX_QUEUES)) w.queues.restore(name, q);
  for (const [key, b] of Object.entries(raw.breakers)) w.breakers.transition(key, b.state, b.since);
  return w;
}

/** @internal The `createMetrics` snapshot of `raw`, as if it were the window's content. */
export function snapshotOfRaw(raw: RawMetrics, options: RawSnapshotOptions): MetricsSnapshot {
  const w = load(raw);
  return buildSnapshot({
    ...options,
    counters: w.counters,
    latency: w.latency,
    queues: w.queues,
    breakers: w.breakers,
  });
}

/**
 * @internal The `checkHealth()` report of `raw` against `thresholds` (over the defaults);
 * errors name the field under `name`.
 */
export function healthOfRaw(
  raw: RawMetrics,
  thresholds: HealthThresholds | undefined,
  time: number,
  name = 'thresholds',
): HealthReport {
  const t = resolveThresholds(HEALTH_DEFAULTS, thresholds, name);
  const w = load(raw);
  const breaches = evaluateHealth(w.counters, w.queues, w.breakers, [], t);
  return { healthy: breaches.length === 0, breaches, time };
}

/**
 * @internal Adds raw forms together: counts and histograms summed, the largest maximum, each
 * queue's latest sample, and every circuit some part reports not closed (with its earliest
 * `since`).
 */
export function mergeRaw(parts: readonly RawMetrics[]): RawMetrics {
  const counters: Record<string, number> = {};
  const latency: Record<number, number> = {};
  const queues: Record<string, QueueSummary> = {};
  const breakers: Record<string, BreakerSummary> = {};
  let max: number | null = null;
  for (const p of parts) {
    for (const [k, v] of Object.entries(p.counters)) counters[k] = (counters[k] ?? 0) + v;
    for (const [k, v] of Object.entries(p.latency)) {
      const b = Number(k);
      latency[b] = (latency[b] ?? 0) + v;
    }
    if (p.latencyMaxMs !== null && (max === null || p.latencyMaxMs > max)) max = p.latencyMaxMs;
    for (const [k, q] of Object.entries(p.queues)) {
      const seen = queues[k];
      if (seen === undefined || q.sampledAt >= seen.sampledAt) queues[k] = q;
    }
    for (const [k, b] of Object.entries(p.breakers)) {
      const seen = breakers[k];
      if (seen === undefined || b.since < seen.since) breakers[k] = b;
    }
  }
  return { counters, latency, latencyMaxMs: max, queues, breakers };
}
