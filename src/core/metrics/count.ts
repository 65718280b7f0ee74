// How one core event is counted: shared by `createMetrics`' window and the raw recorder.
import type { RetrykitEvent } from '../events.js';
import type { BreakerStates, QueueDepths } from './snapshot.js';
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
  reasonIndex,
  type SlotPart,
  type SlotRing,
  STOP_REASONS,
  SUCCEEDED,
} from './window.js';
import type { WindowHistogram } from './window-histogram.js';

/** The window's state: the slot ring and everything kept per slot. */
export interface WindowState {
  readonly ring: SlotRing;
  readonly counters: CounterSlots;
  readonly latency: WindowHistogram;
  readonly queues: QueueDepths;
  readonly breakers: BreakerStates;
  /** Cleared as the ring slides; sections add theirs. */
  readonly parts: SlotPart[];
}

function recordLatency(w: WindowState, ms: number): void {
  if (!(ms >= 0) || ms === Infinity) return;
  const slot = w.ring.slot;
  w.counters.add(slot, LATENCY_SUM, ms);
  w.counters.add(slot, LATENCY_COUNT);
  w.latency.record(slot, ms);
}

/** Counts one core event in the current slot. */
export function countEvent(w: WindowState, e: RetrykitEvent, now: number): void {
  const c = w.counters;
  const s = w.ring.slot;
  switch (e.type) {
    case 'attempt_start':
      c.add(s, ATTEMPTS_STARTED);
      if (e.attempt === 0) c.add(s, CALLS_STARTED);
      break;
    case 'attempt_success':
      c.add(s, SUCCEEDED);
      if (e.attempt === 0) c.add(s, FIRST_OK);
      recordLatency(w, e.elapsedMs);
      break;
    case 'attempt_failure':
      c.add(s, FAILURES);
      c.add(s, FAILURE_BY_REASON + reasonIndex(e.classification.reason));
      if (e.attempt === 0) c.add(s, FIRST_FAILED);
      break;
    case 'retry_scheduled':
      c.add(s, RETRIES);
      c.add(s, RETRY_BY_REASON + reasonIndex(e.reason));
      if (e.delayMs >= 0 && e.delayMs !== Infinity) c.add(s, RETRY_DELAY_SUM, e.delayMs);
      break;
    case 'give_up': {
      c.add(s, GIVE_UPS);
      c.add(s, GIVE_UP_BY_REASON + reasonIndex(e.reason));
      const stop = STOP_REASONS.indexOf(e.stopReason);
      if (stop >= 0) c.add(s, GIVE_UP_BY_STOP_REASON + stop);
      if (e.stopReason !== 'aborted') recordLatency(w, e.elapsedMs);
      break;
    }
    case 'rate_limit_wait':
      if (!e.granted) {
        c.add(s, LIMIT_REFUSED);
        break;
      }
      c.add(s, LIMIT_WAITS);
      if (e.waitMs >= 0 && e.waitMs !== Infinity) c.add(s, LIMIT_WAIT_SUM, e.waitMs);
      break;
    case 'idempotency_hit': {
      const i = IDEMPOTENCY.indexOf(e.status);
      if (i >= 0) c.add(s, IDEMPOTENCY_BY_STATUS + i);
      break;
    }
    case 'dead_letter':
      c.add(s, DEAD_LETTERS);
      c.add(s, DEAD_LETTER_BY_REASON + reasonIndex(e.reason));
      break;
    case 'queue_depth':
      w.queues.sample(e.queue ?? 'default', e.depth, now);
      break;
    case 'job_attempt_start':
      c.add(s, JOB_ATTEMPTS);
      if (e.attempt === 0 && e.deferrals === 0) c.add(s, JOBS_STARTED);
      break;
    case 'job_attempt_success':
      c.add(s, JOB_SUCCEEDED);
      if (e.attempt === 0 && e.deferrals === 0) c.add(s, JOB_FIRST_OK);
      break;
    case 'job_attempt_failure': {
      if (e.attempt === 0 && e.deferrals === 0) c.add(s, JOB_FIRST_FAILED);
      if (e.next === 'defer') {
        c.add(s, JOB_DEFERRED);
        break;
      }
      c.add(s, JOB_FAILURES);
      c.add(s, JOB_FAILURE_BY_REASON + reasonIndex(e.classification.reason));
      if (e.next !== 'dead_letter') break;
      c.add(s, JOB_GIVE_UPS);
      const stop = STOP_REASONS.indexOf(e.stopReason ?? 'max_attempts');
      if (stop >= 0) c.add(s, JOB_GIVE_UP_BY_STOP_REASON + stop);
      break;
    }
    case 'job_retry_scheduled':
      c.add(s, JOB_RETRIES);
      if (e.delayMs >= 0 && e.delayMs !== Infinity) c.add(s, JOB_RETRY_DELAY_SUM, e.delayMs);
      break;
    case 'breaker_transition':
      if (e.to === 'open') c.add(s, BREAKER_OPENED);
      else if (e.to === 'closed') c.add(s, BREAKER_CLOSED);
      w.breakers.transition(e.key, e.to, now);
      break;
  }
}
