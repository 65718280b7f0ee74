import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../testing/index.js';
import { REASONS } from '../classify-types.js';
import type { RetrykitEvent } from '../events.js';
import { createMetrics } from './metrics.js';
import { healthOfRaw, MetricsRecorder, mergeRaw, snapshotOfRaw } from './raw.js';
import { STOP_REASONS } from './window.js';

const reason = fc.constantFrom(...REASONS);
const ms = fc.integer({ min: 0, max: 200_000 });

/** Core events of every kind the window counts. */
const event: fc.Arbitrary<RetrykitEvent> = fc.oneof(
  fc
    .record({ attempt: fc.nat(3), elapsedMs: ms })
    .map((e): RetrykitEvent => ({ type: 'attempt_start', time: 0, ...e })),
  fc
    .record({ attempt: fc.nat(3), elapsedMs: ms })
    .map(
      (e): RetrykitEvent => ({ type: 'attempt_success', time: 0, durationMs: e.elapsedMs, ...e }),
    ),
  fc.record({ attempt: fc.nat(3), reason, retryable: fc.boolean() }).map(
    ({ attempt, reason, retryable }): RetrykitEvent => ({
      type: 'attempt_failure',
      time: 0,
      attempt,
      durationMs: 1,
      error: new Error(reason),
      classification: { reason, retryable },
    }),
  ),
  fc
    .record({ delayMs: ms, reason })
    .map((e): RetrykitEvent => ({ type: 'retry_scheduled', time: 0, attempt: 1, ...e })),
  fc.record({ reason, stopReason: fc.constantFrom(...STOP_REASONS), elapsedMs: ms }).map(
    (e): RetrykitEvent => ({
      type: 'give_up',
      time: 0,
      attempts: 2,
      error: new Error('x'),
      ...e,
    }),
  ),
  fc
    .record({ granted: fc.boolean(), waitMs: ms })
    .map((e): RetrykitEvent => ({ type: 'rate_limit_wait', time: 0, key: 'k', ...e })),
  fc
    .constantFrom('completed', 'in_progress', 'duplicate' as const)
    .map((status): RetrykitEvent => ({ type: 'idempotency_hit', time: 0, key: 'k', status })),
  reason.map((r): RetrykitEvent => ({ type: 'dead_letter', time: 0, id: 'i', reason: r })),
  fc
    .record({ depth: fc.nat(50), queue: fc.constantFrom('a', 'b') })
    .map((e): RetrykitEvent => ({ type: 'queue_depth', time: 0, ...e })),
  fc
    .record({ key: fc.constantFrom('x', 'y'), to: fc.constantFrom('open', 'closed', 'half_open') })
    .map((e): RetrykitEvent => ({ type: 'breaker_transition', time: 0, from: 'closed', ...e })),
);

describe('raw metrics', () => {
  it('counts split over several recorders and merged give createMetrics’ snapshot and health', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(event, fc.nat(2)), { maxLength: 120 }), (events) => {
        const clock = createManualClock(1_000);
        const metrics = createMetrics({ clock, windowMs: 60_000, slots: 1 });
        const recorders = [new MetricsRecorder(), new MetricsRecorder(), new MetricsRecorder()];
        for (const [e, who] of events) {
          metrics.onEvent(e);
          recorders[who]?.record(e, clock.now());
        }
        const raw = mergeRaw(recorders.map((r) => r.take()));
        const expected = metrics.snapshot();
        const fleet = snapshotOfRaw(raw, {
          time: expected.time,
          windowMs: expected.windowMs,
          coveredMs: expected.coveredMs,
        });
        // Queue depths and circuits are each process's own state (each recorder saw a part
        // of the samples and transitions): counts and latencies are what must add up.
        const counts = (s: typeof fleet) => ({
          ...s,
          queues: {},
          breakers: { ...s.breakers, notClosed: {} },
        });
        expect(counts(fleet)).toEqual(counts(expected));
        const t = { minSamples: 1, queueRisingSamples: Infinity, openCircuits: Infinity };
        const health = healthOfRaw(raw, t, 0);
        const own = metrics.checkHealth(t);
        expect(health.breaches).toEqual(own.breaches);
      }),
    );
  });

  it('take() hands over a delta and starts counts from zero, keeping state', () => {
    const r = new MetricsRecorder();
    expect(r.empty).toBe(true);
    r.record({ type: 'attempt_start', time: 0, attempt: 0, elapsedMs: 0 }, 5);
    r.record({ type: 'queue_depth', time: 0, depth: 3, queue: 'q' }, 5);
    r.record({ type: 'attempt_success', time: 0, attempt: 0, durationMs: 70, elapsedMs: 70 }, 5);
    expect(r.empty).toBe(false);
    const first = r.take();
    expect(first.counters).toMatchObject({ calls_started: 1, succeeded: 1, latency_count: 1 });
    expect(first.latencyMaxMs).toBe(70);
    expect(r.empty).toBe(true);
    const second = r.take();
    expect(second.counters).toEqual({});
    expect(second.latency).toEqual({});
    expect(second.latencyMaxMs).toBeNull();
    expect(second.queues).toEqual({ q: { depth: 3, risingSamples: 0, sampledAt: 5 } });
  });

  it('ignores counter names and buckets it does not know (a newer or older layout)', () => {
    const s = snapshotOfRaw(
      {
        counters: { calls_started: 2, 'failure:from_the_future': 5 },
        latency: { 9999: 3, '-1': 1 },
        latencyMaxMs: null,
        queues: {},
        breakers: {},
      },
      { time: 0, windowMs: 1, coveredMs: 1 },
    );
    expect(s.calls.started).toBe(2);
    expect(s.attempts.failed).toBe(0);
    expect(s.latency.count).toBe(0);
  });
});
