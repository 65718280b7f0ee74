import { describe, expect, it, vi } from 'vitest';
import { createMetrics } from '../src/index.js';
import { createRedisMetricsReporter, readFleetMetrics } from '../src/redis/index.js';
import { createManualClock, seededRandom } from '../src/testing/index.js';
import { type WhatsAppEvent, whatsappDeliveryMetrics } from '../src/whatsapp/index.js';
import { callEvents, INTERVAL, reportersAddUp } from './support/fleet-metrics-scenario.js';
import {
  connectRedis,
  describeOwnRedis,
  describeRedis,
  ownRedisServer,
  ready,
  uniquePrefix,
} from './support/redis.js';

describeRedis('fleet metrics in Redis', () => {
  it('several reporters add up to what one createMetrics fed every event reports', async () => {
    await reportersAddUp(connectRedis());
  });

  it('sections add up too: WhatsApp delivery across reporters is what one createMetrics reports', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('fleet-sections');
    const start = 1_800_000_000_000;
    const clock = createManualClock(start);
    const metrics = createMetrics({
      clock,
      windowMs: 6 * INTERVAL,
      slots: 6,
      sections: [whatsappDeliveryMetrics()],
    });
    await clock.advance(6 * INTERVAL); // a full window: per-minute rates then agree too
    const reporters = [0, 1].map((i) =>
      createRedisMetricsReporter(redis, {
        prefix,
        intervalMs: INTERVAL,
        clock,
        instanceId: `w${i}`,
        sections: [whatsappDeliveryMetrics()],
      }),
    );
    // Message i: accepted by worker i % 2, its statuses reported by the same worker (a
    // process follows the messages it sees); every 7th fails, the others are delivered.
    for (let i = 0; i < 60; i++) {
      const who = reporters[i % 2];
      const messageId = `wamid.${i}`;
      const sentAt = clock.now();
      const events: WhatsAppEvent[] = [
        { type: 'message_status', time: 0, messageId, status: 'accepted' },
        { type: 'message_status', time: 0, messageId, status: 'sent', timestampMs: sentAt },
        i % 7 === 0
          ? {
              type: 'message_status',
              time: 0,
              messageId,
              status: 'failed',
              timestampMs: sentAt + 1000,
            }
          : {
              type: 'message_status',
              time: 0,
              messageId,
              status: 'delivered',
              timestampMs: sentAt + 1000 * (1 + (i % 4)),
            },
      ];
      for (const e of events) {
        metrics.onEvent(e);
        who?.onEvent(e);
      }
      await clock.advance(500);
    }
    await Promise.all(reporters.map((r) => r.flush()));
    const fleet = await readFleetMetrics(redis, {
      prefix,
      intervalMs: INTERVAL,
      clock,
      windowMs: 6 * INTERVAL,
      sections: [whatsappDeliveryMetrics({ meanDeliveryLatencyMs: 1500 })],
    });
    const own = metrics.snapshot().messages;
    expect(own.delivered).toBe(51);
    // What each process is following right now is its own state: not in the fleet view.
    expect(fleet.snapshot.messages).toEqual({ ...own, tracked: 0, untracked: 0 });
    expect(fleet.snapshot.messages.deliveryLatency.p95Ms).toBe(4000);
    expect(fleet.health.breaches).toContainEqual(
      expect.objectContaining({ check: 'messages.meanDeliveryLatencyMs', threshold: 1500 }),
    );
    await Promise.all(reporters.map((r) => r.close()));
  });

  it('a window slides: intervals older than windowMs drop out, as in createMetrics', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('fleet-slide');
    const clock = createManualClock(50 * INTERVAL);
    const metrics = createMetrics({ clock, windowMs: 3 * INTERVAL, slots: 3 });
    const reporter = createRedisMetricsReporter(redis, { prefix, intervalMs: INTERVAL, clock });
    const random = seededRandom(7);
    for (let i = 0; i < 5; i++) {
      for (let c = 0; c <= i; c++) {
        for (const e of callEvents(random, clock.now())) {
          metrics.onEvent(e);
          reporter.onEvent(e);
        }
      }
      await reporter.flush();
      await clock.advance(INTERVAL);
    }
    const fleet = await readFleetMetrics(redis, {
      prefix,
      intervalMs: INTERVAL,
      clock,
      windowMs: 3 * INTERVAL,
    });
    expect(fleet.snapshot.calls).toEqual(metrics.snapshot().calls);
    expect(fleet.snapshot.calls.started).toBe(4 + 5); // the current interval is empty
    await reporter.close();
  });

  it('the timer flushes at each interval boundary, into the interval the counts belong to', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('fleet-timer');
    const clock = createManualClock(3_000 * INTERVAL + 1);
    const reporter = createRedisMetricsReporter(redis, { prefix, intervalMs: INTERVAL, clock });
    reporter.onEvent({ type: 'attempt_start', time: 0, attempt: 0, elapsedMs: 0 });
    await clock.advance(INTERVAL - 2);
    expect(await redis.keys(`{${prefix}:metrics}:*`)).toEqual([]);
    await clock.advance(1); // the boundary
    const key = `{${prefix}:metrics}:${INTERVAL}:3000`;
    await vi.waitFor(async () => expect(await redis.hget(key, 'c:calls_started')).toBe('1'));
    await reporter.close();

    // A flush that comes late (here: a timer that never fires) still puts each interval's
    // counts in their own bucket.
    let now = 4_000 * INTERVAL;
    const stalled = createRedisMetricsReporter(redis, {
      prefix,
      intervalMs: INTERVAL,
      clock: { now: () => now, sleep: () => new Promise<void>(() => {}) },
    });
    const start = (): void =>
      stalled.onEvent({ type: 'attempt_start', time: 0, attempt: 0, elapsedMs: 0 });
    start();
    now += INTERVAL;
    start();
    start();
    expect(await stalled.flush()).toBe(true);
    const calls = async (bucket: number) =>
      redis.hget(`{${prefix}:metrics}:${INTERVAL}:${bucket}`, 'c:calls_started');
    expect([await calls(4_000), await calls(4_001)]).toEqual(['1', '2']);
  });

  it('close() writes what is left; a reporter with nothing to say writes nothing', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('fleet-close');
    const idle = createRedisMetricsReporter(redis, { prefix });
    expect(await idle.flush()).toBe(false);
    await idle.close();
    expect(await redis.keys(`{${prefix}:metrics}:*`)).toEqual([]);

    const reporter = createRedisMetricsReporter(redis, { prefix });
    reporter.onEvent({ type: 'attempt_start', time: 0, attempt: 0, elapsedMs: 0 });
    reporter.onEvent({
      type: 'attempt_success',
      time: 0,
      attempt: 0,
      durationMs: 42,
      elapsedMs: 42,
    });
    await reporter.close();
    await reporter.close();
    const { snapshot } = await readFleetMetrics(redis, { prefix });
    expect(snapshot.calls.succeeded).toBe(1);
    expect(snapshot.latency).toMatchObject({ count: 1, p50Ms: 42, maxMs: 42 });
  });

  it('never throws into the caller: a clock or a client that throws is contained', async () => {
    const errors: unknown[] = [];
    const broken = {
      evalsha: () => {
        throw new Error('client exploded');
      },
      eval: () => Promise.reject(new Error('client exploded')),
    };
    const reporter = createRedisMetricsReporter(broken, {
      clock: {
        now: () => 0,
        sleep: (_ms, signal) =>
          new Promise((_, reject) => signal?.addEventListener('abort', reject)),
      },
      onFlushError: (e) => errors.push(e),
    });
    reporter.onEvent({ type: 'attempt_start', time: 0, attempt: 0, elapsedMs: 0 });
    expect(await reporter.flush()).toBe(false);
    expect(errors).toEqual([expect.objectContaining({ name: 'StoreUnavailableError' })]);
    await reporter.close();

    const throwing = createRedisMetricsReporter(connectRedis(), {
      clock: {
        now: () => {
          throw new Error('no time');
        },
        sleep: () => Promise.reject(new Error('stopped')),
      },
    });
    expect(() =>
      throwing.onEvent({ type: 'attempt_start', time: 0, attempt: 0, elapsedMs: 0 }),
    ).not.toThrow();
    await throwing.close();
  });

  it('rejects bad options naming the option and the value', () => {
    const redis = connectRedis();
    expect(() => createRedisMetricsReporter(redis, { intervalMs: 0 })).toThrow(/intervalMs.*0/);
    expect(() => createRedisMetricsReporter(redis, { intervalMs: 1.5 })).toThrow(RangeError);
    expect(() =>
      createRedisMetricsReporter(redis, { intervalMs: 10_000, bucketTtlMs: 5_000 }),
    ).toThrow(/bucketTtlMs.*5000/);
    expect(() => createRedisMetricsReporter(redis, { prefix: 'a{b}' })).toThrow(/prefix/);
    expect(() =>
      createRedisMetricsReporter(redis, { onFlushError: 'log' as unknown as () => void }),
    ).toThrow(/onFlushError/);
    expect(() => createRedisMetricsReporter({} as never)).toThrow(TypeError);
    return Promise.all([
      expect(readFleetMetrics(redis, { windowMs: Number.NaN })).rejects.toThrow(/windowMs.*NaN/),
      expect(readFleetMetrics(redis, { windowMs: 5, intervalMs: 10 })).rejects.toThrow(RangeError),
      expect(readFleetMetrics(redis, { thresholds: { retryRatio: 2 } })).rejects.toThrow(
        /thresholds.retryRatio/,
      ),
    ]);
  });
});

describeOwnRedis('fleet metrics when Redis fails', () => {
  it('a killed Redis loses only the interval whose write failed; the send path never throws', async () => {
    const server = await ownRedisServer({ appendonly: true });
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    await ready(redis);
    const prefix = uniquePrefix('fleet-kill');
    const clock = createManualClock(1_000 * INTERVAL);
    const errors: unknown[] = [];
    const reporter = createRedisMetricsReporter(redis, {
      prefix,
      intervalMs: INTERVAL,
      clock,
      commandTimeoutMs: 500,
      onFlushError: (e) => errors.push(e),
    });
    const calls = (n: number): void => {
      for (let i = 0; i < n; i++) {
        reporter.onEvent({ type: 'attempt_start', time: 0, attempt: 0, elapsedMs: 0 });
        reporter.onEvent({
          type: 'attempt_success',
          time: 0,
          attempt: 0,
          durationMs: 3,
          elapsedMs: 3,
        });
      }
    };
    calls(5);
    expect(await reporter.flush()).toBe(true);
    await clock.advance(INTERVAL);

    await server.kill();
    calls(7); // counted in memory while Redis is down: nothing throws
    expect(await reporter.flush()).toBe(false);
    expect(errors).toHaveLength(1);
    await clock.advance(INTERVAL);

    await server.start();
    await ready(redis);
    calls(11);
    expect(await reporter.flush()).toBe(true);
    const { snapshot } = await readFleetMetrics(redis, {
      prefix,
      intervalMs: INTERVAL,
      clock,
      windowMs: 6 * INTERVAL,
    });
    expect(snapshot.calls.started).toBe(5 + 11);
    await reporter.close();
  });

  it('a frozen Redis costs at most the interval in flight, and never a wait in the caller', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url);
    await ready(redis);
    const prefix = uniquePrefix('fleet-freeze');
    const clock = createManualClock(2_000 * INTERVAL);
    const errors: unknown[] = [];
    const reporter = createRedisMetricsReporter(redis, {
      prefix,
      intervalMs: INTERVAL,
      clock,
      commandTimeoutMs: 300,
      onFlushError: (e) => errors.push(e),
    });
    const calls = (n: number): void => {
      for (let i = 0; i < n; i++) {
        reporter.onEvent({ type: 'attempt_start', time: 0, attempt: 0, elapsedMs: 0 });
      }
    };
    calls(3);
    expect(await reporter.flush()).toBe(true);
    await clock.advance(INTERVAL);
    server.freeze();
    try {
      calls(4);
      expect(await reporter.flush()).toBe(false); // timed out: given up, not awaited
      expect(errors).toHaveLength(1);
      await clock.advance(INTERVAL);
      calls(5);
    } finally {
      server.thaw();
    }
    expect(await reporter.flush()).toBe(true);
    const { snapshot } = await readFleetMetrics(redis, {
      prefix,
      intervalMs: INTERVAL,
      clock,
      windowMs: 6 * INTERVAL,
    });
    // The timed-out write may still land once Redis thaws; nothing else is lost or doubled.
    expect([3 + 5, 3 + 4 + 5]).toContain(snapshot.calls.started);
    await reporter.close();
  });
});

describe('fleet metrics exports', () => {
  it('are on retrykit/redis', async () => {
    const redis = await import('../src/redis/index.js');
    expect(typeof redis.createRedisMetricsReporter).toBe('function');
    expect(typeof redis.readFleetMetrics).toBe('function');
  });
});
