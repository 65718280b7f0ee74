import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { createManualClock } from '../../testing/index.js';
import type { Reason } from '../classify-types.js';
import type { StopReason } from '../errors.js';
import type { AnyEvent, RetrykitEvent } from '../events.js';
import type { HealthBreach, HealthResolution } from './health.js';
import { HISTOGRAM_RELATIVE_ERROR } from './histogram.js';
import { createMetrics } from './metrics.js';
import type { MetricsSection } from './metrics-section.js';
import type { MetricsSnapshot } from './snapshot.js';

const ev = {
  start: (attempt = 0): RetrykitEvent => ({
    type: 'attempt_start',
    time: 0,
    attempt,
    elapsedMs: 0,
  }),
  success: (elapsedMs = 0, attempt = 0): RetrykitEvent => ({
    type: 'attempt_success',
    time: 0,
    attempt,
    durationMs: elapsedMs,
    elapsedMs,
  }),
  failure: (reason: Reason, attempt = 0, retryable = true): RetrykitEvent => ({
    type: 'attempt_failure',
    time: 0,
    attempt,
    durationMs: 0,
    error: new Error(reason),
    classification: { retryable, reason },
  }),
  retry: (reason: Reason, delayMs = 100, attempt = 1): RetrykitEvent => ({
    type: 'retry_scheduled',
    time: 0,
    attempt,
    delayMs,
    reason,
  }),
  giveUp: (stopReason: StopReason, reason: Reason, elapsedMs = 0): RetrykitEvent => ({
    type: 'give_up',
    time: 0,
    attempts: 1,
    reason,
    stopReason,
    error: new Error(reason),
    elapsedMs,
  }),
  queue: (depth: number, queue?: string): RetrykitEvent => ({
    type: 'queue_depth',
    time: 0,
    depth,
    ...(queue === undefined ? {} : { queue }),
  }),
};

type Metrics = ReturnType<typeof createMetrics>;

/** A call that succeeds on its first attempt after `latencyMs`. */
function okCall(m: Metrics, latencyMs = 0): void {
  m.onEvent(ev.start());
  m.onEvent(ev.success(latencyMs));
}

/** A call that fails once (retryable), then succeeds. */
function retriedCall(m: Metrics): void {
  m.onEvent(ev.start());
  m.onEvent(ev.failure('server_error'));
  m.onEvent(ev.retry('server_error'));
  m.onEvent(ev.start(1));
  m.onEvent(ev.success(100, 1));
}

/** A call that fails for good on its first attempt. */
function failedCall(m: Metrics): void {
  m.onEvent(ev.start());
  m.onEvent(ev.failure('client_error', 0, false));
  m.onEvent(ev.giveUp('permanent', 'client_error'));
}

describe('createMetrics: the sliding window', () => {
  it('counts an event until its slot falls out of the window, and not a millisecond longer', async () => {
    const clock = createManualClock();
    const m = createMetrics({ clock, windowMs: 10_000, slots: 10 });
    await clock.advance(500);
    okCall(m);
    okCall(m);
    await clock.advance(1_000); // t = 1500, second slot
    okCall(m);
    await clock.advance(8_499); // t = 9999: all three still in
    expect(m.snapshot().calls.succeeded).toBe(3);
    await clock.advance(1); // t = 10000: the first slot [0, 1000) leaves
    expect(m.snapshot().calls.succeeded).toBe(1);
    await clock.advance(999); // t = 10999
    expect(m.snapshot().calls.succeeded).toBe(1);
    await clock.advance(1); // t = 11000: the second slot leaves
    expect(m.snapshot().calls.succeeded).toBe(0);
    expect(m.snapshot().calls.perMinute).toBe(0);
  });

  it('matches a naive model of the window for any sequence of events and pauses', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 4_000 }), n: fc.nat(3) }), {
          maxLength: 60,
        }),
        (slots, steps) => {
          const windowMs = 6_000;
          const slotMs = windowMs / slots;
          let now = 0;
          const clock = { now: () => now, sleep: () => Promise.resolve() };
          const m = createMetrics({ clock, windowMs, slots });
          const recorded: Array<{ at: number; latency: number }> = [];
          for (const { dt, n } of steps) {
            now += dt;
            for (let i = 0; i < n; i++) {
              okCall(m, dt + i);
              recorded.push({ at: now, latency: dt + i });
            }
          }
          const current = Math.floor(now / slotMs);
          const inWindow = recorded.filter((r) => Math.floor(r.at / slotMs) > current - slots);
          const s = m.snapshot();
          expect(s.calls.succeeded).toBe(inWindow.length);
          expect(s.latency.count).toBe(inWindow.length);
          const max = inWindow.reduce((a, r) => Math.max(a, r.latency), -Infinity);
          expect(s.latency.maxMs).toBe(inWindow.length === 0 ? null : max);
          expect(s.coveredMs).toBeLessThanOrEqual(windowMs);
          expect(s.coveredMs).toBeGreaterThanOrEqual(Math.min(now, windowMs - slotMs));
        },
      ),
    );
  });

  it('forgets everything after a pause longer than the window', async () => {
    const clock = createManualClock();
    const m = createMetrics({ clock, windowMs: 1_000, slots: 4 });
    for (let i = 0; i < 50; i++) failedCall(m);
    await clock.advance(5_000);
    const s = m.snapshot();
    expect(s.calls.gaveUp).toBe(0);
    expect(s.attempts.failed).toBe(0);
    expect(s.ratios.error).toBeNull();
    expect(m.checkHealth().healthy).toBe(true);
  });

  it('derives rates, reasons and latency percentiles from the window', () => {
    const clock = createManualClock();
    const m = createMetrics({ clock });
    const latencies: number[] = [];
    for (let i = 1; i <= 97; i++) {
      okCall(m, i * 10);
      latencies.push(i * 10);
    }
    retriedCall(m);
    latencies.push(100);
    failedCall(m);
    latencies.push(0);
    m.onEvent(ev.start());
    m.onEvent(ev.giveUp('aborted', 'aborted', 50_000));
    const s = m.snapshot();
    expect(s.calls).toMatchObject({
      started: 100,
      succeeded: 98,
      firstAttemptSucceeded: 97,
      gaveUp: 2,
    });
    expect(s.ratios.firstAttemptSuccess).toBeCloseTo(97 / 99, 12);
    expect(s.ratios.retry).toBeCloseTo(1 / 101, 12);
    expect(s.ratios.error).toBeCloseTo(1 / 99, 12);
    expect(s.giveUps).toEqual({
      total: 2,
      byReason: { client_error: 1, aborted: 1 },
      byStopReason: { permanent: 1, aborted: 1 },
    });
    // Aborted calls are left out of latency.
    expect(s.latency.count).toBe(99);
    expect(s.latency.maxMs).toBe(970);
    const sorted = [...latencies].sort((a, b) => a - b);
    for (const [q, got] of [
      [0.5, s.latency.p50Ms],
      [0.95, s.latency.p95Ms],
      [0.99, s.latency.p99Ms],
    ] as const) {
      const exact = sorted[Math.ceil(q * sorted.length) - 1] as number;
      expect(Math.abs((got as number) - exact)).toBeLessThanOrEqual(
        exact * HISTOGRAM_RELATIVE_ERROR,
      );
    }
    expect(s.latency.meanMs).toBeCloseTo(latencies.reduce((a, b) => a + b) / 99, 9);
  });

  it('counts limiter waits, idempotency hits and dead letters by reason', () => {
    const m = createMetrics({ clock: createManualClock() });
    m.onEvent({ type: 'rate_limit_wait', time: 0, key: 'pn:1', waitMs: 30, granted: true });
    m.onEvent({ type: 'rate_limit_wait', time: 0, key: 'pn:1', waitMs: 90, granted: true });
    m.onEvent({ type: 'rate_limit_wait', time: 0, key: 'pn:1', waitMs: 5_000, granted: false });
    m.onEvent({ type: 'idempotency_hit', time: 0, key: 'k', status: 'completed' });
    m.onEvent({ type: 'idempotency_hit', time: 0, key: 'k', status: 'duplicate' });
    m.onEvent({ type: 'idempotency_hit', time: 0, key: 'k', status: 'duplicate' });
    m.onEvent({ type: 'dead_letter', time: 0, id: 'a', reason: 'policy' });
    m.onEvent({ type: 'dead_letter', time: 0, id: 'b', reason: 'rate_limited' });
    m.onEvent({ type: 'dead_letter', time: 0, id: 'c', reason: 'made_up' as Reason });
    const s = m.snapshot();
    expect(s.rateLimit).toEqual({ waits: 2, refused: 1, meanWaitMs: 60 });
    expect(s.idempotency).toEqual({ hits: 3, byStatus: { completed: 1, duplicate: 2 } });
    expect(s.deadLetters).toEqual({
      total: 3,
      byReason: { policy: 1, rate_limited: 1, unknown: 1 },
    });
  });
});

describe('checkHealth: fires exactly at the thresholds', () => {
  it('retry rate: breached iff retries / attempts > threshold, with enough attempts', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 120 }),
        fc.nat(60),
        fc.nat(200),
        fc.integer({ min: 1, max: 60 }),
        (first, retries, k, minSamples) => {
          const attempts = first + retries;
          const threshold = Math.min(k, attempts) / attempts;
          const m = createMetrics({ clock: createManualClock() });
          for (let i = 0; i < first; i++) m.onEvent(ev.start());
          for (let i = 0; i < retries; i++) m.onEvent(ev.retry('timeout'));
          const report = m.checkHealth({ retryRatio: threshold, minSamples });
          const breached = report.breaches.some((b) => b.check === 'retryRatio');
          expect(breached).toBe(retries > Math.min(k, attempts) && attempts >= minSamples);
          expect(report.healthy).toBe(!breached);
        },
      ),
    );
  });

  it('retry rate at the default 2 %: 1 retry in 50 attempts is fine, 2 in 99 are not', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.nat(20), (first, retries) => {
        const m = createMetrics({ clock: createManualClock() });
        for (let i = 0; i < first; i++) m.onEvent(ev.start());
        for (let i = 0; i < retries; i++) m.onEvent(ev.retry('timeout'));
        const attempts = first + retries;
        const expected = attempts >= 20 && retries * 50 > attempts;
        expect(m.checkHealth().breaches.some((b) => b.check === 'retryRatio')).toBe(expected);
      }),
    );
  });

  it('error rate: breached iff failed / finished calls > threshold; aborted calls do not count', () => {
    fc.assert(
      fc.property(
        fc.nat(150),
        fc.nat(40),
        fc.nat(40),
        fc.nat(200),
        (succeeded, failed, aborted, k) => {
          const finished = succeeded + failed;
          fc.pre(finished > 0);
          const threshold = Math.min(k, finished) / finished;
          const m = createMetrics({ clock: createManualClock() });
          for (let i = 0; i < succeeded; i++) okCall(m);
          for (let i = 0; i < failed; i++) failedCall(m);
          for (let i = 0; i < aborted; i++) m.onEvent(ev.giveUp('aborted', 'aborted'));
          const breach = m
            .checkHealth({ errorRatio: threshold })
            .breaches.find((b) => b.check === 'errorRatio');
          expect(breach !== undefined).toBe(failed > Math.min(k, finished) && finished >= 20);
          if (breach?.check === 'errorRatio') {
            expect(breach.samples).toBe(finished);
            expect(breach.value).toBe(failed / finished);
          }
        },
      ),
    );
  });

  it('mean latency: breached iff the mean is above 5000 ms, not at it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 4_900, max: 5_100 }), { minLength: 20, maxLength: 60 }),
        (latencies) => {
          const m = createMetrics({ clock: createManualClock() });
          for (const l of latencies) okCall(m, l);
          const sum = latencies.reduce((a, b) => a + b, 0);
          const breached = m.checkHealth().breaches.some((b) => b.check === 'meanLatencyMs');
          expect(breached).toBe(sum > 5_000 * latencies.length);
        },
      ),
    );
    const m = createMetrics({ clock: createManualClock() });
    for (let i = 0; i < 20; i++) okCall(m, 5_000);
    expect(m.checkHealth().healthy).toBe(true);
    okCall(m, 5_001);
    expect(m.checkHealth().breaches).toEqual([
      { check: 'meanLatencyMs', value: 105_001 / 21, threshold: 5_000, samples: 21 },
    ]);
  });

  it('queue: breached iff the depth rose in each of the last N samples', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(50), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 8 }),
        (depths, n) => {
          const m = createMetrics({ clock: createManualClock() });
          for (const d of depths) m.onEvent(ev.queue(d, 'sends'));
          let rising = 0;
          for (let i = 1; i < depths.length; i++) {
            rising = (depths[i] as number) > (depths[i - 1] as number) ? rising + 1 : 0;
          }
          const breach = m
            .checkHealth({ queueRisingSamples: n })
            .breaches.find((b) => b.check === 'queueRising');
          expect(breach !== undefined).toBe(rising >= n);
          expect(m.snapshot().queues.sends?.risingSamples).toBe(rising);
          if (breach?.check === 'queueRising') {
            expect(breach).toEqual({
              check: 'queueRising',
              value: rising,
              threshold: n,
              queue: 'sends',
              depth: depths.at(-1),
            });
          }
        },
      ),
    );
  });

  it('by default a queue alerts after 5 rises, and names unnamed queues "default"', () => {
    const m = createMetrics({ clock: createManualClock() });
    for (const d of [0, 1, 2, 3, 4]) m.onEvent(ev.queue(d));
    expect(m.checkHealth().healthy).toBe(true);
    m.onEvent(ev.queue(5));
    expect(m.checkHealth().breaches).toEqual([
      { check: 'queueRising', value: 5, threshold: 5, queue: 'default', depth: 5 },
    ]);
    m.onEvent(ev.queue(5));
    expect(m.checkHealth().healthy).toBe(true);
  });

  it('does not judge rates over fewer than minSamples calls', () => {
    const m = createMetrics({ clock: createManualClock() });
    for (let i = 0; i < 19; i++) failedCall(m);
    expect(m.checkHealth().healthy).toBe(true);
    failedCall(m);
    expect(m.checkHealth().breaches.map((b) => b.check)).toEqual(['errorRatio']);
    expect(m.checkHealth({ errorRatio: Infinity }).healthy).toBe(true);
  });
});

describe('onAlert and onResolve', () => {
  it('alert once when a breach starts, resolve once when it clears, alert again on a new one', async () => {
    const clock = createManualClock();
    const alerts: HealthBreach[] = [];
    const resolved: HealthResolution[] = [];
    const m = createMetrics({
      clock,
      windowMs: 10_000,
      slots: 10,
      onAlert: (b) => alerts.push(b),
      onResolve: (r) => resolved.push(r),
    });
    for (let i = 0; i < 30; i++) failedCall(m);
    expect(alerts).toHaveLength(0); // judged when the window slides, not per event
    await clock.advance(1_000);
    m.onEvent(ev.start());
    expect(alerts).toEqual([{ check: 'errorRatio', value: 1, threshold: 0.02, samples: 30 }]);
    for (let s = 0; s < 5; s++) {
      for (let i = 0; i < 30; i++) failedCall(m);
      await clock.advance(1_000);
      m.snapshot();
    }
    expect(alerts).toHaveLength(1);
    expect(resolved).toHaveLength(0);
    // Healthy traffic until every failure has left the window.
    for (let s = 0; s < 10; s++) {
      for (let i = 0; i < 30; i++) okCall(m);
      await clock.advance(1_000);
      m.checkHealth();
    }
    expect(resolved).toHaveLength(1);
    expect(resolved[0]).toMatchObject({ breach: alerts[0], startedAt: 1_000 });
    expect(resolved[0]?.resolvedAt).toBeGreaterThan(1_000);
    m.checkHealth();
    expect(resolved).toHaveLength(1);
    for (let i = 0; i < 30; i++) failedCall(m);
    await clock.advance(1_000);
    m.snapshot();
    expect(alerts).toHaveLength(2);
  });

  it('alerts per queue, and a throwing hook changes nothing', async () => {
    const clock = createManualClock();
    const alerts: HealthBreach[] = [];
    const m = createMetrics({
      clock,
      windowMs: 1_000,
      slots: 10,
      thresholds: { queueRisingSamples: 2 },
      onAlert: (b) => {
        alerts.push(b);
        throw new Error('pager down');
      },
    });
    for (const d of [1, 2, 3]) m.onEvent(ev.queue(d, 'a'));
    for (const d of [5, 6, 7, 8]) m.onEvent(ev.queue(d, 'b'));
    await clock.advance(100);
    m.onEvent(ev.queue(9, 'b'));
    m.onEvent(ev.queue(10, 'b'));
    await clock.advance(100);
    m.snapshot();
    expect(alerts.map((b) => (b.check === 'queueRising' ? b.queue : b.check))).toEqual(['a', 'b']);
  });
});

describe('createMetrics: bounded memory', () => {
  it('keeps its structures bounded and its heap flat over a million events', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (() => void) | undefined;
    let now = 0;
    const clock = { now: () => now, sleep: () => Promise.resolve() };
    const m = createMetrics({ clock, windowMs: 60_000, slots: 30 });
    const reasons: Reason[] = ['rate_limited', 'server_error', 'timeout', 'network'];
    const starts = [ev.start()];
    const successes = Array.from({ length: 90 }, (_, i) => ev.success(i * 100));
    const failures = reasons.map((r) => ev.failure(r));
    const retries = reasons.map((r, i) => ev.retry(r, i * 100));
    const queues = Array.from({ length: 5_000 }, (_, i) => ev.queue(i % 100, `queue-${i}`));
    const deadLetter: RetrykitEvent = { type: 'dead_letter', time: 0, id: 'd', reason: 'policy' };
    const pick = <T>(list: readonly T[], i: number): T => list[i % list.length] as T;
    const feed = (from: number, to: number): void => {
      for (let i = from; i < to; i++) {
        if (i % 1_000 === 0) now += 250;
        switch (i % 8) {
          case 0:
            m.onEvent(pick(starts, i));
            break;
          case 1:
            m.onEvent(pick(successes, i));
            break;
          case 2:
            m.onEvent(pick(failures, i));
            break;
          case 3:
            m.onEvent(pick(retries, i));
            break;
          case 4:
            m.onEvent(ev.giveUp('max_attempts', pick(reasons, i), i % 7_000));
            break;
          case 5:
            m.onEvent({
              type: 'rate_limit_wait',
              time: now,
              key: 'k',
              waitMs: i % 90,
              granted: true,
            });
            break;
          case 6:
            m.onEvent(pick(queues, i >> 3));
            break;
          default:
            m.onEvent(deadLetter);
        }
      }
    };
    feed(0, 200_000);
    gc?.();
    const before = process.memoryUsage().heapUsed;
    feed(200_000, 1_000_000);
    gc?.();
    const after = process.memoryUsage().heapUsed;
    const s = m.snapshot();
    expect(Object.keys(s.queues).length).toBeLessThanOrEqual(100);
    expect(s.calls.succeeded).toBeGreaterThan(0);
    expect(s.calls.succeeded).toBeLessThan(125_000);
    // 800 000 more events, 100 000 of them queue samples over 5 000 names: an unbounded map
    // would grow; the bounded structures stay put (leeway for the test runner).
    if (gc !== undefined) expect(after - before).toBeLessThan(8 * 1024 * 1024);
  }, 60_000);
});

describe('createMetrics: options', () => {
  it('rejects bad options naming the option and the value', () => {
    expect(() => createMetrics({ windowMs: 0 })).toThrow(/windowMs .*got 0/);
    expect(() => createMetrics({ windowMs: Number.NaN })).toThrow(/windowMs must be a number/);
    expect(() => createMetrics({ slots: 2.5 })).toThrow(/slots must be an integer, got 2.5/);
    expect(() => createMetrics({ sections: {} as never })).toThrow(/sections must be an array/);
    expect(() => createMetrics({ sections: [counting('calls')] })).toThrow(
      /sections\[0\]\.name .*not a core snapshot key, got "calls"/,
    );
    expect(() => createMetrics({ sections: [counting('ratios')] })).toThrow(
      /sections\[0\]\.name .*not a core snapshot key, got "ratios"/,
    );
    expect(() => createMetrics({ sections: [counting('a.b')] })).toThrow(/sections\[0\]\.name/);
    expect(() => createMetrics({ sections: [counting('x'), counting('x')] })).toThrow(
      /sections\[1\]\.name "x" is already taken/,
    );
    expect(() => createMetrics({ thresholds: { retryRatio: 2 } })).toThrow(
      /thresholds.retryRatio .*got 2/,
    );
    expect(() => createMetrics({ thresholds: { meanLatencyMs: -1 } })).toThrow(
      /thresholds.meanLatencyMs/,
    );
    expect(() => createMetrics({ thresholds: { queueRisingSamples: 0 } })).toThrow(
      /thresholds.queueRisingSamples/,
    );
    expect(() => createMetrics({ onAlert: 'page' as never })).toThrow(/onAlert must be a function/);
    const m = createMetrics();
    expect(() => m.checkHealth({ minSamples: 0 })).toThrow(/checkHealth thresholds.minSamples/);
    expect(() => m.checkHealth({ errorRatio: Number.NaN })).toThrow(/errorRatio/);
    expect(() => m.checkHealth({ errorRate: 0.1 } as never)).toThrow(
      'errorRate was renamed in retrykit 0.2: use errorRatio',
    );
    expect(() => createMetrics({ thresholds: { retryRate: 0.1 } as never })).toThrow(
      'retryRate was renamed in retrykit 0.2: use retryRatio',
    );
  });

  it('works unbound, e.g. passed around as metrics.onEvent', () => {
    const { onEvent, snapshot } = createMetrics({ clock: createManualClock() });
    onEvent(ev.start());
    expect(snapshot().calls.started).toBe(1);
  });
});

describe('public types', () => {
  it('narrow a breach on its check, and rates are nullable numbers', () => {
    const show = (b: HealthBreach): string => {
      if (b.check === 'queueRising') {
        expectTypeOf(b.queue).toEqualTypeOf<string>();
        return `${b.queue}: ${b.depth}`;
      }
      if (b.check === 'openCircuits') return b.keys.join();
      expectTypeOf(b.samples).toEqualTypeOf<number>();
      // @ts-expect-error only a queue breach names a queue
      return b.queue;
    };
    expect(show({ check: 'queueRising', value: 5, threshold: 5, queue: 'q', depth: 7 })).toBe(
      'q: 7',
    );
    expectTypeOf<MetricsSnapshot['ratios']['retry']>().toEqualTypeOf<number | null>();
    expectTypeOf<MetricsSnapshot['giveUps']['byStopReason']>().toEqualTypeOf<
      Readonly<Partial<Record<StopReason, number>>>
    >();
  });
});

/** A test section: counts events of type `ping` and their `ms`, alerting above `limitMs` mean. */
function counting<const N extends string>(name: N, limitMs = Infinity) {
  return {
    name,
    attach(window) {
      const pings = window.counter('pings', { description: 'pings' });
      const latency = window.latency('ping.duration', { description: 'ping durations' });
      return {
        observe(event: AnyEvent) {
          if (event.type !== 'ping') return;
          pings.add();
          latency.record((event as AnyEvent & { ms: number }).ms);
        },
        snapshot: () => ({
          pings: pings.total(),
          perMinute: window.perMinute(pings.total()),
          latency: latency.summary(),
        }),
        health(minSamples: number) {
          const { count, meanMs } = latency.summary();
          if (count < minSamples || meanMs === null || !(meanMs > limitMs)) return [];
          return [{ check: 'meanMs', value: meanMs, threshold: limitMs, samples: count }];
        },
      };
    },
  } satisfies MetricsSection<unknown, N>;
}

describe('createMetrics: sections', () => {
  it('a section sees every event and windows its counters and latencies like the core', async () => {
    const clock = createManualClock();
    const m = createMetrics({ clock, windowMs: 10_000, slots: 10, sections: [counting('pings')] });
    m.onEvent({ type: 'ping', time: 0, ms: 100 } as AnyEvent);
    m.onEvent({ type: 'ping', time: 0, ms: 300 } as AnyEvent);
    m.onEvent(ev.start());
    await clock.advance(5_000);
    m.onEvent({ type: 'ping', time: 0, ms: 500 } as AnyEvent);
    expect(m.snapshot().pings).toMatchObject({ pings: 3, perMinute: 36 });
    expect(m.snapshot().pings.latency).toMatchObject({ count: 3, meanMs: 300, maxMs: 500 });
    expect(m.snapshot().calls.started).toBe(1);
    await clock.advance(5_000);
    expect(m.snapshot().pings).toMatchObject({ pings: 1, latency: { count: 1, meanMs: 500 } });
    await clock.advance(20_000);
    expect(m.snapshot().pings).toMatchObject({ pings: 0, latency: { count: 0, meanMs: null } });
  });

  it('a section check is named after the section, alerts and resolves like a core check', async () => {
    const clock = createManualClock();
    const alerts: HealthBreach[] = [];
    const resolved: HealthResolution[] = [];
    const m = createMetrics({
      clock,
      windowMs: 10_000,
      slots: 10,
      thresholds: { minSamples: 2 },
      sections: [counting('pings', 200)],
      onAlert: (b) => alerts.push(b),
      onResolve: (r) => resolved.push(r),
    });
    m.onEvent({ type: 'ping', time: 0, ms: 201 } as AnyEvent);
    expect(m.checkHealth().healthy).toBe(true);
    m.onEvent({ type: 'ping', time: 0, ms: 201 } as AnyEvent);
    expect(m.checkHealth().breaches).toEqual([
      { check: 'pings.meanMs', value: 201, threshold: 200, samples: 2 },
    ]);
    expect(m.checkHealth({ minSamples: 3 }).healthy).toBe(true);
    await clock.advance(1_000);
    m.snapshot();
    expect(alerts.map((b) => b.check)).toEqual(['pings.meanMs']);
    await clock.advance(10_000);
    m.snapshot();
    expect(resolved.map((r) => r.breach.check)).toEqual(['pings.meanMs']);
  });

  it('types the snapshot with each section under its name', () => {
    const m = createMetrics({ sections: [counting('a'), counting('b')] });
    expectTypeOf(m.snapshot().a.pings).toEqualTypeOf<number>();
    expectTypeOf(m.snapshot().b.latency.meanMs).toEqualTypeOf<number | null>();
    // @ts-expect-error no section named c
    m.snapshot().c;
    expectTypeOf(m.onEvent).parameter(0).toEqualTypeOf<AnyEvent>();
  });
});

describe('createMetrics: the job level', () => {
  const job = { queue: 'sends', jobId: '1' };
  const jobLife = fc.record({
    // Failures before the last attempt, then how the job ended.
    failures: fc.integer({ min: 0, max: 4 }),
    end: fc.constantFrom('success', 'dead_letter', 'running' as const),
    delayMs: fc.integer({ min: 0, max: 60_000 }),
  });

  it('counts job attempts in jobs only, with ratios in [0, 1] that match the tally (property)', () => {
    fc.assert(
      fc.property(fc.array(jobLife, { maxLength: 30 }), (lives) => {
        const m = createMetrics({ clock: createManualClock() });
        const untouched = createMetrics({ clock: createManualClock() }).snapshot();
        let attempts = 0;
        let firstOk = 0;
        let firstFailed = 0;
        let succeeded = 0;
        let gaveUp = 0;
        let retries = 0;
        let delaySum = 0;
        for (const [i, life] of lives.entries()) {
          const jobId = String(i);
          const runs = life.failures + (life.end === 'running' ? 0 : 1);
          for (let attempt = 0; attempt < runs; attempt++) {
            attempts++;
            m.onEvent({
              type: 'job_attempt_start',
              time: 0,
              ...job,
              jobId,
              attempt,
              deferrals: 0,
            });
            const last = attempt === runs - 1;
            if (last && life.end === 'success') {
              succeeded++;
              if (attempt === 0) firstOk++;
              m.onEvent({
                type: 'job_attempt_success',
                time: 0,
                ...job,
                jobId,
                attempt,
                deferrals: 0,
                durationMs: 5,
              });
              continue;
            }
            if (attempt === 0) firstFailed++;
            const stop = last && life.end === 'dead_letter';
            m.onEvent({
              type: 'job_attempt_failure',
              time: 0,
              ...job,
              jobId,
              attempt,
              deferrals: 0,
              durationMs: 5,
              error: new Error('x'),
              classification: { retryable: !stop, reason: 'server_error' },
              elapsedMs: 5,
              ...(stop ? { next: 'dead_letter', stopReason: 'max_attempts' } : { next: 'retry' }),
            });
            if (stop) {
              gaveUp++;
              continue;
            }
            retries++;
            delaySum += life.delayMs;
            m.onEvent({
              type: 'job_retry_scheduled',
              time: 0,
              ...job,
              jobId,
              attempt: attempt + 1,
              deferred: false,
              delayMs: life.delayMs,
              reason: 'server_error',
            });
          }
        }
        const s = m.snapshot();
        const started = lives.filter((l) => l.failures + (l.end === 'running' ? 0 : 1) > 0).length;
        expect(s.jobs).toMatchObject({
          started,
          attempts,
          succeeded,
          firstAttemptSucceeded: firstOk,
          failed: attempts - succeeded,
          retries: { scheduled: retries, meanDelayMs: retries > 0 ? delaySum / retries : null },
          gaveUp,
        });
        const { firstAttemptSuccess, retry, error } = s.jobs.ratios;
        expect(firstAttemptSuccess).toBe(
          firstOk + firstFailed > 0 ? firstOk / (firstOk + firstFailed) : null,
        );
        expect(error).toBe(succeeded + gaveUp > 0 ? gaveUp / (succeeded + gaveUp) : null);
        for (const r of [firstAttemptSuccess, retry, error]) {
          if (r !== null) {
            expect(r).toBeGreaterThanOrEqual(0);
            expect(r).toBeLessThanOrEqual(1);
          }
        }
        for (const key of [
          'calls',
          'attempts',
          'retries',
          'giveUps',
          'ratios',
          'latency',
        ] as const) {
          expect(s[key]).toEqual(untouched[key]);
        }
      }),
    );
  });
});
