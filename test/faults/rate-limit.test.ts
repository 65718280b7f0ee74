import { expect, it } from 'vitest';
import { createMemoryTokenBucket, StoreUnavailableError } from '../../src/index.js';
import { createRedisTokenBucket } from '../../src/redis/index.js';
import {
  connectRedis,
  describeOwnRedis,
  ownRedisServer,
  ready,
  uniquePrefix,
} from '../support/redis.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

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

describeOwnRedis('createRedisTokenBucket when Redis is in trouble', () => {
  const limits = { capacity: 1, refillPerSecond: 0.01, commandTimeoutMs: 300 } as const;

  it('does not double-charge when ioredis re-sends a call whose reply was lost', async () => {
    const server = await ownRedisServer();
    const proxy = await startTcpProxy(server.port);
    const redis = connectRedis(proxy.url, { maxRetriesPerRequest: 3 });
    /** Drops the reply to `call` and cuts the connection: ioredis sends the call again. */
    const withLostReply = async <T>(call: () => Promise<T>): Promise<T> => {
      proxy.dropReplies(1);
      const answer = call();
      await proxy.dropped();
      proxy.cut();
      return answer;
    };
    const direct = connectRedis(server.url);
    const prefix = uniquePrefix('resend');
    const limiter = createRedisTokenBucket(redis, {
      prefix,
      capacity: 5,
      refillPerSecond: 0.001,
      commandTimeoutMs: 5_000,
    });
    await limiter.tryAcquire('warm-up');
    expect(await withLostReply(() => limiter.tryAcquire('k', 2))).toEqual({
      ok: true,
      remaining: 3,
    });
    const [tokens] = ((await direct.get(`{${prefix}:k}`)) ?? '').split(' ').map(Number);
    expect(tokens).toBeCloseTo(3, 2);

    const careless = createRedisTokenBucket(redis, {
      prefix,
      capacity: 5,
      refillPerSecond: 0.001,
      dedupe: false,
      commandTimeoutMs: 5_000,
    });
    expect(await withLostReply(() => careless.tryAcquire('other', 2))).toEqual({
      ok: true,
      remaining: 1,
    });
  });

  it("'fail' fails fast with StoreUnavailableError when the server is stopped, frozen or paused", async () => {
    const server = await ownRedisServer();
    const redis = quiet(connectRedis(server.url, { maxRetriesPerRequest: 0 }));
    const limiter = createRedisTokenBucket(redis, { ...limits, prefix: uniquePrefix('fail') });
    expect((await limiter.tryAcquire('k')).ok).toBe(true);

    server.freeze();
    let started = Date.now();
    await expect(limiter.tryAcquire('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(limiter.acquire('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(5_000);
    server.thaw();
    await new Promise((resolve) => setTimeout(resolve, 100));

    const admin = quiet(connectRedis(server.url));
    await admin.client('PAUSE', 3000, 'ALL');
    started = Date.now();
    await expect(limiter.tryAcquire('k')).rejects.toMatchObject({
      name: 'StoreUnavailableError',
      operation: 'tryAcquire',
    });
    expect(Date.now() - started).toBeLessThan(2_500);

    await server.stop();
    await expect(limiter.tryAcquire('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(limiter.acquire('k', 1, { maxWaitMs: 100 })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("'proceed' grants while the server is down, and limits again once it is back", async () => {
    const server = await ownRedisServer();
    const redis = quiet(connectRedis(server.url, { maxRetriesPerRequest: 0 }));
    const limiter = createRedisTokenBucket(redis, {
      ...limits,
      prefix: uniquePrefix('proceed'),
      onStoreError: 'proceed',
    });
    expect(await limiter.tryAcquire('k')).toEqual({ ok: true, remaining: 0 });
    expect((await limiter.tryAcquire('k')).ok).toBe(false);
    await server.stop();
    expect(await limiter.tryAcquire('k')).toEqual({ ok: true, remaining: 0 });
    expect(await limiter.acquire('k')).toBeGreaterThanOrEqual(0);
    await server.start();
    // The restarted server is empty (no persistence) and has no scripts: NOSCRIPT → EVAL.
    await waitForReconnect(
      async () => (await limiter.tryAcquire('k')).ok && !(await limiter.tryAcquire('k')).ok,
    );
  });

  it('a fallback limiter takes over while the server is down', async () => {
    const server = await ownRedisServer();
    const redis = quiet(
      connectRedis(server.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false }),
    );
    const fallback = createMemoryTokenBucket({ capacity: 2, refillPerSecond: 0.01 });
    const limiter = createRedisTokenBucket(redis, {
      ...limits,
      prefix: uniquePrefix('fallback'),
      onStoreError: fallback,
    });
    await server.stop();
    expect(await limiter.tryAcquire('k')).toEqual({ ok: true, remaining: 1 });
    expect(await limiter.acquire('k')).toBeGreaterThanOrEqual(0);
    expect((await limiter.tryAcquire('k')).ok).toBe(false);
    await expect(limiter.acquire('k', 1, { maxWaitMs: 50 })).rejects.toMatchObject({
      code: 'RATE_LIMIT_TIMEOUT',
    });
    server.freeze();
  });
});

async function waitForReconnect(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Still reconnecting.
    }
    if (Date.now() > deadline) throw new Error('the limiter did not recover after the restart');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Connection errors are what these tests provoke: keep ioredis from logging each one. */
function quiet<T extends { on(event: 'error', listener: () => void): unknown }>(client: T): T {
  client.on('error', () => {});
  return client;
}
