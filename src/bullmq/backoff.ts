import type { MinimalJob } from 'bullmq';
import {
  type BackoffOptions,
  delayFor,
  type ResolvedBackoffOptions,
  resolveBackoff,
} from '../core/backoff.js';
import { classify as defaultClassify } from '../core/classify.js';
import type { Classification, Reason } from '../core/classify-types.js';
import { type Clock, type RandomSource, systemClock } from '../core/clock.js';
import { type EventListener, emit } from '../core/events.js';
import { assertFunction } from '../core/validate.js';

/**
 * The job option that sends a job's retries through the strategy of
 * {@link createBackoffStrategy}: BullMQ calls a worker's `settings.backoffStrategy` only for
 * jobs whose `backoff.type` is not one of its built-ins.
 *
 * @example
 * await queue.add('webhook', payload, { attempts: 6, backoff: RETRYKIT_BACKOFF });
 */
export const RETRYKIT_BACKOFF = Object.freeze({ type: 'retrykit' });

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
  /** Decides whether the job's error is worth retrying. Use the same one as `wrapProcessor`. @default classify */
  readonly classify?: (error: unknown) => Classification;
  /** Random source for jitter. @default Math.random */
  readonly random?: RandomSource;
  /** Receives a `retry_scheduled` event for every delay returned. */
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

/**
 * A BullMQ `backoffStrategy` (Worker `settings.backoffStrategy`) that spaces a job's retries
 * with retrykit's backoff: the error is classified, the delay comes from `computeDelay` for
 * that reason, a server's `Retry-After` is honoured (plus up to 10 %, at most 1 s, so that
 * jobs don't resync), and a permanent failure returns -1, which BullMQ reads as "don't retry".
 * BullMQ keeps no record of a job's previous delay, so decorrelated jitter grows from the
 * previous attempt's un-jittered delay. Jobs opt in with
 * `backoff: RETRYKIT_BACKOFF`.
 *
 * @example
 * const worker = new Worker('webhooks', processor, {
 *   connection,
 *   settings: { backoffStrategy: createBackoffStrategy({ backoff: { initialDelayMs: 500 } }) },
 * });
 */
export function createBackoffStrategy(
  options: BackoffStrategyOptions = {},
): RetrykitBackoffStrategy {
  const base = resolveBackoff(options.backoff);
  const byReason: Partial<Record<Reason, ResolvedBackoffOptions>> = {};
  for (const [reason, override] of Object.entries(options.backoffByReason ?? {})) {
    if (override !== undefined) {
      byReason[reason as Reason] = resolveBackoff(
        { ...base, ...override },
        `backoffByReason.${reason}`,
      );
    }
  }
  for (const name of ['classify', 'random', 'onEvent'] as const) {
    if (options[name] !== undefined) assertFunction(name, options[name]);
  }
  const classify = options.classify ?? defaultClassify;
  const random = options.random ?? Math.random;
  const clock = options.clock ?? systemClock;

  return (attemptsMade, _type, error) => {
    const c = classify(error);
    if (!c.retryable) return -1;
    if (c.maxAttempts !== undefined && attemptsMade >= c.maxAttempts) return -1;
    let b = byReason[c.reason] ?? base;
    if (c.backoff !== undefined) b = resolveBackoff({ ...b, ...c.backoff });
    // BullMQ doesn't keep a job's previous delay: jitters that grow from it (decorrelated,
    // custom) get the previous attempt's un-jittered delay.
    const previous =
      attemptsMade > 1 && (b.jitter === 'decorrelated' || typeof b.jitter === 'function')
        ? delayFor({ ...b, jitter: 'none' }, attemptsMade - 2, undefined, random)
        : undefined;
    let delayMs = delayFor(b, Math.max(0, attemptsMade - 1), previous, random);
    if (c.retryAfterMs !== undefined && c.retryAfterMs > 0) {
      const spread = Math.min(c.retryAfterMs * 0.1, 1000) * random();
      delayMs = Math.min(Math.max(delayMs, c.retryAfterMs + spread), b.maxDelayMs);
    }
    delayMs = Math.round(delayMs);
    emit(options.onEvent, {
      type: 'retry_scheduled',
      time: clock.now(),
      attempt: attemptsMade,
      delayMs,
      reason: c.reason,
    });
    return delayMs;
  };
}
