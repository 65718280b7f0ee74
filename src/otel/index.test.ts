import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { retry } from '../core/retry/retry.js';
import { createManualClock } from '../testing/index.js';
import { whatsappDeliveryMetrics } from '../whatsapp/delivery-metrics.js';
import type { WhatsAppEventListener } from '../whatsapp/events.js';
import { createOtelListener, DURATION_BUCKETS_S } from './index.js';

let provider: MeterProvider | undefined;

afterEach(async () => {
  await provider?.shutdown();
  provider = undefined;
});

function setup() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  provider = new MeterProvider({ readers: [reader] });
  const collect = async (): Promise<Map<string, MetricData>> => {
    await reader.forceFlush();
    const out = new Map<string, MetricData>();
    for (const rm of exporter.getMetrics()) {
      for (const sm of rm.scopeMetrics) for (const m of sm.metrics) out.set(m.descriptor.name, m);
    }
    exporter.reset();
    return out;
  };
  return { provider, collect };
}

/** Data points as `attributes JSON → value`, sorted for stable comparison. */
function points(metric: MetricData | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of (metric?.dataPoints ?? []) as DataPoint<unknown>[]) {
    const key = JSON.stringify(
      Object.fromEntries(Object.entries(p.attributes).sort(([a], [b]) => a.localeCompare(b))),
    );
    const v = p.value as number | Histogram;
    out[key] = typeof v === 'number' ? v : { count: v.count, sum: v.sum };
  }
  return out;
}

function httpError(status: number): Error {
  return Object.assign(new Error(`HTTP ${status}`), { status });
}

describe('createOtelListener', () => {
  it('records retry outcomes as counters and second-based histograms', async () => {
    const { provider, collect } = setup();
    const onEvent = createOtelListener({ meterProvider: provider });
    const clock = createManualClock();
    const backoff = { initialDelayMs: 1_500, jitter: 'none' } as const;
    await retry(() => 'ok', { clock, onEvent });
    let n = 0;
    const flaky = retry(
      () => {
        if (n++ === 0) throw httpError(429);
        return 'ok';
      },
      { clock, onEvent, backoff },
    );
    await clock.runAll();
    await flaky;
    await retry(
      () => {
        throw httpError(400);
      },
      { clock, onEvent },
    ).catch(() => undefined);

    const m = await collect();
    expect(points(m.get('retrykit.calls'))).toEqual({
      '{"retrykit.outcome":"success","retrykit.retried":false}': 1,
      '{"retrykit.outcome":"success","retrykit.retried":true}': 1,
      '{"error.type":"client_error","retrykit.outcome":"failure","retrykit.retried":false}': 1,
    });
    expect(points(m.get('retrykit.attempts'))).toEqual({
      '{"retrykit.outcome":"success"}': 2,
      '{"error.type":"rate_limited","retrykit.outcome":"failure","retrykit.retryable":true}': 1,
      '{"error.type":"client_error","retrykit.outcome":"failure","retrykit.retryable":false}': 1,
    });
    expect(points(m.get('retrykit.retries'))).toEqual({ '{"error.type":"rate_limited"}': 1 });
    expect(points(m.get('retrykit.retry.delay'))).toEqual({
      '{"error.type":"rate_limited"}': { count: 1, sum: 1.5 },
    });
    expect(points(m.get('retrykit.give_ups'))).toEqual({
      '{"error.type":"client_error","retrykit.stop_reason":"permanent"}': 1,
    });
    expect(points(m.get('retrykit.call.duration'))).toEqual({
      '{"retrykit.outcome":"success"}': { count: 2, sum: 1.5 },
      '{"retrykit.outcome":"failure"}': { count: 1, sum: 0 },
    });
    const duration = m.get('retrykit.call.duration');
    expect(duration?.descriptor.unit).toBe('s');
    const hist = duration?.dataPoints[0]?.value as Histogram;
    expect(hist.buckets.boundaries).toEqual([...DURATION_BUCKETS_S]);
    expect(m.get('retrykit.attempts')?.descriptor.unit).toBe('{attempt}');
  });

  it('records limiter, idempotency, dead letters, queue depth and WhatsApp delivery', async () => {
    const { provider, collect } = setup();
    const onEvent: WhatsAppEventListener = createOtelListener({
      meterProvider: provider,
      prefix: 'wa',
      sections: [whatsappDeliveryMetrics()],
    });
    onEvent({ type: 'rate_limit_wait', time: 0, key: 'k', waitMs: 250, granted: true });
    onEvent({ type: 'rate_limit_wait', time: 0, key: 'k', waitMs: 9_000, granted: false });
    onEvent({ type: 'idempotency_hit', time: 0, key: 'k', status: 'completed' });
    onEvent({ type: 'dead_letter', time: 0, id: 'x', reason: 'policy' });
    onEvent({ type: 'breaker_transition', time: 0, key: 'n1', from: 'closed', to: 'open' });
    onEvent({ type: 'breaker_transition', time: 0, key: 'n2', from: 'closed', to: 'open' });
    onEvent({ type: 'queue_depth', time: 0, depth: 4, queue: 'sends' });
    onEvent({ type: 'queue_depth', time: 0, depth: 9, queue: 'sends' });
    onEvent({ type: 'message_status', time: 1_000, messageId: 'wamid.1', status: 'accepted' });
    onEvent({ type: 'message_status', time: 3_500, messageId: 'wamid.1', status: 'delivered' });
    onEvent({ type: 'message_status', time: 3_600, messageId: 'wamid.1', status: 'delivered' });
    onEvent({ type: 'message_status', time: 3_600, messageId: 'wamid.2', status: 'failed' });
    const m = await collect();
    expect(points(m.get('wa.rate_limit.waits'))).toEqual({
      '{"retrykit.granted":true}': 1,
      '{"retrykit.granted":false}': 1,
    });
    expect(points(m.get('wa.rate_limit.wait.duration'))).toEqual({
      '{"retrykit.granted":true}': { count: 1, sum: 0.25 },
    });
    expect(points(m.get('wa.idempotency.hits'))).toEqual({
      '{"retrykit.idempotency.status":"completed"}': 1,
    });
    expect(points(m.get('wa.dead_letters'))).toEqual({ '{"error.type":"policy"}': 1 });
    expect(points(m.get('wa.breaker.transitions'))).toEqual({
      '{"retrykit.breaker.from":"closed","retrykit.breaker.to":"open"}': 2,
    });
    expect(points(m.get('wa.queue.depth'))).toEqual({ '{"retrykit.queue":"sends"}': 9 });
    expect(points(m.get('wa.messages'))).toEqual({
      '{"whatsapp.message.status":"accepted"}': 1,
      '{"whatsapp.message.status":"delivered"}': 1,
      '{"whatsapp.message.status":"failed"}': 1,
    });
    expect(points(m.get('wa.messages.delivered'))).toEqual({ '{}': 1 });
    expect(points(m.get('wa.messages.undelivered'))).toEqual({ '{}': 1 });
    expect(m.get('wa.messages')?.descriptor.unit).toBe('{message}');
    expect(points(m.get('wa.message.delivery.duration'))).toEqual({
      '{}': { count: 1, sum: 2.5 },
    });
  });

  it('records job attempts apart from calls', async () => {
    const { provider, collect } = setup();
    const onEvent = createOtelListener({ meterProvider: provider });
    const job = { queue: 'sends', jobId: '7', deferrals: 0 };
    const failure = {
      type: 'job_attempt_failure',
      time: 0,
      ...job,
      durationMs: 500,
      error: httpError(503),
      classification: { retryable: true, reason: 'service_unavailable' },
      elapsedMs: 500,
    } as const;
    onEvent({ type: 'job_attempt_start', time: 0, ...job, attempt: 0 });
    onEvent({ ...failure, attempt: 0, next: 'retry' });
    onEvent({
      type: 'job_retry_scheduled',
      time: 0,
      ...job,
      attempt: 1,
      deferred: false,
      delayMs: 2_000,
      reason: 'service_unavailable',
    });
    onEvent({ type: 'job_attempt_start', time: 0, ...job, attempt: 1 });
    onEvent({ ...failure, attempt: 1, next: 'dead_letter', stopReason: 'max_attempts' });
    onEvent({
      type: 'job_attempt_start',
      time: 0,
      queue: 'sends',
      jobId: '8',
      attempt: 0,
      deferrals: 0,
    });
    onEvent({
      type: 'job_attempt_success',
      time: 0,
      queue: 'sends',
      jobId: '8',
      attempt: 0,
      deferrals: 0,
      durationMs: 250,
    });
    const m = await collect();
    expect(points(m.get('retrykit.job.attempts'))).toEqual({
      '{"retrykit.outcome":"success","retrykit.queue":"sends"}': 1,
      '{"error.type":"service_unavailable","retrykit.job.next":"retry","retrykit.outcome":"failure","retrykit.queue":"sends"}': 1,
      '{"error.type":"service_unavailable","retrykit.job.next":"dead_letter","retrykit.outcome":"failure","retrykit.queue":"sends"}': 1,
    });
    expect(points(m.get('retrykit.job.attempt.duration'))).toEqual({
      '{"retrykit.outcome":"success","retrykit.queue":"sends"}': { count: 1, sum: 0.25 },
      '{"retrykit.outcome":"failure","retrykit.queue":"sends"}': { count: 2, sum: 1 },
    });
    expect(points(m.get('retrykit.job.retries'))).toEqual({
      '{"error.type":"service_unavailable","retrykit.queue":"sends"}': 1,
    });
    expect(points(m.get('retrykit.job.retry.delay'))).toEqual({
      '{"error.type":"service_unavailable","retrykit.queue":"sends"}': { count: 1, sum: 2 },
    });
    expect(points(m.get('retrykit.job.give_ups'))).toEqual({
      '{"error.type":"service_unavailable","retrykit.queue":"sends","retrykit.stop_reason":"max_attempts"}': 1,
    });
    for (const call of ['calls', 'attempts', 'retries', 'give_ups']) {
      expect(m.has(`retrykit.${call}`)).toBe(false);
    }
  });

  it('without a section, ignores events it does not know', async () => {
    const { provider, collect } = setup();
    const onEvent: WhatsAppEventListener = createOtelListener({ meterProvider: provider });
    onEvent({ type: 'message_status', time: 1_000, messageId: 'wamid.1', status: 'accepted' });
    onEvent({ type: 'dead_letter', time: 0, id: 'x', reason: 'policy' });
    const m = await collect();
    expect([...m.keys()]).toEqual(['retrykit.dead_letters']);
  });

  it('adds event attributes only when asked to, to sections measurements too', async () => {
    const { provider, collect } = setup();
    const quiet = createOtelListener({ meter: provider.getMeter('a') });
    const loud: WhatsAppEventListener = createOtelListener({
      meter: provider.getMeter('b'),
      prefix: 'loud',
      includeAttributes: ['whatsapp.phone_number_id'],
      sections: [whatsappDeliveryMetrics()],
    });
    const attributes = { 'whatsapp.phone_number_id': '1055', tenant: 't1' };
    const event = { type: 'dead_letter', time: 0, id: 'x', reason: 'policy', attributes } as const;
    quiet(event);
    loud(event);
    loud({ type: 'message_status', time: 0, messageId: 'w', status: 'sent', attributes });
    const m = await collect();
    expect(points(m.get('retrykit.dead_letters'))).toEqual({ '{"error.type":"policy"}': 1 });
    expect(points(m.get('loud.dead_letters'))).toEqual({
      '{"error.type":"policy","whatsapp.phone_number_id":"1055"}': 1,
    });
    expect(points(m.get('loud.messages'))).toEqual({
      '{"whatsapp.message.status":"sent","whatsapp.phone_number_id":"1055"}': 1,
    });
  });

  it('rejects bad options naming the option and the value', () => {
    expect(() => createOtelListener({ prefix: '' })).toThrow(/prefix must not be empty/);
    expect(() => createOtelListener({ includeAttributes: 'yes' as never })).toThrow(
      /includeAttributes must be an array, got "yes"/,
    );
    expect(() => createOtelListener({ includeAttributes: [''] })).toThrow(/includeAttributes\[0\]/);
    expect(() => createOtelListener({ sections: [{ name: 'x' } as never] })).toThrow(
      /sections\[0\]\.attach must be a function/,
    );
    expect(() => createOtelListener({ maxQueues: 0 })).toThrow(/maxQueues/);
  });
});
