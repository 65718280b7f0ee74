import type { Job, Queue } from 'bullmq';
import type { Classification } from '../core/classify-types.js';
import { type Clock, systemClock } from '../core/clock.js';
import { type Sink, toDeadLetter } from '../core/dead-letter/dead-letter.js';
import type { NewDeadLetter } from '../core/dead-letter/dead-letter-types.js';
import { describe } from '../core/errors.js';
import { assertFunction, assertInteger, showValue } from '../core/validate.js';
import { historyOf, jobDeadLetterId, jobOrigin, payloadOf } from './processor.js';

/**
 * The `failedReason`s BullMQ gives a job it fails on its own, without running the processor
 * (so `wrapProcessor` never sees it): a job that stalled more than `maxStalledCount` times
 * (its worker died or blocked past `lockDuration`), and a job started more than the worker's
 * `maxStartedAttempts` times.
 */
export const BULLMQ_STALLED_REASONS: readonly string[] = Object.freeze([
  'job stalled more than allowable limit',
  'job started more than allowable limit',
]);

/** The defaults of {@link SweepStalledJobsOptions}. */
export const SWEEP_DEFAULTS = Object.freeze({
  /** Failed jobs read per page. */
  batchSize: 100,
});

/** Options of {@link sweepStalledJobs}. */
export interface SweepStalledJobsOptions<P> {
  /** Receives one dead letter per swept job: a `DeadLetterQueue`, or any sink with `add`. */
  readonly dlq: Sink<NewDeadLetter<P>>;
  /** Which `failedReason`s to sweep (compared exactly). @default BULLMQ_STALLED_REASONS */
  readonly reasons?: readonly string[];
  /**
   * The dead letter's id for a job. Keep it the same as `wrapProcessor`'s, so a job both of
   * them see is dead-lettered once.
   * @default `${job.queueName}:${job.id}`
   */
  readonly deadLetterId?: (job: Job) => string;
  /** Failed jobs read per page. @default 100 */
  readonly batchSize?: number;
  /** Dates the failure when the job has no `finishedOn`. @default systemClock */
  readonly clock?: Clock;
  /** Stops the sweep before the next job; it then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** What {@link sweepStalledJobs} did. */
export interface SweepReport {
  /**
   * Ids of the jobs this sweep dead-lettered and removed from BullMQ's failed set, oldest
   * first (a job another sweep removed first is not counted here).
   */
  readonly moved: readonly string[];
}

/** A stalled job: the lock ran out while it ran, which trying again can fix. */
const STALLED: Classification = Object.freeze({ retryable: true, reason: 'timeout' });

/**
 * Moves the jobs BullMQ failed as stalled (by default, see {@link BULLMQ_STALLED_REASONS})
 * from its failed set into a dead-letter queue. BullMQ fails such a job inside its own scripts
 * without calling the processor, so `wrapProcessor` never dead-letters it; run this sweep on
 * an interval (every minute, say) in one or more processes. The sweep can only find jobs that
 * BullMQ keeps: leave `removeOnFail` off, or let it keep failed jobs longer than the interval.
 *
 * Each job becomes one dead letter keyed by `deadLetterId` (`<queue>:<job id>`), carrying the
 * job's data as payload, the failures `wrapProcessor` kept on it, and the stall as the last
 * attempt (reason `timeout`, disposition `exhausted`). Only once `dlq.add` has resolved is
 * the job removed from BullMQ, so a crash between the two leaves the job for the next sweep,
 * whose `add` keeps the entry already there. Two sweeps at once, or one run twice, add one
 * entry per job. If `dlq.add` rejects, the sweep rejects with that error and the job stays.
 *
 * @example
 * const timer = setInterval(() => {
 *   sweepStalledJobs(queue, { dlq }).catch((error) => log.error({ err: error }, 'sweep failed'));
 * }, 60_000);
 */
export async function sweepStalledJobs<P = unknown>(
  queue: Queue,
  options: SweepStalledJobsOptions<P>,
): Promise<SweepReport> {
  if (typeof options?.dlq?.add !== 'function') {
    throw new TypeError(`dlq must have an add(entry) method, got ${describe(options?.dlq)}`);
  }
  const reasons = options.reasons ?? BULLMQ_STALLED_REASONS;
  if (!Array.isArray(reasons) || reasons.some((r) => typeof r !== 'string')) {
    throw new TypeError(`reasons must be an array of strings, got ${showValue(reasons)}`);
  }
  const batchSize = assertInteger(
    'batchSize',
    options.batchSize ?? SWEEP_DEFAULTS.batchSize,
    1,
    10_000,
  );
  if (options.deadLetterId !== undefined) assertFunction('deadLetterId', options.deadLetterId);
  const idOf = options.deadLetterId ?? jobDeadLetterId;
  const clock = options.clock ?? systemClock;
  const { signal } = options;
  const wanted = new Set(reasons);
  const moved: string[] = [];
  let offset = 0;
  for (;;) {
    signal?.throwIfAborted();
    const jobs = await queue.getJobs('failed', offset, offset + batchSize - 1, true);
    if (jobs.length === 0) break;
    let removed = 0;
    for (const job of jobs) {
      if (job === undefined || job.id === undefined || !wanted.has(job.failedReason)) continue;
      signal?.throwIfAborted();
      const at = job.finishedOn ?? clock.now();
      const error = new Error(job.failedReason);
      await options.dlq.add(
        toDeadLetter<P>(error, {
          payload: payloadOf<P>(job.data),
          id: idOf(job as Job),
          source: job.queueName,
          origin: jobOrigin(job as Job),
          history: historyOf(job.data),
          classify: () => STALLED,
          clock: { now: () => at },
        }),
      );
      if ((await queue.remove(job.id)) === 1) {
        removed++;
        moved.push(job.id);
      }
    }
    if (jobs.length < batchSize) break;
    offset += jobs.length - removed;
  }
  return { moved };
}
