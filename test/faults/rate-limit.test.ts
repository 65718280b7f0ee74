import { expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/index.js';
import { createRedisTokenBucket } from '../../src/redis/index.js';
import { connectRedis, describeOwnRedis, ownRedisServer, ready } from '../support/redis.js';

describeOwnRedis('rate limiter under Redis faults', () => {
  it('setRate on a paused Redis fails fast with StoreUnavailableError; repeating it is safe', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0 });
    await ready(redis);
    const limiter = createRedisTokenBucket(redis, {
      prefix: 'fault:rate',
      capacity: 2,
      refillPerSecond: 1,
      commandTimeoutMs: 200,
    });
    await server.pause(700, 'ALL');
    const started = performance.now();
    const error = await limiter
      .setRate('k', { refillPerSecond: 10, capacity: 5 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({ operation: 'setRate' });
    expect(performance.now() - started).toBeLessThan(600);
    // The timed-out call may still run when the pause ends; running it again is the same change.
    await new Promise((resolve) => setTimeout(resolve, 700));
    await limiter.setRate('k', { refillPerSecond: 10, capacity: 5 });
    expect(await limiter.tryAcquire('k', 5)).toEqual({ ok: true, remaining: 0 });
    // The next token comes at the new rate, 100 ms (less the real time since, on Redis's clock).
    const next = await limiter.tryAcquire('k');
    expect(next.ok).toBe(false);
    expect(!next.ok && next.retryAfterMs).toBeGreaterThan(50);
    expect(!next.ok && next.retryAfterMs).toBeLessThanOrEqual(100);
  });
});
