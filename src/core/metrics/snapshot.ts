import { REASONS, type Reason } from '../classify-types.js';
import type { StopReason } from '../errors.js';
import type { CircuitState, IdempotencyHitEvent } from '../events.js';
import { failedCalls } from './health.js';
import type { LatencySummary } from './metrics-section.js';
import {
  ATTEMPTS_STARTED,
  BREAKER_CLOSED,
  BREAKER_OPENED,
  CALLS_STARTED,
  type CounterSlots,
  DEAD_LETTER_BY_REASON,
  DEAD_LETTERS,
  FAILURE_BY_REASON,
  FAILURES,
  FIRST_FAILED,
  FIRST_OK,
  GIVE_UP_BY_REASON,
  GIVE_UP_BY_STOP_REASON,
  GIVE_UPS,
  IDEMPOTENCY,
  IDEMPOTENCY_BY_STATUS,
  JOB_ATTEMPTS,
  JOB_DEFERRED,
  JOB_FAILURE_BY_REASON,
  JOB_FAILURES,
  JOB_FIRST_FAILED,
  JOB_FIRST_OK,
  JOB_GIVE_UP_BY_STOP_REASON,
  JOB_GIVE_UPS,
  JOB_RETRIES,
  JOB_RETRY_DELAY_SUM,
  JOB_SUCCEEDED,
  JOBS_STARTED,
  LATENCY_COUNT,
  LATENCY_SUM,
  LIMIT_REFUSED,
  LIMIT_WAIT_SUM,
  LIMIT_WAITS,
  RETRIES,
  RETRY_BY_REASON,
  RETRY_DELAY_SUM,
  STOP_REASONS,
  SUCCEEDED,
} from './window.js';
import type { WindowHistogram } from './window-histogram.js';

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
  /**
   * Queued jobs' attempts (`job_attempt_*` from BullMQ's `wrapProcessor`, `job_retry_scheduled`
   * from its backoff strategy): a level above calls, never counted in `calls`, `attempts`,
   * `retries`, `giveUps` or `ratios`.
   */
  readonly jobs: JobsSnapshot;
  /** Circuit breakers, from their `breaker_transition` events. */
  readonly breakers: {
    /** Circuits that opened in the window (half-open probes failing included). */
    readonly opened: number;
    /** Circuits that closed again in the window. */
    readonly closed: number;
    /** Circuits not closed now, by key: their state and since when (the metrics clock). */
    readonly notClosed: Readonly<Record<string, BreakerSummary>>;
  };
}

/** The job level of {@link MetricsSnapshot}: attempts of queued jobs. */
export interface JobsSnapshot {
  /** Jobs whose first run started. */
  readonly started: number;
  /** Job runs started: first ones, retries and runs after a deferral. */
  readonly attempts: number;
  /** Job runs that succeeded (each one a job done). */
  readonly succeeded: number;
  /** Jobs done on their first run. */
  readonly firstAttemptSucceeded: number;
  /** Job runs that failed, spending an attempt or stopping the job (deferrals left out). */
  readonly failed: number;
  /** Failed job attempts by classification reason (reasons with none are left out). */
  readonly failedByReason: Readonly<Partial<Record<Reason, number>>>;
  /**
   * Job runs moved back to the delayed set without spending an attempt (a throttle, a
   * limiter's refusal, or the processor's own move).
   */
  readonly deferred: number;
  readonly retries: {
    /** Re-runs the queue's backoff strategy scheduled, deferrals included. */
    readonly scheduled: number;
    /** Mean delay before a re-run, in milliseconds. */
    readonly meanDelayMs: number | null;
  };
  /** Jobs that stopped for good and went to the dead-letter queue. */
  readonly gaveUp: number;
  /** Those jobs by why they stopped. */
  readonly gaveUpByStopReason: Readonly<Partial<Record<StopReason, number>>>;
  /** Shares between 0 and 1; `null` when there is nothing to divide by. */
  readonly ratios: {
    /** Jobs done on their first run ÷ first runs that finished (deferred ones included). */
    readonly firstAttemptSuccess: number | null;
    /** Re-runs scheduled ÷ (first attempts + re-runs scheduled). */
    readonly retry: number | null;
    /** Jobs that gave up ÷ jobs that finished (succeeded or gave up). */
    readonly error: number | null;
  };
}

/** A circuit that is not closed, as `snapshot().breakers.notClosed` shows it. */
export interface BreakerSummary {
  readonly state: Exclude<CircuitState, 'closed'>;
  /** When it left `closed`, in milliseconds of the metrics clock. */
  readonly since: number;
}

/** The most circuits {@link BreakerStates} follows; the least recently changed is forgotten first. */
const MAX_BREAKERS = 1_000;

/** Circuits that are not closed, by key, from `breaker_transition` events. */
export class BreakerStates {
  readonly #open = new Map<string, BreakerSummary>();

  transition(key: string, to: CircuitState, now: number): void {
    const was = this.#open.get(key);
    this.#open.delete(key);
    if (to === 'closed') return;
    if (this.#open.size >= MAX_BREAKERS) {
      const oldest = this.#open.keys().next();
      if (oldest.done !== true) this.#open.delete(oldest.value);
    }
    this.#open.set(key, { state: to, since: was?.since ?? now });
  }

  get size(): number {
    return this.#open.size;
  }

  keys(): string[] {
    return [...this.#open.keys()];
  }

  summaries(): Record<string, BreakerSummary> {
    return Object.fromEntries(this.#open);
  }
}

interface QueueState {
  readonly depth: number;
  readonly rising: number;
  readonly time: number;
}

/** The last depth of at most `max` queues; the least recently sampled is forgotten first. */
export class QueueDepths {
  readonly #queues = new Map<string, QueueState>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  sample(name: string, depth: number, now: number): void {
    if (!(depth >= 0)) return;
    const last = this.#queues.get(name);
    if (last !== undefined) this.#queues.delete(name);
    else if (this.#queues.size >= this.#max) this.#forgetOldest();
    const rising = last !== undefined && depth > last.depth ? last.rising + 1 : 0;
    this.#queues.set(name, { depth, rising, time: now });
  }

  /** Sets a queue's last sample as summarised elsewhere (a merged raw form). */
  restore(name: string, q: QueueSummary): void {
    if (!(q.depth >= 0)) return;
    this.#queues.delete(name);
    if (this.#queues.size >= this.#max) this.#forgetOldest();
    this.#queues.set(name, { depth: q.depth, rising: q.risingSamples, time: q.sampledAt });
  }

  entries(): IterableIterator<[string, QueueState]> {
    return this.#queues.entries();
  }

  summaries(): Record<string, QueueSummary> {
    const out: Record<string, QueueSummary> = {};
    for (const [name, q] of this.#queues) {
      out[name] = { depth: q.depth, risingSamples: q.rising, sampledAt: q.time };
    }
    return out;
  }

  #forgetOldest(): void {
    const oldest = this.#queues.keys().next();
    if (oldest.done !== true) this.#queues.delete(oldest.value);
  }
}

function ratio(part: number, whole: number): number | null {
  return whole > 0 ? part / whole : null;
}

/** What {@link buildSnapshot} reads. */
export interface SnapshotInputs {
  readonly time: number;
  readonly windowMs: number;
  readonly coveredMs: number;
  readonly counters: CounterSlots;
  readonly latency: WindowHistogram;
  readonly queues: QueueDepths;
  readonly breakers: BreakerStates;
}

/** The core part of a snapshot, from the window's counters. */
export function buildSnapshot(w: SnapshotInputs): MetricsSnapshot {
  const c = w.counters;
  const a = (i: number): number => c.get(i);
  const perMinute = (n: number): number | null =>
    w.coveredMs > 0 ? (n / w.coveredMs) * 60_000 : null;
  const failed = failedCalls(c);
  return {
    time: w.time,
    windowMs: w.windowMs,
    coveredMs: w.coveredMs,
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
      failedByReason: c.nonZero(REASONS, FAILURE_BY_REASON),
    },
    retries: {
      scheduled: a(RETRIES),
      byReason: c.nonZero(REASONS, RETRY_BY_REASON),
      meanDelayMs: ratio(a(RETRY_DELAY_SUM), a(RETRIES)),
    },
    giveUps: {
      total: a(GIVE_UPS),
      byReason: c.nonZero(REASONS, GIVE_UP_BY_REASON),
      byStopReason: c.nonZero(STOP_REASONS, GIVE_UP_BY_STOP_REASON),
    },
    ratios: {
      firstAttemptSuccess: ratio(a(FIRST_OK), a(FIRST_OK) + a(FIRST_FAILED)),
      retry: ratio(a(RETRIES), a(CALLS_STARTED) + a(RETRIES)),
      error: ratio(failed, a(SUCCEEDED) + failed),
    },
    latency: w.latency.summary(a(LATENCY_COUNT), a(LATENCY_SUM)),
    rateLimit: {
      waits: a(LIMIT_WAITS),
      refused: a(LIMIT_REFUSED),
      meanWaitMs: ratio(a(LIMIT_WAIT_SUM), a(LIMIT_WAITS)),
    },
    idempotency: {
      hits: IDEMPOTENCY.reduce((n, _, i) => n + a(IDEMPOTENCY_BY_STATUS + i), 0),
      byStatus: c.nonZero(IDEMPOTENCY, IDEMPOTENCY_BY_STATUS),
    },
    deadLetters: {
      total: a(DEAD_LETTERS),
      byReason: c.nonZero(REASONS, DEAD_LETTER_BY_REASON),
    },
    queues: w.queues.summaries(),
    jobs: {
      started: a(JOBS_STARTED),
      attempts: a(JOB_ATTEMPTS),
      succeeded: a(JOB_SUCCEEDED),
      firstAttemptSucceeded: a(JOB_FIRST_OK),
      failed: a(JOB_FAILURES),
      failedByReason: c.nonZero(REASONS, JOB_FAILURE_BY_REASON),
      deferred: a(JOB_DEFERRED),
      retries: {
        scheduled: a(JOB_RETRIES),
        meanDelayMs: ratio(a(JOB_RETRY_DELAY_SUM), a(JOB_RETRIES)),
      },
      gaveUp: a(JOB_GIVE_UPS),
      gaveUpByStopReason: c.nonZero(STOP_REASONS, JOB_GIVE_UP_BY_STOP_REASON),
      ratios: {
        firstAttemptSuccess: ratio(a(JOB_FIRST_OK), a(JOB_FIRST_OK) + a(JOB_FIRST_FAILED)),
        retry: ratio(a(JOB_RETRIES), a(JOBS_STARTED) + a(JOB_RETRIES)),
        error: ratio(a(JOB_GIVE_UPS), a(JOB_SUCCEEDED) + a(JOB_GIVE_UPS)),
      },
    },
    breakers: {
      opened: a(BREAKER_OPENED),
      closed: a(BREAKER_CLOSED),
      notClosed: w.breakers.summaries(),
    },
  };
}
