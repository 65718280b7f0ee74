import { REASONS } from '../classify-types.js';
import type { StopReason } from '../errors.js';
import type { IdempotencyHitEvent } from '../events.js';
import type { SectionCounter } from './metrics-section.js';

/** Why retrying stopped, in the order of their counters. */
export const STOP_REASONS: readonly StopReason[] = [
  'permanent',
  'max_attempts',
  'max_elapsed',
  'retry_after_exceeds_elapsed',
  'budget_exhausted',
  'aborted',
  'max_deferrals',
  'circuit_open',
  'held',
];

/** Idempotency hit statuses, in the order of their counters. */
export const IDEMPOTENCY: readonly IdempotencyHitEvent['status'][] = [
  'completed',
  'in_progress',
  'duplicate',
];

const R = REASONS.length;
const REASON_INDEX = new Map<string, number>(REASONS.map((r, i) => [r, i]));
const UNKNOWN = R - 1;

/** Offset of `reason` among the per-reason counters; unknown reasons count as the last. */
export function reasonIndex(reason: string): number {
  return REASON_INDEX.get(reason) ?? UNKNOWN;
}

// Counter layout of one window slot: numbered slots in one typed array keep each event
// O(1) and allocation-free (measured by bench/metrics.ts).
export const CALLS_STARTED = 0;
export const ATTEMPTS_STARTED = 1;
export const SUCCEEDED = 2;
export const FIRST_OK = 3;
export const FIRST_FAILED = 4;
export const FAILURES = 5;
export const RETRIES = 6;
export const RETRY_DELAY_SUM = 7;
export const GIVE_UPS = 8;
export const LATENCY_SUM = 9;
export const LATENCY_COUNT = 10;
export const LIMIT_WAITS = 11;
export const LIMIT_REFUSED = 12;
export const LIMIT_WAIT_SUM = 13;
export const DEAD_LETTERS = 14;
export const FAILURE_BY_REASON = 15;
export const RETRY_BY_REASON = FAILURE_BY_REASON + R;
export const GIVE_UP_BY_REASON = RETRY_BY_REASON + R;
export const DEAD_LETTER_BY_REASON = GIVE_UP_BY_REASON + R;
export const GIVE_UP_BY_STOP_REASON = DEAD_LETTER_BY_REASON + R;
export const IDEMPOTENCY_BY_STATUS = GIVE_UP_BY_STOP_REASON + STOP_REASONS.length;
// The job level (BullMQ's `wrapProcessor` and backoff strategy), kept apart from calls.
export const JOB_ATTEMPTS = IDEMPOTENCY_BY_STATUS + IDEMPOTENCY.length;
export const JOBS_STARTED = JOB_ATTEMPTS + 1;
export const JOB_SUCCEEDED = JOB_ATTEMPTS + 2;
export const JOB_FIRST_OK = JOB_ATTEMPTS + 3;
export const JOB_FIRST_FAILED = JOB_ATTEMPTS + 4;
export const JOB_FAILURES = JOB_ATTEMPTS + 5;
export const JOB_RETRIES = JOB_ATTEMPTS + 6;
export const JOB_RETRY_DELAY_SUM = JOB_ATTEMPTS + 7;
export const JOB_GIVE_UPS = JOB_ATTEMPTS + 8;
export const JOB_DEFERRED = JOB_ATTEMPTS + 9;
export const JOB_FAILURE_BY_REASON = JOB_ATTEMPTS + 10;
export const JOB_GIVE_UP_BY_STOP_REASON = JOB_FAILURE_BY_REASON + R;
export const BREAKER_OPENED = JOB_GIVE_UP_BY_STOP_REASON + STOP_REASONS.length;
export const BREAKER_CLOSED = BREAKER_OPENED + 1;
/** Number of core counters in one slot. */
export const COUNTERS = BREAKER_CLOSED + 1;

/**
 * A stable name for each core counter, by its number: the mergeable raw form
 * (`raw.ts`) names counters this way, so that a fleet whose processes run different versions
 * of the layout still adds up the same counter. Names ending in `_sum` hold sums of
 * milliseconds; the others hold counts.
 */
export const COUNTER_NAMES: readonly string[] = (() => {
  const names = new Array<string>(COUNTERS);
  const plain = [
    'calls_started',
    'attempts_started',
    'succeeded',
    'first_ok',
    'first_failed',
    'failures',
    'retries',
    'retry_delay_sum',
    'give_ups',
    'latency_sum',
    'latency_count',
    'limit_waits',
    'limit_refused',
    'limit_wait_sum',
    'dead_letters',
  ];
  plain.forEach((name, i) => {
    names[i] = name;
  });
  REASONS.forEach((r, i) => {
    names[FAILURE_BY_REASON + i] = `failure:${r}`;
    names[RETRY_BY_REASON + i] = `retry:${r}`;
    names[GIVE_UP_BY_REASON + i] = `give_up:${r}`;
    names[DEAD_LETTER_BY_REASON + i] = `dead_letter:${r}`;
    names[JOB_FAILURE_BY_REASON + i] = `job_failure:${r}`;
  });
  STOP_REASONS.forEach((r, i) => {
    names[GIVE_UP_BY_STOP_REASON + i] = `give_up_stop:${r}`;
    names[JOB_GIVE_UP_BY_STOP_REASON + i] = `job_give_up_stop:${r}`;
  });
  IDEMPOTENCY.forEach((status, i) => {
    names[IDEMPOTENCY_BY_STATUS + i] = `idempotency:${status}`;
  });
  const jobs = [
    'job_attempts',
    'jobs_started',
    'job_succeeded',
    'job_first_ok',
    'job_first_failed',
    'job_failures',
    'job_retries',
    'job_retry_delay_sum',
    'job_give_ups',
    'job_deferred',
  ];
  jobs.forEach((name, i) => {
    names[JOB_ATTEMPTS + i] = name;
  });
  names[BREAKER_OPENED] = 'breaker_opened';
  names[BREAKER_CLOSED] = 'breaker_closed';
  return Object.freeze(names);
})();

/** Something kept per slot of the window, cleared as the window slides past the slot. */
export interface SlotPart {
  clear(slot: number): void;
  clearAll(): void;
  /** Called after the slots were cleared, to bring running totals up to date. */
  resum?(): void;
}

/** The ring of slots: which slot is current and how far the window has slid. */
export class SlotRing {
  readonly slots: number;
  readonly slotMs: number;
  readonly createdAt: number;
  /** The current slot, counted from time 0. */
  current: number;
  /** The current slot's index in the ring. */
  slot = 0;

  constructor(windowMs: number, slots: number, now: number) {
    this.slots = slots;
    this.slotMs = windowMs / slots;
    this.createdAt = now;
    this.current = Math.floor(now / this.slotMs);
    this.#select(this.current);
  }

  /** Moves to the slot of `now`, clearing the slots passed over in `parts`; `true` if it moved. */
  slide(now: number, parts: readonly SlotPart[]): boolean {
    const target = Math.floor(now / this.slotMs);
    if (!(target > this.current)) return false;
    const steps = target - this.current;
    if (steps >= this.slots) {
      for (const p of parts) p.clearAll();
    } else {
      for (let i = 1; i <= steps; i++) {
        const s = this.#indexOf(this.current + i);
        for (const p of parts) p.clear(s);
      }
    }
    for (const p of parts) p.resum?.();
    this.#select(target);
    return true;
  }

  /** Milliseconds the window's counts cover at `now`. */
  coveredMs(now: number): number {
    const inCurrent = now - this.current * this.slotMs;
    return Math.max(0, Math.min(now - this.createdAt, (this.slots - 1) * this.slotMs + inCurrent));
  }

  #indexOf(absolute: number): number {
    return ((absolute % this.slots) + this.slots) % this.slots;
  }

  #select(absolute: number): void {
    this.current = absolute;
    this.slot = this.#indexOf(absolute);
  }
}

/** The core counters of every slot, plus their sum over the window. */
export class CounterSlots implements SlotPart {
  readonly #counts: Float64Array;
  readonly #sum = new Float64Array(COUNTERS);
  readonly #slots: number;

  constructor(slots: number) {
    this.#slots = slots;
    this.#counts = new Float64Array(slots * COUNTERS);
  }

  add(slot: number, counter: number, value = 1): void {
    const i = slot * COUNTERS + counter;
    this.#counts[i] = (this.#counts[i] ?? 0) + value;
    this.#sum[counter] = (this.#sum[counter] ?? 0) + value;
  }

  /** The counter's sum over the window. */
  get(counter: number): number {
    return this.#sum[counter] ?? 0;
  }

  /** Counters `from`..`from + keys.length` by key, those at zero left out. */
  nonZero<K extends string>(keys: readonly K[], from: number): Partial<Record<K, number>> {
    const out: Partial<Record<K, number>> = {};
    for (let i = 0; i < keys.length; i++) {
      const n = this.#sum[from + i] ?? 0;
      if (n > 0) out[keys[i] as K] = n;
    }
    return out;
  }

  clear(slot: number): void {
    this.#counts.fill(0, slot * COUNTERS, (slot + 1) * COUNTERS);
  }

  clearAll(): void {
    this.#counts.fill(0);
  }

  /** Sums the slots again (rather than subtracting), which keeps float sums free of drift. */
  resum(): void {
    this.#sum.fill(0);
    for (let s = 0; s < this.#slots; s++) {
      for (let c = 0; c < COUNTERS; c++) {
        this.#sum[c] = (this.#sum[c] ?? 0) + (this.#counts[s * COUNTERS + c] ?? 0);
      }
    }
  }
}

/** A section's counter: one value per slot plus their sum. */
export class SlotCounter implements SectionCounter, SlotPart {
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

  clearAll(): void {
    this.#slots.fill(0);
  }

  /** Sums the slots again (rather than subtracting), which keeps float sums free of drift. */
  resum(): void {
    let t = 0;
    for (const v of this.#slots) t += v;
    this.#total = t;
  }
}
