import { expect, it } from 'vitest';
import { createCircuitBreaker, createRetry, StoreUnavailableError } from '../../src/index.js';
import { createRedisCircuitStore } from '../../src/redis/index.js';
import { connectRedis, describeOwnRedis, ownRedisServer, ready } from '../support/redis.js';

const unavailable = () => Object.assign(new Error('HTTP 503'), { status: 503 });

describeOwnRedis('circuit breaker under Redis faults', () => {
  it('a paused Redis refuses the call within commandTimeoutMs (fail) or lets it through uncounted (proceed)', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0 });
    await ready(redis);
    const failing = createCircuitBreaker({
      store: createRedisCircuitStore(redis, { prefix: 'fault:circuit', commandTimeoutMs: 200 }),
      consecutiveFailures: 1,
    });
    const proceeding = createCircuitBreaker({
      store: createRedisCircuitStore(redis, {
        prefix: 'fault:circuit',
        commandTimeoutMs: 200,
        onStoreError: 'proceed',
      }),
      consecutiveFailures: 1,
    });
    await server.pause(700, 'ALL');
    const started = performance.now();
    let called = false;
    const error = await failing
      .execute('n', () => {
        called = true;
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(called).toBe(false);
    expect(performance.now() - started).toBeLessThan(700);
    await expect(proceeding.execute('n', () => Promise.reject(unavailable()))).rejects.toThrow(
      'HTTP 503',
    );
    // Answered once the pause ends.
    await redis.ping();
    // The failure made while Redis was away was not counted: the circuit is still closed.
    expect((await failing.status('n')).state).toBe('closed');
    await expect(failing.execute('n', () => 'sent')).resolves.toBe('sent');
  });

  it('retry treats an unreachable circuit store as a transient failure and stops after its attempts', async () => {
    const server = await ownRedisServer();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 0 });
    await ready(redis);
    const breaker = createCircuitBreaker({
      store: createRedisCircuitStore(redis, { prefix: 'fault:circuit2', commandTimeoutMs: 100 }),
    });
    const send = createRetry({ breaker, maxAttempts: 2, backoff: { initialDelayMs: 1 } });
    server.freeze();
    let called = 0;
    const error = await send(() => {
      called++;
    }).catch((e: unknown) => e);
    server.thaw();
    expect(called).toBe(0);
    expect(error).toMatchObject({ name: 'RetryError', stopReason: 'max_attempts', attempts: 2 });
    expect((error as Error).cause).toBeInstanceOf(StoreUnavailableError);
  });
});
