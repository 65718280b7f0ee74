import { bucketOf, HISTOGRAM_BUCKETS, quantileOf } from './histogram.js';
import type { LatencySummary, SectionLatency } from './metrics-section.js';
import { SlotCounter, type SlotPart } from './window.js';

const EMPTY: LatencySummary = Object.freeze({
  count: 0,
  meanMs: null,
  p50Ms: null,
  p95Ms: null,
  p99Ms: null,
  maxMs: null,
});

/** One latency histogram per slot plus their running sum. */
export class WindowHistogram implements SlotPart {
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
    const i = slot * HISTOGRAM_BUCKETS + b;
    this.#slots[i] = (this.#slots[i] ?? 0) + 1;
    this.#sum[b] = (this.#sum[b] ?? 0) + 1;
    if (ms > (this.#max[slot] ?? -Infinity)) this.#max[slot] = ms;
  }

  /**
   * Adds `count` values to bucket `bucket` of `slot` at once, the largest of them `maxMs`:
   * how a histogram merged from elsewhere (the raw form) is loaded.
   */
  recordBucket(slot: number, bucket: number, count: number, maxMs: number): void {
    if (!(count > 0) || !(bucket >= 0 && bucket < HISTOGRAM_BUCKETS)) return;
    const i = slot * HISTOGRAM_BUCKETS + bucket;
    this.#slots[i] = (this.#slots[i] ?? 0) + count;
    this.#sum[bucket] = (this.#sum[bucket] ?? 0) + count;
    if (maxMs > (this.#max[slot] ?? -Infinity)) this.#max[slot] = maxMs;
  }

  /** Calls `fn` with each bucket that holds values over the window, and its count. */
  forEachBucket(fn: (bucket: number, count: number) => void): void {
    for (let b = 0; b < HISTOGRAM_BUCKETS; b++) {
      const n = this.#sum[b] ?? 0;
      if (n > 0) fn(b, n);
    }
  }

  /** The largest value over the window, in milliseconds; `-Infinity` when empty. */
  maxMs(): number {
    let max = -Infinity;
    for (const m of this.#max) if (m > max) max = m;
    return max;
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
    if (count <= 0) return { ...EMPTY };
    const max = this.maxMs();
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

/** A section's latency: a windowed histogram with its count and sum. */
export class SlotLatency implements SectionLatency {
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

  /** What must be cleared as the window slides. */
  parts(): readonly SlotPart[] {
    return [this.histogram, this.count, this.sum];
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
