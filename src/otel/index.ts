import {
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableResult,
} from '@opentelemetry/api';
import type { AnyEvent, EventListener, RetrykitEvent } from '../core/events.js';
import type {
  AttachedSection,
  InstrumentOptions,
  MetricsSection,
  MetricsWindow,
  SectionCounter,
  SectionLatency,
} from '../core/metrics/metrics-section.js';
import { assertFunction, assertInteger, assertKey, showValue } from '../core/validate.js';

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
   * Event attributes (see `EventAttributes`) copied onto every measurement of an event that
   * carries them, e.g. `['whatsapp.phone_number_id']`. None by default: each value multiplies
   * the number of series.
   * @default []
   */
  readonly includeAttributes?: readonly string[];
  /**
   * Parts added by layers above core, the same `MetricsSection`s `createMetrics` takes: each
   * sees every event and records into instruments named `<prefix>.<name it gives>`.
   * @default []
   *
   * @example
   * import { whatsappDeliveryMetrics } from 'retrykit/whatsapp';
   * const onEvent = createOtelListener({ sections: [whatsappDeliveryMetrics()] });
   */
  readonly sections?: readonly MetricsSection[];
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
  /** The queue a depth was sampled from, or a job ran in. */
  queue: 'retrykit.queue',
  /** What follows a failed job attempt: `retry` or `dead_letter`. */
  jobNext: 'retrykit.job.next',
  /** The state a circuit left: `closed`, `open` or `half_open`. */
  breakerFrom: 'retrykit.breaker.from',
  /** The state a circuit entered. */
  breakerTo: 'retrykit.breaker.to',
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
 * | `retrykit.job.attempts` | counter | `{attempt}` | outcome, queue, error.type, job.next |
 * | `retrykit.job.attempt.duration` | histogram | `s` | outcome, queue |
 * | `retrykit.job.retries` | counter | `{retry}` | queue, error.type |
 * | `retrykit.job.retry.delay` | histogram | `s` | queue, error.type |
 * | `retrykit.job.give_ups` | counter | `{job}` | queue, error.type, stop_reason |
 * | `retrykit.breaker.transitions` | counter | `{transition}` | breaker.from, breaker.to |
 *
 * Each of `sections` adds its own (WhatsApp delivery: `retrykit.messages`,
 * `retrykit.messages.delivered`, `retrykit.messages.undelivered`, `retrykit.messages.held`,
 * `retrykit.messages.resent`, `retrykit.messages.stuck`, `retrykit.message.delivery.duration`). Every measurement also gets the event attributes
 * named in `includeAttributes`.
 *
 * @example
 * import { combineListeners, createMetrics, createRetry } from 'retrykit';
 * import { createOtelListener } from 'retrykit/otel';
 * const metrics = createMetrics();
 * const send = createRetry({ onEvent: combineListeners(metrics.onEvent, createOtelListener()) });
 */
export function createOtelListener(options: OtelListenerOptions = {}): EventListener<AnyEvent> {
  const prefix = assertKey('prefix', options.prefix ?? OTEL_DEFAULTS.prefix);
  const include = options.includeAttributes ?? [];
  if (!Array.isArray(include)) {
    throw new TypeError(`includeAttributes must be an array, got ${showValue(include)}`);
  }
  for (const [i, n] of include.entries()) assertKey(`includeAttributes[${i}]`, n);
  const sections = options.sections ?? [];
  if (!Array.isArray(sections)) {
    throw new TypeError(`sections must be an array, got ${showValue(sections)}`);
  }
  for (const [i, section] of sections.entries()) {
    assertFunction(`sections[${i}].attach`, (section as Partial<MetricsSection> | null)?.attach);
  }
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
  const transitions = counter(
    'breaker.transitions',
    '{transition}',
    'Circuit breaker changes of state.',
  );

  const jobAttempts = counter('job.attempts', '{attempt}', 'Job attempts that finished.');
  const jobAttemptDuration = seconds('job.attempt.duration', 'Duration of one job attempt.');
  const jobRetries = counter('job.retries', '{retry}', 'Job re-runs scheduled.');
  const jobRetryDelay = seconds('job.retry.delay', 'Backoff before a job re-run.');
  const jobGiveUps = counter('job.give_ups', '{job}', 'Jobs that failed for good.');

  const queues = new Map<string, { depth: number; attributes: Attributes }>();
  meter
    .createObservableGauge(name('queue.depth'), {
      unit: '{job}',
      description: 'Last sampled depth of a queue.',
    })
    .addCallback((result: ObservableResult) => {
      for (const q of queues.values()) result.observe(q.depth, q.attributes);
    });

  const attrs = (event: AnyEvent | undefined, base: Attributes): Attributes => {
    const own = event?.attributes;
    if (include.length === 0 || own === undefined) return base;
    let out: Attributes | undefined;
    for (const n of include) {
      const v = own[n];
      if (v === undefined) continue;
      out ??= { ...base };
      out[n] = v;
    }
    return out ?? base;
  };

  const counters = new Map<string, Counter>();
  const histograms = new Map<string, Histogram>();
  const window: MetricsWindow = {
    counter(suffix: string, o: InstrumentOptions): SectionCounter {
      let c = counters.get(suffix);
      if (c === undefined) {
        c = counter(suffix, o.unit ?? '1', o.description);
        counters.set(suffix, c);
      }
      const instrument = c;
      const fixed: Attributes = { ...o.attributes };
      let total = 0;
      return {
        add(n = 1, event) {
          total += n;
          instrument.add(n, attrs(event, fixed));
        },
        total: () => total,
      };
    },
    latency(suffix: string, o: InstrumentOptions): SectionLatency {
      let h = histograms.get(suffix);
      if (h === undefined) {
        h = seconds(suffix, o.description);
        histograms.set(suffix, h);
      }
      const instrument = h;
      const fixed: Attributes = { ...o.attributes };
      let count = 0;
      let sum = 0;
      let max = -Infinity;
      return {
        record(ms, event) {
          if (!(ms >= 0) || ms === Infinity) return;
          count++;
          sum += ms;
          if (ms > max) max = ms;
          instrument.record(ms / 1000, attrs(event, fixed));
        },
        summary: () => ({
          count,
          meanMs: count > 0 ? sum / count : null,
          p50Ms: null,
          p95Ms: null,
          p99Ms: null,
          maxMs: count > 0 ? max : null,
        }),
      };
    },
    perMinute: () => null,
  };
  const attached: readonly AttachedSection<unknown>[] = sections.map((s) => s.attach(window));

  const SUCCESS = { [A.outcome]: 'success' } as const;
  const CALL_FIRST_TRY = { [A.outcome]: 'success', [A.retried]: false } as const;
  const CALL_RETRIED = { [A.outcome]: 'success', [A.retried]: true } as const;

  return (event) => {
    for (const section of attached) section.observe(event);
    recordCore(event as RetrykitEvent);
  };

  function recordCore(event: RetrykitEvent): void {
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
      case 'breaker_transition':
        transitions.add(1, attrs(event, { [A.breakerFrom]: event.from, [A.breakerTo]: event.to }));
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
      case 'job_attempt_start':
        break;
      case 'job_attempt_success': {
        const a = attrs(event, { [A.outcome]: 'success', [A.queue]: event.queue });
        jobAttempts.add(1, a);
        jobAttemptDuration.record(event.durationMs / 1000, a);
        break;
      }
      case 'job_attempt_failure': {
        const { reason } = event.classification;
        const a = attrs(event, { [A.outcome]: 'failure', [A.queue]: event.queue });
        jobAttempts.add(1, { ...a, [A.errorType]: reason, [A.jobNext]: event.next });
        jobAttemptDuration.record(event.durationMs / 1000, a);
        if (event.next === 'dead_letter') {
          jobGiveUps.add(
            1,
            attrs(event, {
              [A.queue]: event.queue,
              [A.errorType]: reason,
              [A.stopReason]: event.stopReason ?? 'max_attempts',
            }),
          );
        }
        break;
      }
      case 'job_retry_scheduled': {
        const a = attrs(event, { [A.queue]: event.queue, [A.errorType]: event.reason });
        jobRetries.add(1, a);
        jobRetryDelay.record(event.delayMs / 1000, a);
        break;
      }
    }
  }
}
