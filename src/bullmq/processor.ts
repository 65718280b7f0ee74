import { type Job, type Processor, UnrecoverableError } from 'bullmq';
import type { Classification } from '../core/classify-types.js';
import { type Clock, systemClock } from '../core/clock.js';
import { type Sink, toDeadLetter } from '../core/dead-letter/dead-letter.js';
import type {
  DeadLetterAttempt,
  DeadLetterOrigin,
  NewDeadLetter,
} from '../core/dead-letter/dead-letter-types.js';
import { attemptOf } from '../core/dead-letter/failure.js';
import { expectAttempts } from '../core/dead-letter/retry-record.js';
import { describe, type StopReason } from '../core/errors.js';
import { type EventListener, emit, type JobAttemptFailureEvent } from '../core/events.js';
import { isRecord } from '../core/loose.js';
import type { RateLimiter } from '../core/rate-limit/rate-limit-types.js';
import { classify as defaultClassify } from '../core/retry/classify.js';
import { assertFunction, assertInteger, showValue } from '../core/validate.js';
import {
  createBackoffStrategy,
  deferralPlannerOf,
  planRetry,
  RETRYKIT_BACKOFF,
  type RetrykitBackoffStrategy,
} from './backoff.js';
import {
  acquireOrRefuse,
  deferralsOf,
  deferThrottled,
  holdOf,
  isBullMqMove,
  type LimiterRefusal,
  throttleOf,
} from './defer.js';
import { singleAttemptWarner } from './job-options.js';

/**
 * The field of `job.data` where {@link wrapProcessor} keeps the failures of earlier attempts
 * (when `job.data` is an object), so that a dead letter carries the whole history even when
 * each attempt ran on a different worker. It is left out of the dead letter's payload.
 */
export const HISTORY_FIELD = '_retrykitFailures';

/** @internal The default dead-letter id of a job: `<queue name>:<job id>`. */
export function jobDeadLetterId(job: Job): string {
  return `${job.queueName}:${job.id}`;
}

/**
 * @internal Where a job's dead letter came from: its queue, id and name (what
 * `queue.add(name, data)` takes to re-add it).
 */
export function jobOrigin(job: Job): DeadLetterOrigin {
  return {
    kind: 'bullmq',
    queue: job.queueName,
    jobId: String(job.id ?? ''),
    ...(typeof job.name === 'string' && job.name !== '' ? { jobName: job.name } : {}),
  };
}

/** Options of {@link wrapProcessor}. */
export interface WrapProcessorOptions<P> {
  /** Receives every job that fails for good: a `DeadLetterQueue`, or any sink with `add`. */
  readonly dlq: Sink<NewDeadLetter<P>>;
  /** Decides whether an error is worth retrying. Use the same one as `createBackoffStrategy`. @default classify */
  readonly classify?: (error: unknown) => Classification;
  /**
   * Attempts before a job is dead-lettered, counting the first. The job's own `attempts`
   * option still caps it (BullMQ never runs more), and a classification's `maxAttempts`
   * may lower it.
   * @default the job's `attempts` option
   */
  readonly maxAttempts?: number;
  /**
   * The dead letter's id for a job. A stable id makes a second dead-lettering of the same
   * job (a worker that crashed right after the first) harmless.
   * @default `${job.queueName}:${job.id}`
   */
  readonly deadLetterId?: (job: Job) => string;
  /**
   * The worker's `backoffStrategy`, when made by `createBackoffStrategy`. A transient failure
   * of a job using it (`backoff: RETRYKIT_BACKOFF`) is dead-lettered at once when the strategy
   * would not retry it within its `maxElapsedMs` (a server asking to wait past it, or a backoff
   * ending past it); otherwise the strategy schedules the delay decided here.
   */
  readonly strategy?: RetrykitBackoffStrategy;
  /**
   * Moves a job that fails with a throttle (a retryable `rate_limited` failure, such as
   * WhatsApp's 130429 or 131056, or any failure with a server's wait such as `Retry-After`)
   * back to BullMQ's delayed set without spending an attempt (`job.moveToDelayed` and
   * `DelayedError`), for the delay `strategy` gives it: the server's wait, else the backoff for
   * the failure's reason, growing with each deferral. Bounded by `strategy`'s `maxElapsedMs`
   * and `maxDeferrals`; past either, the job is dead-lettered (`give_up` says `max_elapsed`,
   * `retry_after_exceeds_elapsed` or `max_deferrals`). Each deferral is kept in the job's
   * history with its `deferredMs`. `false`: a throttle spends an attempt like any failure.
   * A limiter's `RateLimitTimeoutError` or a `BulkheadRejectedError` thrown by the job counts
   * as a throttle here (for the limiter's `retryAfterMs`).
   *
   * Holds are deferred whatever this says: a failure that is not the message's (`shouldHold`:
   * a `HeldError` or a `CircuitOpenError`, or one classified not retryable with
   * `scope: 'account'`, such as WhatsApp's 190) moves the job back to delayed without spending
   * an attempt, for the error's `retryAfterMs` (an open circuit's time until a probe), at
   * least the backoff for its reason (growing per hold, at most 5 minutes), so it is sent once
   * the circuit closes. Holds are bounded by `maxElapsedMs` only, not `maxDeferrals`; past it
   * the job is dead-lettered (`max_elapsed` or `retry_after_exceeds_elapsed`). Each hold is
   * kept in the history with `held: true`.
   * @default true
   */
  readonly deferThrottles?: boolean;
  /**
   * A per-key limiter (e.g. a token bucket per phone number) the job takes one token from
   * before the processor runs. When it has none, the job is deferred as a throttle for the
   * limiter's `retryAfterMs` (see `deferThrottles`) instead of holding the worker while the
   * bucket refills: other keys' jobs run meanwhile. Needs `limiterKey`.
   */
  readonly limiter?: RateLimiter;
  /**
   * The `limiter` key of a job.
   * @example
   * (job) => job.data.phoneNumberId
   */
  readonly limiterKey?: (job: Job) => string;
  /**
   * Receives the job level, a level above the calls a `retry` inside the processor reports:
   * `job_attempt_start`, then `job_attempt_success` or `job_attempt_failure` (whose `next` says
   * `retry`, `defer` or `dead_letter`) for every run of the job, and, when `strategy` is not
   * given, `job_retry_scheduled` for each deferral (`strategy`'s own listener gets it otherwise).
   */
  readonly onEvent?: EventListener;
  /** Dates failures. @default systemClock */
  readonly clock?: Clock;
  /**
   * Receives, once per wrapped processor, a warning when a retryable failure meets a job
   * allowed a single attempt (`job.opts.attempts` 0 or 1: BullMQ's default is 0), which is
   * dead-lettered as `exhausted` on that first failure. Add jobs with `RETRYKIT_JOB_OPTIONS`
   * to retry them. The warning is an `Error` named `RetrykitWarning` with `code`
   * `'RETRYKIT_SINGLE_ATTEMPT'`.
   * Pass `() => {}` where one-attempt jobs are deliberate.
   * @default process.emitWarning where it exists (Node, Bun), else console.warn
   * @example
   * { onWarning: (warning) => log.warn({ code: warning.code }, warning.message) }
   */
  readonly onWarning?: (warning: Error & { readonly code: string }) => void;
}

/** Whether BullMQ hands the job's failures to the retrykit strategy (`backoff: RETRYKIT_BACKOFF`). */
function usesRetrykit(job: Job): boolean {
  const { backoff } = job.opts;
  return typeof backoff === 'object' && backoff !== null && backoff.type === RETRYKIT_BACKOFF.type;
}

/** @internal The failures `wrapProcessor` kept on a job's data, oldest first. */
export function historyOf(data: unknown): DeadLetterAttempt[] {
  if (!isRecord(data) || data[HISTORY_FIELD] === undefined) return [];
  try {
    return expectAttempts(HISTORY_FIELD, data[HISTORY_FIELD]);
  } catch {
    return [];
  }
}

/** @internal A job's data without the failures kept on it. */
export function payloadOf<P>(data: unknown): P {
  if (!isRecord(data) || !(HISTORY_FIELD in data)) return data as P;
  const { [HISTORY_FIELD]: _history, ...payload } = data;
  return payload as P;
}

/**
 * Wraps a BullMQ processor so that jobs that fail for good land in a dead-letter queue:
 * - a permanent failure (a 400 schema mismatch, a validation error, anything `classify` calls
 *   not retryable) is dead-lettered at once and rethrown as BullMQ's `UnrecoverableError`, so
 *   BullMQ never retries it;
 * - a transient failure is recorded on the job (`job.data[HISTORY_FIELD]`) and rethrown, for
 *   BullMQ to retry after the delay of `createBackoffStrategy`;
 * - the last allowed attempt's failure is dead-lettered with every attempt's error.
 * If the dead-letter queue can't take the entry, that error fails the job instead, which
 * stays in BullMQ's failed set: nothing is dropped.
 *
 * @example
 * const worker = new Worker(
 *   'webhooks',
 *   wrapProcessor(async (job) => handleWebhook(job.data), { dlq, maxAttempts: 6 }),
 *   { connection, settings: { backoffStrategy: createBackoffStrategy() } },
 * );
 */
export function wrapProcessor<T = unknown, R = unknown, N extends string = string>(
  processor: Processor<T, R, N>,
  options: WrapProcessorOptions<T>,
): Processor<T, R, N> {
  assertFunction('processor', processor);
  if (typeof options?.dlq?.add !== 'function') {
    throw new TypeError(`dlq must have an add(entry) method, got ${describe(options?.dlq)}`);
  }
  const maxAttempts =
    options.maxAttempts === undefined
      ? undefined
      : assertInteger('maxAttempts', options.maxAttempts, 1);
  for (const name of [
    'classify',
    'deadLetterId',
    'onEvent',
    'strategy',
    'onWarning',
    'limiterKey',
  ] as const) {
    if (options[name] !== undefined) assertFunction(name, options[name]);
  }
  const deferThrottles = options.deferThrottles ?? true;
  if (typeof deferThrottles !== 'boolean') {
    throw new TypeError(`deferThrottles must be a boolean, got ${showValue(deferThrottles)}`);
  }
  const { limiter, limiterKey } = options;
  if (limiter !== undefined && typeof limiter?.tryAcquire !== 'function') {
    throw new TypeError(`limiter must have a tryAcquire(key) method, got ${describe(limiter)}`);
  }
  if ((limiter === undefined) !== (limiterKey === undefined)) {
    throw new TypeError('limiter and limiterKey must be given together');
  }
  const classify = options.classify ?? defaultClassify;
  const clock = options.clock ?? systemClock;
  const idOf = options.deadLetterId ?? jobDeadLetterId;
  const warnSingleAttempt = singleAttemptWarner(options.onWarning);
  const planner =
    (options.strategy === undefined ? undefined : deferralPlannerOf(options.strategy)) ??
    deferralPlannerOf(
      createBackoffStrategy({
        classify,
        clock,
        ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
      }),
    );

  return async (job, token, signal) => {
    const started = clock.now();
    const scope = {
      queue: job.queueName,
      jobId: String(job.id),
      attempt: job.attemptsMade,
      deferrals: deferralsOf(historyOf(job.data)),
    };
    emit(options.onEvent, { type: 'job_attempt_start', time: started, ...scope });
    let refusal: LimiterRefusal | undefined;
    let result: R;
    try {
      if (limiter !== undefined && limiterKey !== undefined) {
        refusal = await acquireOrRefuse(limiter, limiterKey(job as Job));
        if (refusal !== undefined) throw refusal.error;
      }
      result = await processor(job, token, signal);
    } catch (error) {
      const now = clock.now();
      const classified = refusal?.classification ?? classify(error);
      // Not the message's fault (an open circuit, an expired token): held, never dead-lettered.
      const held = refusal === undefined ? holdOf(error, classified) : undefined;
      const c = held ?? classified;
      const attempt = job.attemptsMade;
      const jobAttempts = job.opts.attempts ?? 1;
      const attempts = attempt + 1;
      const report = (next: JobAttemptFailureEvent['next'], stopReason?: StopReason): void => {
        emit(options.onEvent, {
          type: 'job_attempt_failure',
          time: now,
          ...scope,
          durationMs: now - started,
          error,
          classification: c,
          next,
          ...(stopReason === undefined ? {} : { stopReason }),
          elapsedMs: now - job.timestamp,
        });
      };
      /** Reports `moved` (the job moved, or the error BullMQ gets instead) and rethrows it. */
      const handOver = (moved: unknown, stopReason: StopReason): never => {
        if (isBullMqMove(moved)) report('defer');
        else if (attempts < jobAttempts) report('retry');
        else report('dead_letter', stopReason);
        throw moved;
      };
      if (isBullMqMove(error)) {
        // The processor moved the job itself (or paused the queue): not a failure.
        report('defer');
        throw error;
      }
      let limit = Math.min(jobAttempts, maxAttempts ?? jobAttempts);
      if (c.maxAttempts !== undefined) limit = Math.min(limit, c.maxAttempts);
      const permanent = !c.retryable || error instanceof UnrecoverableError;
      const history = historyOf(job.data);
      let stop: StopReason = permanent ? 'permanent' : 'max_attempts';
      const throttle =
        held ?? refusal?.classification ?? (deferThrottles ? throttleOf(error, c) : undefined);
      if (!permanent && planner !== undefined && throttle !== undefined) {
        const deferral = {
          job: job as Job,
          token,
          error,
          classification: throttle,
          history,
          now,
          held: held !== undefined,
        };
        try {
          stop = (await deferThrottled(deferral, planner, HISTORY_FIELD)) ?? stop;
        } catch (moved) {
          handOver(moved, stop);
        }
      }
      // Past a deferral, which spends no attempt: this failure is the one BullMQ counts.
      if (!permanent) warnSingleAttempt(job, c);
      if (
        !permanent &&
        stop === 'max_attempts' &&
        attempts < limit &&
        options.strategy !== undefined &&
        usesRetrykit(job)
      ) {
        const plan = planRetry(options.strategy, attempts, error, job);
        if (plan === 'max_elapsed' || plan === 'retry_after_exceeds_elapsed') stop = plan;
      }
      if (!permanent && attempts < limit && stop === 'max_attempts') {
        report('retry');
        if (isRecord(job.data)) {
          const failure = attemptOf(error, c, new Date(now).toISOString());
          await job.updateData({ ...job.data, [HISTORY_FIELD]: [...history, failure] } as T);
        }
        throw error;
      }
      try {
        await options.dlq.add(
          toDeadLetter<T>(error, {
            payload: payloadOf<T>(job.data),
            id: idOf(job as Job),
            source: job.queueName,
            origin: jobOrigin(job as Job),
            history,
            classify: () => (permanent ? { ...c, retryable: false } : c),
            clock,
          }),
        );
      } catch (dlqError) {
        // BullMQ gets the queue's error instead: it runs the job again while it has attempts.
        handOver(dlqError, stop);
      }
      report('dead_letter', stop);
      if (!permanent && attempts >= jobAttempts) throw error;
      const unrecoverable = new UnrecoverableError(describe(error));
      (unrecoverable as { cause?: unknown }).cause = error;
      throw unrecoverable;
    }
    const now = clock.now();
    emit(options.onEvent, {
      type: 'job_attempt_success',
      time: now,
      ...scope,
      durationMs: now - started,
    });
    return result;
  };
}
