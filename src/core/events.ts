import type { Classification, Reason } from './classify-types.js';
import type { StopReason } from './errors.js';
import { showValue } from './validate.js';

/**
 * The state of one key's circuit: `closed` lets calls through and counts their failures;
 * `open` refuses them until its break ends; `half_open` lets a few probe calls through, and
 * closes again after enough of them succeed (one failure opens it again).
 */
export type CircuitState = 'closed' | 'open' | 'half_open';

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
  | JobAttemptStartEvent
  | JobAttemptSuccessEvent
  | JobAttemptFailureEvent
  | JobRetryScheduledEvent
  | BreakerTransitionEvent;

/**
 * Names and values that say what an event concerns (a tenant, a region, a WhatsApp phone
 * number ID as `whatsapp.phone_number_id`), set by the emitter or stamped with
 * {@link scopeListener}. Exporters only turn them into metric attributes when the user opts in
 * (each value multiplies series).
 */
export type EventAttributes = Readonly<Record<string, string>>;

/** Fields any event may carry. */
export interface EventScope {
  /** What the event concerns; see {@link EventAttributes}. */
  readonly attributes?: EventAttributes;
}

/**
 * An event defined by a layer above core, such as `message_status` from `retrykit/whatsapp`.
 * Its `type` is not one of {@link RetrykitEvent}'s; core listeners pass it on (or to a metrics
 * section, see `MetricsSection`) and otherwise ignore it.
 */
export interface ExtensionEvent extends EventScope {
  readonly type: string;
  /** The emitter clock's `now()`, in milliseconds. */
  readonly time: number;
}

/** Any event a listener may receive: core's own, or one a layer above core defines. */
export type AnyEvent = RetrykitEvent | ExtensionEvent;

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

/**
 * A rate limiter made a caller wait for tokens (or refused it). A grant from tokens on hand is
 * not reported, however long the limiter's store took to answer.
 */
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

/** A sampled queue depth (e.g. BullMQ waiting + delayed jobs, from `sampleQueueDepth`). */
export interface QueueDepthEvent extends EventScope {
  readonly type: 'queue_depth';
  readonly time: number;
  readonly depth: number;
  /** Which queue, when several are sampled. */
  readonly queue?: string;
}

/**
 * Which job a job-level event concerns. Job attempts are a level above the calls `retry` makes
 * inside a job: the job events never count as calls, attempts or retries of `retry`.
 */
export interface JobEventScope extends EventScope {
  /** The queue's name (BullMQ `job.queueName`). */
  readonly queue: string;
  /** The job's id. */
  readonly jobId: string;
}

/** A queued job's attempt is about to run its processor (BullMQ: `wrapProcessor`). */
export interface JobAttemptStartEvent extends JobEventScope {
  readonly type: 'job_attempt_start';
  readonly time: number;
  /** 0-based: the attempts the job spent before this run (BullMQ `job.attemptsMade`). */
  readonly attempt: number;
  /** Times the job was deferred before this run for a throttle, without spending an attempt. */
  readonly deferrals: number;
}

/** A job's attempt returned: the job is done. */
export interface JobAttemptSuccessEvent extends JobEventScope {
  readonly type: 'job_attempt_success';
  readonly time: number;
  readonly attempt: number;
  readonly deferrals: number;
  /** Duration of this attempt, in milliseconds. */
  readonly durationMs: number;
}

/** A job's attempt threw; `next` says whether the queue runs it again or it stops here. */
export interface JobAttemptFailureEvent extends JobEventScope {
  readonly type: 'job_attempt_failure';
  readonly time: number;
  readonly attempt: number;
  readonly deferrals: number;
  /** Duration of this attempt, in milliseconds. */
  readonly durationMs: number;
  readonly error: unknown;
  readonly classification: Classification;
  /**
   * `retry`: handed back to the queue to run again, spending an attempt; `defer`: moved back to
   * the delayed set without spending one (a throttle, a limiter's refusal, or the processor's
   * own `DelayedError`/`WaitingChildrenError`); `dead_letter`: the job stops for good and was
   * handed to the dead-letter queue, which reports the `dead_letter` itself once it stored the
   * entry. When that queue (or a deferral's move) fails, its error goes to BullMQ instead:
   * `retry` while the job has attempts left, else `dead_letter` without an entry (the job stays
   * in BullMQ's failed set).
   */
  readonly next: 'retry' | 'defer' | 'dead_letter';
  /** Why the job stopped, when `next` is `dead_letter`. */
  readonly stopReason?: StopReason;
  /** Milliseconds from when the job was added (BullMQ `job.timestamp`) to this failure. */
  readonly elapsedMs: number;
}

/**
 * The queue will run a job again after `delayMs` (BullMQ: `createBackoffStrategy`, for a
 * failure's retry or a throttle's deferral).
 */
export interface JobRetryScheduledEvent extends JobEventScope {
  readonly type: 'job_retry_scheduled';
  readonly time: number;
  /** The attempt that will run next (0-based): the same one after a deferral. */
  readonly attempt: number;
  /** `true` for a throttle's deferral, which spends no attempt. */
  readonly deferred: boolean;
  /** Milliseconds until it runs. */
  readonly delayMs: number;
  readonly reason: Reason;
}

/**
 * A circuit breaker's circuit for `key` changed state. Emitted by the breaker (the process
 * whose call made the change, when the state is shared through Redis), never by its callers.
 */
export interface BreakerTransitionEvent extends EventScope {
  readonly type: 'breaker_transition';
  readonly time: number;
  /** The breaker key (a phone number ID, a host). */
  readonly key: string;
  readonly from: CircuitState;
  readonly to: CircuitState;
  /** When the break ends, in epoch milliseconds of the store's clock; set when `to` is `open`. */
  readonly openUntil?: number;
}

/**
 * Receives events: {@link RetrykitEvent}s by default; a layer above core widens `E` with its
 * own (e.g. `retrykit/whatsapp`'s `WhatsAppEvent`). Must not throw; if it does, the error is
 * swallowed.
 */
export type EventListener<E extends AnyEvent = RetrykitEvent> = (event: E) => void;

/** Calls `listener` with `event`, swallowing anything it throws: a hook never breaks a send. */
export function emit<E extends AnyEvent>(listener: EventListener<E> | undefined, event: E): void {
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
export function combineListeners<E extends AnyEvent = RetrykitEvent>(
  ...listeners: ReadonlyArray<EventListener<E> | undefined>
): EventListener<E> {
  const active = listeners.filter((l): l is EventListener<E> => l !== undefined);
  for (const [i, l] of active.entries()) {
    if (typeof l !== 'function') throw new TypeError(`listeners[${i}] must be a function`);
  }
  if (active.length === 1) {
    const only = active[0] as EventListener<E>;
    return (event) => emit(only, event);
  }
  return (event) => {
    for (const l of active) emit(l, event);
  };
}

/**
 * Wraps `listener` so that every event it receives carries `attributes` (e.g. the phone number
 * ID a WhatsApp client sends from) in its `attributes`; where the event already set a name,
 * the event's value wins.
 *
 * @example
 * const onEvent = scopeListener(metrics.onEvent, { 'whatsapp.phone_number_id': phoneNumberId });
 * const send = createRetry({ onEvent });
 */
export function scopeListener<E extends AnyEvent = RetrykitEvent>(
  listener: EventListener<E>,
  attributes: EventAttributes,
): EventListener<E> {
  if (typeof attributes !== 'object' || attributes === null) {
    throw new TypeError(`attributes must be an object, got ${showValue(attributes)}`);
  }
  for (const [name, value] of Object.entries(attributes)) {
    if (typeof value !== 'string') {
      throw new TypeError(`attributes.${name} must be a string, got ${showValue(value)}`);
    }
  }
  return (event) =>
    emit(listener, {
      ...event,
      attributes:
        event.attributes === undefined ? attributes : { ...attributes, ...event.attributes },
    });
}
