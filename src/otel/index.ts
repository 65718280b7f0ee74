import {
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableResult,
} from '@opentelemetry/api';
import { DeliveryTracker } from '../core/delivery.js';
import type { EventListener, RetrykitEvent } from '../core/events.js';
import { assertInteger, assertKey, showValue } from '../core/validate.js';

/** Options of {@link createOtelListener}. */
export interface OtelListenerOptions {
  /** The meter to record with. @default meterProvider.getMeter('retrykit') */
  readonly meter?: Meter;
  /** Where to get the meter when `meter` is not given. @default the global provider */
  readonly meterProvider?: MeterProvider;
  /**
   * First part of every instrument name: `<prefix>.attempts`, `<prefix>.call.duration`, ….
   * @default 'retrykit'
   */
  readonly prefix?: string;
  /**
   * Add `whatsapp.phone_number_id` to every measurement whose event carries a `phoneNumberId`.
   * Off by default: each phone number multiplies the number of series.
   * @default false
   */
  readonly includePhoneNumberId?: boolean;
  /**
   * WhatsApp message IDs followed at once to deduplicate statuses and pair sends with
   * deliveries; the oldest is forgotten first.
   * @default 10_000
   */
  readonly maxTrackedMessages?: number;
  /**
   * Distinct queues whose last depth the `queue.depth` gauge reports; the least recently
   * sampled is forgotten first.
   * @default 100
   */
  readonly maxQueues?: number;
}

/** The defaults of {@link OtelListenerOptions}. */
const OTEL_DEFAULTS = Object.freeze({
  prefix: 'retrykit',
  includePhoneNumberId: false,
  maxTrackedMessages: 10_000,
  maxQueues: 100,
});

/**
 * Bucket boundaries, in seconds, advised for retrykit's duration histograms: the OTel HTTP
 * semantic-convention buckets up to 10 s, then minutes and hours, where backoff lives.
 */
export const DURATION_BUCKETS_S: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 300, 900, 3600,
  21_600, 86_400,
]);

/** Attribute names retrykit records. */
export const OTEL_ATTRIBUTES = Object.freeze({
  /** `success`, `failure` or `aborted`. */
  outcome: 'retrykit.outcome',
  /** Why an attempt or call failed: a retrykit `Reason` (OTel's standard error attribute). */
  errorType: 'error.type',
  /** Whether a failed attempt will be retried. */
  retryable: 'retrykit.retryable',
  /** Whether a finished call needed more than one attempt. */
  retried: 'retrykit.retried',
  /** Why a call gave up: a retrykit `StopReason`. */
  stopReason: 'retrykit.stop_reason',
  /** Whether a rate limiter let the caller through after waiting (`false`: refused). */
  granted: 'retrykit.granted',
  /** `completed`, `in_progress` or `duplicate`. */
  idempotencyStatus: 'retrykit.idempotency.status',
  /** The queue a depth was sampled from. */
  queue: 'retrykit.queue',
  /** `accepted`, `sent`, `delivered`, `read`, `played` or `failed`. */
  messageStatus: 'whatsapp.message.status',
  /** The WhatsApp Business phone number ID, only with `includePhoneNumberId`. */
  phoneNumberId: 'whatsapp.phone_number_id',
});

const A = OTEL_ATTRIBUTES;

/**
 * Returns an `onEvent` listener that records retrykit events as OpenTelemetry metrics.
 * Durations are histograms in seconds, as the OTel semantic conventions ask; counts are
 * monotonic counters. Names, with the default prefix:
 *
 * | instrument | kind | unit | attributes |
 * | --- | --- | --- | --- |
 * | `retrykit.calls` | counter | `{call}` | outcome, retried, error.type (on failure) |
 * | `retrykit.call.duration` | histogram | `s` | outcome |
 * | `retrykit.attempts` | counter | `{attempt}` | outcome, error.type, retryable |
 * | `retrykit.attempt.duration` | histogram | `s` | outcome, error.type |
 * | `retrykit.retries` | counter | `{retry}` | error.type |
 * | `retrykit.retry.delay` | histogram | `s` | error.type |
 * | `retrykit.give_ups` | counter | `{call}` | error.type, retrykit.stop_reason |
 * | `retrykit.rate_limit.waits` | counter | `{wait}` | granted |
 * | `retrykit.rate_limit.wait.duration` | histogram | `s` | granted |
 * | `retrykit.idempotency.hits` | counter | `{hit}` | idempotency.status |
 * | `retrykit.dead_letters` | counter | `{message}` | error.type |
 * | `retrykit.queue.depth` | observable gauge | `{job}` | queue |
 * | `retrykit.messages` | counter | `{message}` | whatsapp.message.status |
 * | `retrykit.message.delivery.duration` | histogram | `s` | — |
 *
 * Every measurement also gets `whatsapp.phone_number_id` with `includePhoneNumberId`.
 *
 * @example
 * import { combineListeners, createMetrics, createRetry } from 'retrykit';
 * import { createOtelListener } from 'retrykit/otel';
 * const metrics = createMetrics();
 * const send = createRetry({ onEvent: combineListeners(metrics.onEvent, createOtelListener()) });
 */
export function createOtelListener(options: OtelListenerOptions = {}): EventListener {
  const prefix = assertKey('prefix', options.prefix ?? OTEL_DEFAULTS.prefix);
  const includePhone = options.includePhoneNumberId ?? OTEL_DEFAULTS.includePhoneNumberId;
  if (typeof includePhone !== 'boolean') {
    throw new TypeError(`includePhoneNumberId must be a boolean, got ${showValue(includePhone)}`);
  }
  const maxTracked = assertInteger(
    'maxTrackedMessages',
    options.maxTrackedMessages ?? OTEL_DEFAULTS.maxTrackedMessages,
    1,
  );
  const maxQueues = assertInteger('maxQueues', options.maxQueues ?? OTEL_DEFAULTS.maxQueues, 1);
  const meter =
    options.meter ?? (options.meterProvider ?? metrics).getMeter('retrykit', undefined, {});

  const name = (suffix: string): string => `${prefix}.${suffix}`;
  const counter = (suffix: string, unit: string, description: string): Counter =>
    meter.createCounter(name(suffix), { unit, description });
  const seconds = (suffix: string, description: string): Histogram =>
    meter.createHistogram(name(suffix), {
      unit: 's',
      description,
      advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_S] },
    });

  const calls = counter('calls', '{call}', 'Calls that finished, by outcome.');
  const callDuration = seconds('call.duration', 'Duration of a call, retries and waits included.');
  const attempts = counter('attempts', '{attempt}', 'Attempts that finished, by outcome.');
  const attemptDuration = seconds('attempt.duration', 'Duration of one attempt.');
  const retries = counter('retries', '{retry}', 'Retries scheduled, by the failure reason.');
  const retryDelay = seconds('retry.delay', 'Backoff before a retry.');
  const giveUps = counter('give_ups', '{call}', 'Calls that failed for good.');
  const waits = counter('rate_limit.waits', '{wait}', 'Callers a rate limiter held or refused.');
  const waitDuration = seconds('rate_limit.wait.duration', 'Time a rate limiter held a caller.');
  const hits = counter('idempotency.hits', '{hit}', 'Idempotency keys found already seen.');
  const deadLetters = counter(
    'dead_letters',
    '{message}',
    'Entries written to a dead-letter queue.',
  );
  const messages = counter('messages', '{message}', 'WhatsApp message statuses, once each.');
  const deliveryDuration = seconds(
    'message.delivery.duration',
    'Time from sending a WhatsApp message to its delivery.',
  );

  const queues = new Map<string, { depth: number; attributes: Attributes }>();
  meter
    .createObservableGauge(name('queue.depth'), {
      unit: '{job}',
      description: 'Last sampled depth of a queue.',
    })
    .addCallback((result: ObservableResult) => {
      for (const q of queues.values()) result.observe(q.depth, q.attributes);
    });

  const tracker = new DeliveryTracker(maxTracked);

  const attrs = (event: RetrykitEvent, base: Attributes): Attributes =>
    includePhone && event.phoneNumberId !== undefined
      ? { ...base, [A.phoneNumberId]: event.phoneNumberId }
      : base;

  const SUCCESS = { [A.outcome]: 'success' } as const;
  const CALL_FIRST_TRY = { [A.outcome]: 'success', [A.retried]: false } as const;
  const CALL_RETRIED = { [A.outcome]: 'success', [A.retried]: true } as const;

  return (event) => {
    switch (event.type) {
      case 'attempt_start':
        break;
      case 'attempt_success': {
        attempts.add(1, attrs(event, SUCCESS));
        attemptDuration.record(event.durationMs / 1000, attrs(event, SUCCESS));
        calls.add(1, attrs(event, event.attempt === 0 ? CALL_FIRST_TRY : CALL_RETRIED));
        callDuration.record(event.elapsedMs / 1000, attrs(event, SUCCESS));
        break;
      }
      case 'attempt_failure': {
        const { reason, retryable } = event.classification;
        const failure = attrs(event, { [A.outcome]: 'failure', [A.errorType]: reason });
        attempts.add(1, { ...failure, [A.retryable]: retryable });
        attemptDuration.record(event.durationMs / 1000, failure);
        break;
      }
      case 'retry_scheduled': {
        const a = attrs(event, { [A.errorType]: event.reason });
        retries.add(1, a);
        retryDelay.record(event.delayMs / 1000, a);
        break;
      }
      case 'give_up': {
        const outcome = event.stopReason === 'aborted' ? 'aborted' : 'failure';
        giveUps.add(
          1,
          attrs(event, { [A.errorType]: event.reason, [A.stopReason]: event.stopReason }),
        );
        calls.add(
          1,
          attrs(event, {
            [A.outcome]: outcome,
            [A.retried]: event.attempts > 1,
            [A.errorType]: event.reason,
          }),
        );
        callDuration.record(event.elapsedMs / 1000, attrs(event, { [A.outcome]: outcome }));
        break;
      }
      case 'rate_limit_wait': {
        const a = attrs(event, { [A.granted]: event.granted });
        waits.add(1, a);
        if (event.granted) waitDuration.record(event.waitMs / 1000, a);
        break;
      }
      case 'idempotency_hit':
        hits.add(1, attrs(event, { [A.idempotencyStatus]: event.status }));
        break;
      case 'dead_letter':
        deadLetters.add(1, attrs(event, { [A.errorType]: event.reason }));
        break;
      case 'queue_depth': {
        const queue = event.queue ?? 'default';
        if (queues.has(queue)) queues.delete(queue);
        else if (queues.size >= maxQueues) {
          const oldest = queues.keys().next();
          if (oldest.done !== true) queues.delete(oldest.value);
        }
        queues.set(queue, { depth: event.depth, attributes: attrs(event, { [A.queue]: queue }) });
        break;
      }
      case 'message_status': {
        const seen = tracker.observe(event);
        if (seen.first) messages.add(1, attrs(event, { [A.messageStatus]: event.status }));
        if (seen.latencyMs !== undefined) {
          deliveryDuration.record(seen.latencyMs / 1000, attrs(event, {}));
        }
        break;
      }
    }
  };
}
