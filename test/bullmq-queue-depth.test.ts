import { Queue } from 'bullmq';
import { afterEach, expect, it, vi } from 'vitest';
import { sampleQueueDepth } from '../src/bullmq/index.js';
import { createMetrics, type RetrykitEvent } from '../src/index.js';
import { createManualClock } from '../src/testing/index.js';
import { until } from './support/rate-limiter-contract.js';
import {
  connectRedis,
  describeOwnRedis,
  describeRedis,
  ownRedisServer,
  redisUrl,
  uniquePrefix,
} from './support/redis.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

function queueOn(url: string, name: string, options: { maxRetriesPerRequest?: number } = {}) {
  const prefix = uniquePrefix(`depth-${name}`).replaceAll(':', '-');
  const queue = new Queue(name, {
    connection: connectRedis(url, { maxRetriesPerRequest: null, ...options }),
    prefix,
  });
  closers.push(() => queue.close().catch(() => {}));
  return queue;
}

const depths = (events: readonly RetrykitEvent[]) =>
  events.flatMap((e) => (e.type === 'queue_depth' ? [[e.queue, e.depth]] : []));

describeRedis('sampleQueueDepth on a BullMQ queue', () => {
  it('reports waiting + prioritized + delayed jobs at once, then every intervalMs', async () => {
    const queue = queueOn(redisUrl, 'sends');
    await queue.addBulk([
      { name: 'a', data: {} },
      { name: 'b', data: {}, opts: { priority: 3 } },
      { name: 'c', data: {}, opts: { delay: 60_000 } },
    ]);
    const clock = createManualClock(1_700_000_000_000);
    const metrics = createMetrics({ clock });
    const events: RetrykitEvent[] = [];
    const sampler = sampleQueueDepth(queue, {
      onEvent: (e) => {
        events.push(e);
        metrics.onEvent(e);
      },
      intervalMs: 5_000,
      clock,
    });
    closers.unshift(() => sampler.stop());
    await until(() => clock.pending().length > 0);
    expect(depths(events)).toEqual([['sends', 3]]);
    expect(clock.pending()).toEqual([clock.now() + 5_000]);

    await queue.add('d', {});
    await clock.advance(5_000);
    await until(() => events.length === 2);
    expect(depths(events)).toEqual([
      ['sends', 3],
      ['sends', 4],
    ]);
    expect(metrics.snapshot().queues.sends).toEqual({
      depth: 4,
      risingSamples: 1,
      sampledAt: clock.now(),
    });
    expect(await sampler.sample()).toBe(4);
  });

  it('never runs two samples at once: a slow Redis delays the next, sample() joins the one running', async () => {
    const queue = queueOn(redisUrl, 'slow');
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let running = 0;
    let most = 0;
    let calls = 0;
    const real = queue.getJobCounts.bind(queue);
    vi.spyOn(queue, 'getJobCounts').mockImplementation(async (...types) => {
      calls++;
      running++;
      most = Math.max(most, running);
      await gate;
      try {
        return await real(...types);
      } finally {
        running--;
      }
    });
    const clock = createManualClock(0);
    const events: RetrykitEvent[] = [];
    const sampler = sampleQueueDepth(queue, {
      onEvent: (e) => events.push(e),
      intervalMs: 1_000,
      clock,
    });
    closers.unshift(() => sampler.stop());
    const joined = sampler.sample();
    await clock.advance(10_000);
    expect(calls).toBe(1);
    expect(clock.pending()).toEqual([]);
    open();
    expect(await joined).toBe(0);
    await until(() => clock.pending().length > 0);
    expect(calls).toBe(1);
    expect(most).toBe(1);
    expect(events).toHaveLength(1);
  });

  it('stops on its signal and once the queue closes; its default timer keeps no process alive', async () => {
    const clock = createManualClock(0);
    const controller = new AbortController();
    const events: RetrykitEvent[] = [];
    const a = queueOn(redisUrl, 'signal');
    sampleQueueDepth(a, {
      onEvent: (e) => events.push(e),
      intervalMs: 1_000,
      clock,
      signal: controller.signal,
    });
    await until(() => clock.pending().length === 1);
    controller.abort();
    await until(() => clock.pending().length === 0);

    const b = queueOn(redisUrl, 'closing');
    sampleQueueDepth(b, { onEvent: (e) => events.push(e), intervalMs: 1_000, clock });
    await until(() => clock.pending().length === 1);
    await b.close();
    await clock.advance(1_000);
    await clock.advance(1_000);
    expect(clock.pending()).toEqual([]);
    expect(depths(events)).toEqual([
      ['signal', 0],
      ['closing', 0],
    ]);

    const timers: NodeJS.Timeout[] = [];
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    setTimeoutSpy.mockImplementation(((fn: () => void, ms?: number) => {
      const timer = realSetTimeout(fn, ms);
      if (ms === 60_000) timers.push(timer);
      return timer;
    }) as typeof setTimeout);
    const c = queueOn(redisUrl, 'unref');
    const sampler = sampleQueueDepth(c, { onEvent: () => {}, intervalMs: 60_000 });
    await until(() => timers.length === 1);
    setTimeoutSpy.mockRestore();
    expect(timers[0]?.hasRef()).toBe(false);
    await sampler.stop();
  });

  it('rejects bad options, naming the option and the value', () => {
    const queue = queueOn(redisUrl, 'options');
    const onEvent = () => {};
    expect(() => sampleQueueDepth({} as never, { onEvent })).toThrow(
      /^queue must be a BullMQ Queue, got/,
    );
    expect(() => sampleQueueDepth(queue, { onEvent: undefined as never })).toThrow(
      'onEvent must be a function, got undefined',
    );
    expect(() => sampleQueueDepth(queue, { onEvent, intervalMs: 0 })).toThrow(
      /^intervalMs must be a finite number >= 1, got 0$/,
    );
    expect(() => sampleQueueDepth(queue, { onEvent, states: [] })).toThrow(
      'states must be a non-empty array of job states, got []',
    );
  });
});

const realSetTimeout = globalThis.setTimeout;

describeOwnRedis('sampleQueueDepth when Redis fails', () => {
  it('reports the error to onError, never throws from the timer, and samples again after', async () => {
    const server = await ownRedisServer();
    const queue = queueOn(server.url, 'down', { maxRetriesPerRequest: 0 });
    // BullMQ logs a connection error nobody listens for; the sampler's onError is the report.
    queue.on('error', () => {});
    await queue.add('a', {});
    const clock = createManualClock(0);
    const events: RetrykitEvent[] = [];
    const errors: unknown[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    closers.push(async () => process.off('unhandledRejection', onUnhandled));
    const sampler = sampleQueueDepth(queue, {
      onEvent: (e) => events.push(e),
      onError: (error) => errors.push(error),
      intervalMs: 1_000,
      clock,
    });
    closers.unshift(() => sampler.stop());
    await until(() => clock.pending().length === 1);
    expect(depths(events)).toEqual([['down', 1]]);
    await server.stop();
    await clock.advance(1_000);
    await until(() => errors.length === 1, 10_000);
    await until(() => clock.pending().length === 1);
    await clock.advance(1_000);
    await until(() => errors.length === 2, 10_000);
    expect(errors[0]).toBeInstanceOf(Error);
    expect(events).toHaveLength(1);
    expect(unhandled).toEqual([]);
  });
});
