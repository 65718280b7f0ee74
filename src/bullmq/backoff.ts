import type { MinimalJob } from 'bullmq';
import type { Classification, Reason } from '../core/classify-types.js';
import { type Clock, type RandomSource, systemClock } from '../core/clock.js';
import { type EventListener, emit } from '../core/events.js';
import {
  type BackoffOptions,
  type DelayDecision,
  delayAfterFailure,
  resolveBackoffPolicy,
} from '../core/retry/backoff.js';
import { classify as defaultClassify } from '../core/retry/classify.js';
import { RETRY_DEFAULTS } from '../core/retry/retry.js';
import { assertFunction, assertInteger, assertNumber } from '../core/validate.js';

/**
 * The job option that sends a job's retries through the strategy of
 * {@link createBackoffStrategy}: BullMQ calls a worker's `settings.backoffStrategy` only for
 * jobs whose `backoff.type` is not one of its built-ins.
 *
 * `RETRYKIT_JOB_OPTIONS` holds it with 6 attempts.
 *
 * @example
 * await queue.add('webhook', payload, { attempts: 6, backoff: RETRYKIT_BACKOFF });
 */
export const RETRYKIT_BACKOFF = Object.freeze({ type: 'retrykit' });

/** The defaults of {@link BackoffStrategyOptions} that are not `retry`'s. */
export const BACKOFF_STRATEGY_DEFAULTS = Object.freeze({
  /** Deferrals of one job for throttles before it is dead-lettered. */
  maxDeferrals: 100,
  /**
   * Longest backoff between holds of one job whose failure gave no wait (an expired token
   * with no breaker), in milliseconds: 5 minutes, a circuit breaker's longest break by default.
   */
  maxHoldBackoffMs: 300_000,
});

/** Options of {@link createBackoffStrategy}. */
export interface BackoffStrategyOptions {
  /** Delays between attempts; each field has its own default. */
  readonly backoff?: BackoffOptions;
  /**
   * Backoff overrides per failure reason, merged over `backoff`.
   *
   * @example
   * { backoffByReason: { service_unavailable: { multiplier: 3 } } }
   */
  readonly backoffByReason?: Partial<Record<Reason, BackoffOptions>>;
  /**
   * The job's elapsed budget, in milliseconds since it was added (`job.timestamp`): no retry is
   * scheduled to start past it. A server asking for a longer wait (`Retry-After`) than what is
   * left, or a backoff ending past it, fails the job at once (-1) instead: with the strategy
   * given to `wrapProcessor`, the job is dead-lettered then (its `give_up` says
   * `retry_after_exceeds_elapsed` or `max_elapsed`).
   * @default 86_400_000 (24 hours, as `retry`)
   */
  readonly maxElapsedMs?: number;
  /**
   * Most times `wrapProcessor` may move one job back to delayed for a throttle (a
   * `rate_limited` failure, a failure with a server's wait, or a refusal of its `limiter`)
   * without spending an attempt. One more throttle dead-letters the job (`give_up` with
   * `max_deferrals`). Counted in the job's history, so only jobs whose data is an object are
   * capped by it; `maxElapsedMs` bounds every job. Holds (a failure that is not the message's:
   * an open circuit, an expired token) are not counted: an outage is measured in time, and
   * `maxElapsedMs` bounds them.
   * @default 100
   */
  readonly maxDeferrals?: number;
  /** Decides whether the job's error is worth retrying. Use the same one as `wrapProcessor`. @default classify */
  readonly classify?: (error: unknown) => Classification;
  /** Random source for jitter. @default Math.random */
  readonly random?: RandomSource;
  /**
   * Receives a `job_retry_scheduled` event for every delay returned and every deferral of a
   * throttled job (`deferred: true`): the job level, never counted as a retry of `retry`'s
   * calls.
   */
  readonly onEvent?: EventListener;
  /** Dates the events. @default systemClock */
  readonly clock?: Clock;
}

/** BullMQ's `BackoffStrategy`: a delay in milliseconds, or -1 for "fail the job now". */
export type RetrykitBackoffStrategy = (
  attemptsMade: number,
  type?: string,
  error?: Error,
  job?: MinimalJob,
) => number;

/** What the strategy decided for one failure: a delay, or why the job should stop now. */
type JobDecision = DelayDecision | 'permanent';

/** @internal How long a throttled job waits in delayed, or why it stops being deferred. */
export type DeferralDecision = DelayDecision | 'max_deferrals';

/** @internal What a strategy knows to defer a throttled job. */
export interface DeferralPlanner {
  /** The delay of the job's next deferral, given how many it had (`deferrals`). */
  readonly plan: (deferrals: number, c: Classification, job: MinimalJob) => DeferralDecision;
  /**
   * The delay of the job's next hold, given how many it had (`holds`): the failure's wait
   * (the circuit's time until a probe), at least the backoff for its reason, which grows with
   * each hold up to `maxHoldBackoffMs`. Bounded by `maxElapsedMs` only.
   */
  readonly hold: (holds: number, c: Classification, job: MinimalJob) => DelayDecision;
  /** The strategy's listener, told `job_retry_scheduled` for each deferral. */
  readonly onEvent: EventListener | undefined;
  readonly clock: Clock;
}

/** The deferral rule of each strategy, for `wrapProcessor`. */
const deferralPlanners = new WeakMap<RetrykitBackoffStrategy, DeferralPlanner>();

/** @internal The deferral rule of a strategy made by {@link createBackoffStrategy}. */
export function deferralPlannerOf(strategy: RetrykitBackoffStrategy): DeferralPlanner | undefined {
  return deferralPlanners.get(strategy);
}

/** The decision behind each strategy, for `wrapProcessor` to ask before rethrowing. */
const planners = new WeakMap<
  RetrykitBackoffStrategy,
  (attemptsMade: number, error: unknown, job: MinimalJob | undefined) => JobDecision
>();

/** Delays `wrapProcessor` already decided, by the error BullMQ will hand to the strategy. */
const decided = new WeakMap<object, number>();

/** @internal What `strategy` decides for a job's failure (`undefined`: not one of ours). */
export function planRetry(
  strategy: RetrykitBackoffStrategy,
  attemptsMade: number,
  error: unknown,
  job: MinimalJob,
): JobDecision | undefined {
  const decision = planners.get(strategy)?.(attemptsMade, error, job);
  // BullMQ hands the same error to the strategy next: it returns this delay, drawn once.
  if (typeof decision === 'number' && typeof error === 'object' && error !== null) {
    decided.set(error, decision);
  }
  return decision;
}

/**
 * A BullMQ `backoffStrategy` (Worker `settings.backoffStrategy`) that spaces a job's retries
 * with retrykit's backoff, by the same rule as `retry`: the error is classified, the delay
 * comes from `computeDelay` for that reason, a server's `Retry-After` is honoured (plus up to
 * 10 %, at most 1 s, so that jobs don't resync) even above `maxDelayMs`, and a permanent
 * failure returns -1, which BullMQ reads as "don't retry". No retry starts past `maxElapsedMs`
 * since the job was added: a wait that would end past it returns -1 too (see `maxElapsedMs`).
 * BullMQ keeps no record of a job's previous delay, so decorrelated jitter grows from the
 * previous attempt's un-jittered delay. Jobs opt in with `backoff: RETRYKIT_BACKOFF`.
 *
 * @example
 * const strategy = createBackoffStrategy({ backoff: { initialDelayMs: 500 } });
 * const worker = new Worker('webhooks', wrapProcessor(processor, { dlq, strategy }), {
 *   connection,
 *   settings: { backoffStrategy: strategy },
 * });
 */
export function createBackoffStrategy(
  options: BackoffStrategyOptions = {},
): RetrykitBackoffStrategy {
  const policy = resolveBackoffPolicy(options.backoff, options.backoffByReason);
  const maxElapsedMs = assertNumber(
    'maxElapsedMs',
    options.maxElapsedMs ?? RETRY_DEFAULTS.maxElapsedMs,
    0,
  );
  const maxDeferrals = assertInteger(
    'maxDeferrals',
    options.maxDeferrals ?? BACKOFF_STRATEGY_DEFAULTS.maxDeferrals,
    0,
  );
  for (const name of ['classify', 'random', 'onEvent'] as const) {
    if (options[name] !== undefined) assertFunction(name, options[name]);
  }
  const classify = options.classify ?? defaultClassify;
  const random = options.random ?? Math.random;
  const clock = options.clock ?? systemClock;

  const plan = (
    attemptsMade: number,
    error: unknown,
    job: MinimalJob | undefined,
    c: Classification = classify(error),
  ): JobDecision => {
    if (!c.retryable) return 'permanent';
    if (c.maxAttempts !== undefined && attemptsMade >= c.maxAttempts) return 'permanent';
    const elapsedMs = job === undefined ? 0 : Math.max(0, clock.now() - job.timestamp);
    const decision = delayAfterFailure(policy, c, {
      attempt: Math.max(0, attemptsMade - 1),
      previousDelayMs: 'unknown',
      leftMs: maxElapsedMs - elapsedMs,
      random,
    });
    return typeof decision === 'number' ? Math.round(decision) : decision;
  };

  const strategy: RetrykitBackoffStrategy = (attemptsMade, _type, error, job) => {
    const c = classify(error);
    let known: number | undefined;
    if (typeof error === 'object' && error !== null) {
      known = decided.get(error);
      decided.delete(error);
    }
    const decision = known ?? plan(attemptsMade, error, job, c);
    if (typeof decision !== 'number') return -1;
    emit(options.onEvent, {
      type: 'job_retry_scheduled',
      time: clock.now(),
      queue: job?.queueName ?? '',
      jobId: job?.id === undefined ? '' : String(job.id),
      attempt: attemptsMade,
      deferred: false,
      delayMs: decision,
      reason: c.reason,
    });
    return decision;
  };
  planners.set(strategy, (attemptsMade, error, job) => plan(attemptsMade, error, job));
  deferralPlanners.set(strategy, {
    plan(deferrals, c, job) {
      if (deferrals >= maxDeferrals) return 'max_deferrals';
      const decision = delayAfterFailure(policy, c, {
        attempt: deferrals,
        previousDelayMs: 'unknown',
        leftMs: maxElapsedMs - Math.max(0, clock.now() - job.timestamp),
        random,
      });
      return typeof decision === 'number' ? Math.round(decision) : decision;
    },
    hold(holds, c, job) {
      const leftMs = maxElapsedMs - Math.max(0, clock.now() - job.timestamp);
      const { retryAfterMs: wait = 0, ...failure } = c;
      if (wait > leftMs) return 'retry_after_exceeds_elapsed';
      const backoff = delayAfterFailure(policy, failure, {
        attempt: holds,
        previousDelayMs: 'unknown',
        leftMs: Number.POSITIVE_INFINITY,
        random,
      }) as number;
      const spread = wait > 0 ? Math.min(wait * 0.1, 1000) * random() : 0;
      const delay = Math.round(
        Math.max(Math.min(backoff, BACKOFF_STRATEGY_DEFAULTS.maxHoldBackoffMs), wait + spread),
      );
      return delay > leftMs ? 'max_elapsed' : delay;
    },
    onEvent: options.onEvent,
    clock,
  });
  return strategy;
}
