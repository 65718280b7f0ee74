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
import type { AttachedSection, MetricsSection, MetricsWindow } from './metrics-section.js';
import {
  BreakerStates,
  type BreakerSummary,
  buildSnapshot,
  type MetricsSnapshot,
  QueueDepths,
  type QueueSummary,
} from './snapshot.js';
import { COUNTER_NAMES, COUNTERS, CounterSlots, SlotCounter, SlotRing } from './window.js';
import { SlotLatency, WindowHistogram } from './window-histogram.js';

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
  /**
   * What sections counted, by instrument key (`<section>.<n>.<instrument name>`, `n` its
   * place among the section's instruments): counters and latencies' counts and sums.
   */
  readonly sectionCounters?: Readonly<Record<string, number>>;
  /** Sections' latency histograms by instrument key: counts by bucket, and the largest value. */
  readonly sectionLatencies?: Readonly<Record<string, RawHistogram>>;
}

/** @internal A latency histogram as plain data. */
export interface RawHistogram {
  /** Values counted by bucket index, empty buckets left out. */
  readonly buckets: Readonly<Record<number, number>>;
  /** The largest value, in milliseconds; `null` when none. */
  readonly maxMs: number | null;
}

/** The key of a section's `n`-th instrument: stable across processes running the same version. */
function instrumentKey(section: string, n: number, name: string): string {
  return `${section}.${n}.${name}`;
}

function histogramOf(h: WindowHistogram): RawHistogram {
  const buckets: Record<number, number> = {};
  h.forEachBucket((b, n) => {
    buckets[b] = n;
  });
  const max = h.maxMs();
  return { buckets, maxMs: max === -Infinity ? null : max };
}

/** Section instruments kept by a recorder: one slot each, read and cleared by `take()`. */
interface RecordedSection {
  readonly attached: AttachedSection<unknown>;
  readonly counters: [string, SlotCounter][];
  readonly latencies: [string, SlotLatency][];
}

function recordSection(section: MetricsSection): RecordedSection {
  const counters: [string, SlotCounter][] = [];
  const latencies: [string, SlotLatency][] = [];
  let n = 0;
  const window: MetricsWindow = {
    counter: (name) => {
      const c = new SlotCounter(1, () => 0);
      counters.push([instrumentKey(section.name, n++, name), c]);
      return c;
    },
    latency: (name) => {
      const l = new SlotLatency(1, () => 0);
      latencies.push([instrumentKey(section.name, n++, name), l]);
      return l;
    },
    perMinute: () => null,
  };
  return { attached: section.attach(window), counters, latencies };
}

/** A section attached to merged raw data: its instruments read the merged values. */
function loadSection(
  section: MetricsSection,
  raw: RawMetrics,
  coveredMs: number,
): AttachedSection<unknown> {
  const counters = raw.sectionCounters ?? {};
  const latencies = raw.sectionLatencies ?? {};
  let n = 0;
  const window: MetricsWindow = {
    counter: (name) => {
      const total = counters[instrumentKey(section.name, n++, name)] ?? 0;
      return { add: () => {}, total: () => total };
    },
    latency: (name) => {
      const key = instrumentKey(section.name, n++, name);
      const h = new WindowHistogram(1);
      const raw = latencies[key];
      for (const [b, count] of Object.entries(raw?.buckets ?? {})) {
        const bucket = Number(b);
        if (Number.isInteger(bucket)) h.recordBucket(0, bucket, count, raw?.maxMs ?? 0);
      }
      const count = counters[`${key}:count`] ?? 0;
      const sum = counters[`${key}:sum`] ?? 0;
      return { record: () => {}, summary: () => h.summary(count, sum) };
    },
    perMinute: (count) => (coveredMs > 0 ? (count / coveredMs) * 60_000 : null),
  };
  return section.attach(window);
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
  readonly #sections: readonly RecordedSection[];
  #empty = true;

  /** `sections` as `createMetrics` takes them (checked by the caller). */
  constructor(sections: readonly MetricsSection[] = []) {
    this.#sections = sections.map(recordSection);
  }

  /** Counts `event` at time `now` (milliseconds of the caller's clock). */
  record(event: AnyEvent, now: number): void {
    for (const s of this.#sections) s.attached.observe(event);
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
    if (this.#sections.length === 0) return raw;
    const sectionCounters: Record<string, number> = {};
    const sectionLatencies: Record<string, RawHistogram> = {};
    for (const s of this.#sections) {
      for (const [key, c] of s.counters) {
        if (c.total() !== 0) sectionCounters[key] = c.total();
        c.clearAll();
        c.resum();
      }
      for (const [key, l] of s.latencies) {
        const count = l.count.total();
        if (count === 0) continue;
        sectionCounters[`${key}:count`] = count;
        sectionCounters[`${key}:sum`] = l.sum.total();
        sectionLatencies[key] = histogramOf(l.histogram);
        for (const part of l.parts()) {
          part.clearAll();
          part.resum?.();
        }
      }
    }
    return { ...raw, sectionCounters, sectionLatencies };
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

/**
 * @internal The `createMetrics` snapshot of `raw`, as if it were the window's content, with
 * each of `sections`' part under its name.
 */
export function snapshotOfRaw(
  raw: RawMetrics,
  options: RawSnapshotOptions,
  sections: readonly MetricsSection[] = [],
): MetricsSnapshot {
  const w = load(raw);
  const core = buildSnapshot({
    ...options,
    counters: w.counters,
    latency: w.latency,
    queues: w.queues,
    breakers: w.breakers,
  });
  if (sections.length === 0) return core;
  const parts: Record<string, unknown> = { ...core };
  for (const section of sections) {
    parts[section.name] = loadSection(section, raw, options.coveredMs).snapshot();
  }
  return parts as unknown as MetricsSnapshot;
}

/**
 * @internal The `checkHealth()` report of `raw` against `thresholds` (over the defaults),
 * `sections`' checks included.
 */
export function healthOfRaw(
  raw: RawMetrics,
  thresholds: HealthThresholds | undefined,
  time: number,
  sections: readonly MetricsSection[] = [],
): HealthReport {
  const t = resolveThresholds(HEALTH_DEFAULTS, thresholds, 'thresholds');
  const w = load(raw);
  const attached = sections.map((s) => [s.name, loadSection(s, raw, 0)] as const);
  const breaches = evaluateHealth(w.counters, w.queues, w.breakers, attached, t);
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
  const sectionCounters: Record<string, number> = {};
  const sectionLatencies: Record<
    string,
    { buckets: Record<number, number>; maxMs: number | null }
  > = {};
  let max: number | null = null;
  for (const p of parts) {
    for (const [k, v] of Object.entries(p.sectionCounters ?? {})) {
      sectionCounters[k] = (sectionCounters[k] ?? 0) + v;
    }
    for (const [k, h] of Object.entries(p.sectionLatencies ?? {})) {
      const into = sectionLatencies[k] ?? { buckets: {}, maxMs: null };
      sectionLatencies[k] = into;
      for (const [b, n] of Object.entries(h.buckets)) {
        const bucket = Number(b);
        into.buckets[bucket] = (into.buckets[bucket] ?? 0) + n;
      }
      if (h.maxMs !== null && (into.maxMs === null || h.maxMs > into.maxMs)) into.maxMs = h.maxMs;
    }
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
  return {
    counters,
    latency,
    latencyMaxMs: max,
    queues,
    breakers,
    sectionCounters,
    sectionLatencies,
  };
}
