import type { Classification, Reason } from './classify-types.js';
import type { StopReason } from './errors.js';

/**
 * What a retrykit component reports as it works. Every component that takes an `onEvent`
 * option calls it synchronously with one of these; `createMetrics()` consumes them.
 * `time` is the component clock's `now()`, in milliseconds.
 */
export type RetrykitEvent =
  | AttemptStartEvent
  | AttemptSuccessEvent
  | AttemptFailureEvent
  | RetryScheduledEvent
  | GiveUpEvent
  | RateLimitWaitEvent
  | IdempotencyHitEvent
  | DeadLetterEvent
  | QueueDepthEvent
  | MessageStatusEvent;

/** Fields any event may carry, set by the emitter or added with {@link scopeListener}. */
export interface EventScope {
  /**
   * The WhatsApp Business phone number ID the event concerns, when the emitter knows it.
   * Exporters only turn it into a metric attribute when the user opts in (it multiplies series).
   */
  readonly phoneNumberId?: string;
}

/** An attempt is about to call the wrapped function. */
export interface AttemptStartEvent extends EventScope {
  readonly type: 'attempt_start';
  readonly time: number;
  /** 0-based attempt number. */
  readonly attempt: number;
  /** Milliseconds since the first attempt started. */
  readonly elapsedMs: number;
}

/** The wrapped function returned. */
export interface AttemptSuccessEvent extends EventScope {
  readonly type: 'attempt_success';
  readonly time: number;
  readonly attempt: number;
  /** Duration of this attempt, in milliseconds. */
  readonly durationMs: number;
  /** Milliseconds from the first attempt's start to this success. */
  readonly elapsedMs: number;
}

/** The wrapped function threw; `classification` says what happens next. */
export interface AttemptFailureEvent extends EventScope {
  readonly type: 'attempt_failure';
  readonly time: number;
  readonly attempt: number;
  readonly durationMs: number;
  readonly error: unknown;
  readonly classification: Classification;
}

/** A retry will run after `delayMs`. */
export interface RetryScheduledEvent extends EventScope {
  readonly type: 'retry_scheduled';
  readonly time: number;
  /** The attempt that will run next (0-based). */
  readonly attempt: number;
  /** Milliseconds until it runs. */
  readonly delayMs: number;
  readonly reason: Reason;
}

/** The call failed for good. */
export interface GiveUpEvent extends EventScope {
  readonly type: 'give_up';
  readonly time: number;
  /** Calls made in all. */
  readonly attempts: number;
  readonly reason: Reason;
  /** Why retrying stopped. */
  readonly stopReason: StopReason;
  readonly error: unknown;
  /** Milliseconds from the first attempt's start. */
  readonly elapsedMs: number;
}

/** A rate limiter made a caller wait (or refused it). */
export interface RateLimitWaitEvent extends EventScope {
  readonly type: 'rate_limit_wait';
  readonly time: number;
  readonly key: string;
  /** Milliseconds waited (or that would have been needed, when refused). */
  readonly waitMs: number;
  /** `false` when the caller was refused rather than made to wait. */
  readonly granted: boolean;
}

/** An idempotency check found the key already seen. */
export interface IdempotencyHitEvent extends EventScope {
  readonly type: 'idempotency_hit';
  readonly time: number;
  readonly key: string;
  /** `completed`: a stored result was returned; `in_progress`: another worker holds it; `duplicate`: `markOnce` saw it before. */
  readonly status: 'completed' | 'in_progress' | 'duplicate';
}

/** Something was written to a dead-letter queue. */
export interface DeadLetterEvent extends EventScope {
  readonly type: 'dead_letter';
  readonly time: number;
  readonly id: string;
  readonly reason: Reason;
}

/** A sampled queue depth (e.g. BullMQ waiting + delayed jobs). */
export interface QueueDepthEvent extends EventScope {
  readonly type: 'queue_depth';
  readonly time: number;
  readonly depth: number;
  /** Which queue, when several are sampled. */
  readonly queue?: string;
}

/** A WhatsApp message was sent, or a status webhook for it arrived. */
export interface MessageStatusEvent extends EventScope {
  readonly type: 'message_status';
  readonly time: number;
  /** The WhatsApp message ID (wamid). */
  readonly messageId: string;
  readonly status: 'accepted' | 'sent' | 'delivered' | 'read' | 'played' | 'failed';
  /** The payload's own timestamp, in milliseconds, when the event came from a webhook. */
  readonly timestampMs?: number;
}

/** Receives {@link RetrykitEvent}s. Must not throw; if it does, the error is swallowed. */
export type EventListener = (event: RetrykitEvent) => void;

/** Calls `listener` with `event`, swallowing anything it throws: a hook never breaks a send. */
export function emit(listener: EventListener | undefined, event: RetrykitEvent): void {
  if (listener === undefined) return;
  try {
    listener(event);
  } catch {
    // A broken hook must not change the outcome of the call it observes.
  }
}

/**
 * One listener that forwards every event to each of `listeners` in order (`undefined` entries
 * are skipped). A listener that throws does not stop the others.
 *
 * @example
 * const onEvent = combineListeners(metrics.onEvent, createOtelListener(), (e) => log.debug(e));
 * const send = createRetry({ onEvent });
 */
export function combineListeners(
  ...listeners: ReadonlyArray<EventListener | undefined>
): EventListener {
  const active = listeners.filter((l): l is EventListener => l !== undefined);
  for (const [i, l] of active.entries()) {
    if (typeof l !== 'function') throw new TypeError(`listeners[${i}] must be a function`);
  }
  if (active.length === 1) {
    const only = active[0] as EventListener;
    return (event) => emit(only, event);
  }
  return (event) => {
    for (const l of active) emit(l, event);
  };
}

/**
 * Wraps `listener` so that every event it receives carries `scope` (e.g. the phone number ID
 * a WhatsApp client sends from), unless the event already set those fields.
 *
 * @example
 * const send = createRetry({ onEvent: scopeListener(metrics.onEvent, { phoneNumberId }) });
 */
export function scopeListener(listener: EventListener, scope: EventScope): EventListener {
  return (event) => emit(listener, { ...scope, ...event } as RetrykitEvent);
}
