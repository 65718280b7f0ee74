import type { AnyEvent } from '../events.js';

/** A latency distribution over the window, in milliseconds; `null` when nothing was measured. */
export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number | null;
  /** Percentiles from a log-linear histogram: within 1.6 % (or 1 ms below 64 ms). */
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
}

/** How an exporter names and labels a section's counter or latency. */
export interface InstrumentOptions {
  /** One sentence for exporters' help text. */
  readonly description: string;
  /** UCUM unit of a counter, e.g. `'{message}'` (latencies are always seconds when exported). */
  readonly unit?: string;
  /**
   * Fixed attributes of every measurement; two counters of one name with different attributes
   * are one exported instrument (e.g. one counter per status).
   */
  readonly attributes?: Readonly<Record<string, string>>;
}

/** A count a section keeps; `event` lets an exporter copy the event's opted-in attributes. */
export interface SectionCounter {
  add(n?: number, event?: AnyEvent): void;
  /** The count over the host's window (`createMetrics`) or since creation (an exporter). */
  total(): number;
}

/** A latency distribution a section keeps, in milliseconds. */
export interface SectionLatency {
  record(ms: number, event?: AnyEvent): void;
  /**
   * Over the host's window. A host without histograms (an exporter, whose own backend keeps
   * them) gives count, mean and max only, percentiles `null`.
   */
  summary(): LatencySummary;
}

/**
 * What a host gives a {@link MetricsSection}: counters and latencies that it windows (for
 * `createMetrics`) or exports (for `createOtelListener` of `retrykit/otel`).
 */
export interface MetricsWindow {
  /** A new counter. `name` is the exported instrument name after the host's prefix. */
  counter(name: string, options: InstrumentOptions): SectionCounter;
  /** A new latency distribution, in milliseconds (exported in seconds). */
  latency(name: string, options: InstrumentOptions): SectionLatency;
  /** `count` per minute over the time the window covers; `null` before any time has passed. */
  perMinute(count: number): number | null;
}

/** A threshold a section's window is over (as in `HealthBreach`; `check` without the prefix). */
export interface SectionBreach {
  readonly check: string;
  readonly value: number;
  readonly threshold: number;
  readonly samples: number;
}

/** One host's instance of a section, made by {@link MetricsSection.attach}. */
export interface AttachedSection<S> {
  /** Called with every event the host receives, core events and others alike. */
  observe(event: AnyEvent): void;
  /** The section's part of `snapshot()`. */
  snapshot(): S;
  /**
   * Thresholds the window is over. Rates and means are only judged over at least `minSamples`
   * samples (the host's `thresholds.minSamples`).
   */
  health?(minSamples: number): readonly SectionBreach[];
}

/**
 * A named part of the metrics that a layer above core adds: it follows the events it knows,
 * adds `snapshot()[name]` and checks named `` `${name}.${check}` `` to `checkHealth()` and
 * `onAlert`. `retrykit/whatsapp`'s `whatsappDeliveryMetrics()` is one.
 *
 * @example
 * const metrics = createMetrics({ sections: [whatsappDeliveryMetrics()] });
 * metrics.snapshot().messages.deliveryRate;
 */
export interface MetricsSection<S = unknown, N extends string = string> {
  /** Key of the section in `snapshot()`; not a core key, no `.`. */
  readonly name: N;
  /** Called once per host (each `createMetrics` handle, each OTel listener). */
  attach(window: MetricsWindow): AttachedSection<S>;
}

/** The snapshot parts a list of sections adds, by name. */
export type SectionSnapshots<L extends readonly MetricsSection[]> = {
  readonly [X in L[number] as X['name']]: X extends MetricsSection<infer S> ? S : never;
};
