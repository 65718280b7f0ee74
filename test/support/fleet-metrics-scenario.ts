import { Cluster, type Redis } from 'ioredis';
import { expect } from 'vitest';
import { createMetrics, type RetrykitEvent } from '../../src/index.js';
import { createRedisMetricsReporter, readFleetMetrics } from '../../src/redis/index.js';
import { createManualClock, seededRandom } from '../../src/testing/index.js';
import { uniquePrefix } from './redis.js';

export const INTERVAL = 10_000;
const REASONS = ['rate_limited', 'server_error', 'network', 'client_error'] as const;

/** One call's events: a first attempt, maybe retries, then success or give-up. */
export function callEvents(random: () => number, time: number): RetrykitEvent[] {
  const out: RetrykitEvent[] = [];
  const retries = random() < 0.7 ? 0 : Math.floor(random() * 3) + 1;
  let elapsed = 0;
  for (let attempt = 0; attempt <= retries; attempt++) {
    out.push({ type: 'attempt_start', time, attempt, elapsedMs: elapsed });
    const duration = Math.floor(random() * 900) + 5;
    elapsed += duration;
    if (attempt === retries) {
      if (random() < 0.9) {
        out.push({
          type: 'attempt_success',
          time,
          attempt,
          durationMs: duration,
          elapsedMs: elapsed,
        });
      } else {
        const reason = REASONS[Math.floor(random() * REASONS.length)] ?? 'network';
        out.push({
          type: 'attempt_failure',
          time,
          attempt,
          durationMs: duration,
          error: new Error(reason),
          classification: { reason, retryable: false },
        });
        out.push({
          type: 'give_up',
          time,
          attempts: attempt + 1,
          reason,
          stopReason: 'permanent',
          error: new Error(reason),
          elapsedMs: elapsed,
        });
        out.push({ type: 'dead_letter', time, id: `d${time}${attempt}`, reason });
      }
    } else {
      const reason = REASONS[Math.floor(random() * 2)] ?? 'rate_limited';
      out.push({
        type: 'attempt_failure',
        time,
        attempt,
        durationMs: duration,
        error: new Error(reason),
        classification: { reason, retryable: true },
      });
      const delayMs = 100 * 2 ** attempt;
      out.push({ type: 'retry_scheduled', time, attempt: attempt + 1, delayMs, reason });
      elapsed += delayMs;
    }
  }
  return out;
}

/** Every key matching `pattern`, on every master of a cluster. */
async function keysMatching(redis: Redis | Cluster, pattern: string): Promise<string[]> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const keys = await Promise.all(nodes.map((node) => node.keys(pattern)));
  return keys.flat();
}

/**
 * Three reporters on `redis` fed 240 calls over six intervals: `readFleetMetrics` must answer
 * exactly what one `createMetrics` fed every event answers, snapshot and health.
 */
export async function reportersAddUp(redis: Redis | Cluster): Promise<void> {
  const prefix = uniquePrefix('fleet');
  const start = 1_700_000_000_000 - (1_700_000_000_000 % INTERVAL);
  const clock = createManualClock(start);
  const metrics = createMetrics({ clock, windowMs: 6 * INTERVAL, slots: 6 });
  const reporters = [0, 1, 2].map((i) =>
    createRedisMetricsReporter(redis, {
      prefix,
      intervalMs: INTERVAL,
      clock,
      instanceId: `w${i}`,
    }),
  );
  const random = seededRandom(18);
  for (let interval = 0; interval < 6; interval++) {
    for (let call = 0; call < 40; call++) {
      const who = reporters[Math.floor(random() * 3)];
      for (const e of callEvents(random, clock.now())) {
        metrics.onEvent(e);
        who?.onEvent(e);
      }
      await clock.advance(INTERVAL / 50);
    }
    // Queue samples and circuits are one process's state: give them to one reporter.
    const depth: RetrykitEvent = {
      type: 'queue_depth',
      time: 0,
      queue: 'sends',
      depth: interval * 3,
    };
    metrics.onEvent(depth);
    reporters[0]?.onEvent(depth);
    if (interval === 4) {
      const open: RetrykitEvent = {
        type: 'breaker_transition',
        time: 0,
        key: 'graph',
        from: 'closed',
        to: 'open',
      };
      metrics.onEvent(open);
      reporters[0]?.onEvent(open);
    }
    if (interval < 5) {
      await clock.advance(INTERVAL / 5); // the interval ends: the timers flush
      // The manual clock outruns Redis: wait for those writes before the next interval.
      await Promise.all(reporters.map((r) => r.flush()));
    }
  }
  // The last interval is still running: flush it by hand.
  expect(await Promise.all(reporters.map((r) => r.flush()))).toEqual([true, true, true]);

  const fleet = await readFleetMetrics(redis, {
    prefix,
    intervalMs: INTERVAL,
    clock,
    windowMs: 6 * INTERVAL,
    series: true,
  });
  const own = metrics.snapshot();
  expect(own.calls.started).toBe(240);
  expect(own.retries.scheduled).toBeGreaterThan(0);
  expect(own.giveUps.total).toBeGreaterThan(0);
  expect(fleet.snapshot).toEqual(own);
  const t = { minSamples: 1, retryRatio: 0.01, errorRatio: 0.01 };
  const again = await readFleetMetrics(redis, {
    prefix,
    intervalMs: INTERVAL,
    clock,
    windowMs: 6 * INTERVAL,
    thresholds: t,
  });
  expect(again.health).toEqual(metrics.checkHealth(t));
  expect(fleet.health).toEqual(metrics.checkHealth());
  expect(again.health.breaches.map((b) => b.check)).toEqual(
    expect.arrayContaining(['retryRatio', 'errorRatio', 'openCircuits']),
  );
  expect(fleet.instances).toBe(3);
  expect(fleet.series).toHaveLength(6);
  const perInterval = (fleet.series ?? []).map((s) => s.snapshot.calls.started);
  expect(perInterval.reduce((a, b) => a + b, 0)).toBe(240);
  expect((fleet.series ?? []).map((s) => s.start)).toEqual(
    [0, 1, 2, 3, 4, 5].map((i) => start + i * INTERVAL),
  );

  // Each interval is one hash with a TTL: keys bounded by bucketTtlMs / intervalMs.
  const keys = await keysMatching(redis, `{${prefix}:metrics}:*`);
  expect(keys).toHaveLength(6);
  for (const key of keys) {
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
  }
  await Promise.all(reporters.map((r) => r.close()));
}
