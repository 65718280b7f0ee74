import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import type { Classification } from '../core/classify-types.js';
import type { DeadLetterAttempt } from '../core/dead-letter/dead-letter-types.js';
import { attemptOf } from '../core/dead-letter/failure.js';
import {
  isRetrykitError,
  PermanentError,
  RetryError,
  type StopReason,
  shouldHold,
} from '../core/errors.js';
import { emit } from '../core/events.js';
import { isRecord } from '../core/loose.js';
import { RateLimitTimeoutError } from '../core/rate-limit/rate-limit-errors.js';
import type { RateLimiter } from '../core/rate-limit/rate-limit-types.js';
import type { DeferralPlanner } from './backoff.js';

/** The errors a processor throws to tell BullMQ it moved the job itself, by name. */
const BULLMQ_MOVES = new Set(['DelayedError', 'WaitingError', 'WaitingChildrenError']);

/**
 * @internal Whether `error` tells BullMQ the processor moved the job itself, or paused the
 * queue (`worker.rateLimit(ms)` then `throw Worker.RateLimitError()`): not a failure, so
 * `wrapProcessor` passes it on untouched. Read by name and message, as BullMQ's worker does.
 */
export function isBullMqMove(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, message } = error as { name?: unknown; message?: unknown };
  return (
    message === 'bullmq:rateLimitExceeded' || (typeof name === 'string' && BULLMQ_MOVES.has(name))
  );
}

/**
 * @internal Whether a failure is a throttle, which `wrapProcessor` defers without spending an
 * attempt: a retryable `rate_limited` failure, or any retryable failure with a server's wait.
 */
export function isThrottle(c: Classification): boolean {
  return c.retryable && (c.reason === 'rate_limited' || (c.retryAfterMs ?? 0) > 0);
}

/**
 * The `code`s of retrykit's own refusals to start a call: a limiter that could not grant a
 * token within `maxWaitMs`, a full bulkhead. Not the message's fault, and not the server's:
 * deferred as throttles here, but left `unknown` by the default classifier, so that `retry`'s
 * `feedback` never slows an adaptive limiter down for its own waits.
 */
const LOCAL_REFUSALS: ReadonlySet<string> = new Set(['RATE_LIMIT_TIMEOUT', 'BULKHEAD_REJECTED']);

/** A limiter timeout or a bulkhead rejection from any copy of retrykit, as a throttle. */
function localRefusalOf(error: unknown, c: Classification): Classification | undefined {
  if (!isRetrykitError(error) || !LOCAL_REFUSALS.has(error.code)) return undefined;
  const wait = (error as { retryAfterMs?: unknown }).retryAfterMs;
  const { retryAfterMs: _server, ...rest } = c;
  return {
    ...rest,
    retryable: true,
    reason: 'rate_limited',
    ...(typeof wait === 'number' && wait > 0 ? { retryAfterMs: wait } : {}),
  };
}

/**
 * @internal The classification to defer a failure with, when it is a throttle: its own; for
 * a limiter's `RateLimitTimeoutError` or a `BulkheadRejectedError` (also as the last failure
 * of a `RetryError`), a retryable `rate_limited` one with the limiter's wait; for a
 * `RetryError` whose last failure was `rate_limited` (a WhatsApp client inside the job ran out
 * of its own retries on 130429), a retryable `rate_limited` one.
 */
export function throttleOf(error: unknown, c: Classification): Classification | undefined {
  if (isThrottle(c)) return c;
  const local =
    localRefusalOf(error, c) ??
    (error instanceof RetryError ? localRefusalOf(error.cause, c) : undefined);
  if (local !== undefined) return local;
  if (error instanceof RetryError && error.reason === 'rate_limited') {
    return { ...c, retryable: true, reason: 'rate_limited' };
  }
  return undefined;
}

/**
 * @internal The classification to hold a job with, when its failure is not the message's:
 * a `HeldError` or a `CircuitOpenError` from any copy of retrykit (`shouldHold`), with the
 * error's `retryAfterMs` (the circuit's time until a probe); or a failure classified not
 * retryable with `scope: 'account'` (an expired token thrown straight from the job), unless
 * the job said otherwise with `permanent()` or BullMQ's `UnrecoverableError`.
 */
export function holdOf(error: unknown, c: Classification): Classification | undefined {
  if (shouldHold(error)) {
    const wait = (error as { retryAfterMs?: unknown }).retryAfterMs;
    const { retryAfterMs: _unused, ...rest } = c;
    return {
      ...rest,
      retryable: true,
      scope: 'account',
      ...(typeof wait === 'number' && wait > 0 ? { retryAfterMs: wait } : {}),
    };
  }
  if (
    !c.retryable &&
    c.scope === 'account' &&
    !(error instanceof PermanentError) &&
    !(error instanceof UnrecoverableError)
  ) {
    return { ...c, retryable: true };
  }
  return undefined;
}

/** @internal How many times the job was deferred for throttles (holds aside), from its history. */
export function deferralsOf(history: readonly DeadLetterAttempt[]): number {
  let count = 0;
  for (const attempt of history) {
    if (attempt.deferredMs !== undefined && attempt.held !== true) count++;
  }
  return count;
}

/** @internal How many times the job was held, from its history. */
export function holdsOf(history: readonly DeadLetterAttempt[]): number {
  let count = 0;
  for (const attempt of history) if (attempt.held === true) count++;
  return count;
}

/** @internal A limiter's refusal, made into the failure a deferral records. */
export interface LimiterRefusal {
  readonly error: RateLimitTimeoutError;
  readonly classification: Classification;
}

/**
 * @internal Takes a token of `key` from `limiter` for the job, or says why not: the refusal to
 * defer the job with, instead of holding the worker while the bucket refills.
 */
export async function acquireOrRefuse(
  limiter: RateLimiter,
  key: string,
): Promise<LimiterRefusal | undefined> {
  const result = await limiter.tryAcquire(key, 1);
  if (result.ok) return undefined;
  const { retryAfterMs } = result;
  return {
    error: new RateLimitTimeoutError({ key, tokens: 1, maxWaitMs: 0, retryAfterMs }),
    classification: { retryable: true, reason: 'rate_limited', retryAfterMs },
  };
}

/** @internal What {@link deferThrottled} needs to know about one throttled run of a job. */
export interface Throttle {
  readonly job: Job;
  /** The worker's lock token for the job; without it the job can't be moved (`undefined`). */
  readonly token: string | undefined;
  readonly error: unknown;
  readonly classification: Classification;
  /** The job's history so far (`historyOf(job.data)`). */
  readonly history: readonly DeadLetterAttempt[];
  /** When the throttle happened, on the processor's clock, in milliseconds. */
  readonly now: number;
  /**
   * A hold (`holdOf`), not a throttle: its delay comes from the planner's `hold`, it is
   * recorded with `held: true`, and `maxDeferrals` does not count it.
   */
  readonly held?: boolean;
}

/**
 * @internal Moves a throttled job back to BullMQ's delayed set for the planner's delay and
 * throws BullMQ's `DelayedError`, which tells the worker the job was moved: `attemptsMade`
 * stays as it was (`moveToDelayed` skips the attempt). The deferral is recorded in the job's
 * history first (`deferredMs`), so a crash before the move leaves a stalled job with one
 * more deferral on record, never a lost one. Resolves with why the job can't be deferred
 * again (its budget is spent: dead-letter it), or `undefined` when it can't be moved at all
 * (no lock token: fail it as usual).
 */
export async function deferThrottled(
  throttle: Throttle,
  planner: DeferralPlanner,
  historyField: string,
): Promise<StopReason | undefined> {
  const { job, token, error, classification: c, history, now, held = false } = throttle;
  if (token === undefined) return undefined;
  const decision = held
    ? planner.hold(holdsOf(history), c, job)
    : planner.plan(deferralsOf(history), c, job);
  if (typeof decision !== 'number') return decision;
  if (isRecord(job.data)) {
    const deferral = {
      ...attemptOf(error, c, new Date(now).toISOString()),
      deferredMs: decision,
      ...(held ? { held: true as const } : {}),
    };
    await job.updateData({ ...job.data, [historyField]: [...history, deferral] });
  }
  await job.moveToDelayed(now + decision, token);
  emit(planner.onEvent, {
    type: 'job_retry_scheduled',
    time: planner.clock.now(),
    queue: job.queueName,
    jobId: String(job.id),
    attempt: job.attemptsMade,
    deferred: true,
    delayMs: decision,
    reason: c.reason,
  });
  throw new DelayedError(
    `${held ? 'held' : 'deferred'} ${decision} ms (${c.reason}); no attempt spent`,
  );
}
