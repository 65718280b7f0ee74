import { describe, expect, it } from 'vitest';
import {
  createCircuitBreaker,
  createMemoryCircuitStore,
  StoreUnavailableError,
} from '../src/index.js';
import { createRedisCircuitStore } from '../src/redis/index.js';
import { circuitStoreContract } from './support/circuit-store-contract.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';
import { freePort } from './support/redis-server.js';

circuitStoreContract('memory circuit store', () => {
  const store = createMemoryCircuitStore();
  return [store, store];
});

describeRedis('Redis', () => {
  circuitStoreContract('Redis circuit store, two connections (client clock)', () => {
    const prefix = uniquePrefix('circuit');
    return [
      createRedisCircuitStore(connectRedis(), { prefix, timeSource: 'client' }),
      createRedisCircuitStore(connectRedis(), { prefix, timeSource: 'client' }),
    ];
  });
});

describeRedis('Redis circuit store on the server clock', () => {
  it('opens for a second connection with the break measured by Redis TIME', async () => {
    const prefix = uniquePrefix('circuit-time');
    const options = { consecutiveFailures: 1, breakDurationMs: 60_000 };
    const a = createCircuitBreaker({
      ...options,
      store: createRedisCircuitStore(connectRedis(), { prefix }),
    });
    const b = createCircuitBreaker({
      ...options,
      store: createRedisCircuitStore(connectRedis(), { prefix }),
    });
    await a
      .execute('n', () => Promise.reject(Object.assign(new Error('503'), { status: 503 })))
      .catch(() => 0);
    const refused = await b.tryAcquire('n');
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.retryAfterMs).toBeGreaterThan(55_000);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(Math.abs(refused.openUntil - 60_000 - Date.now())).toBeLessThan(5_000);
  });
});

describe('Redis circuit store when Redis is away', () => {
  const away = async () => {
    const port = await freePort();
    return connectRedis(`redis://127.0.0.1:${port}`, {
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      lazyConnect: true,
      retryStrategy: () => null,
    });
  };

  it("'fail' refuses the call with a StoreUnavailableError, without calling it", async () => {
    const breaker = createCircuitBreaker({ store: createRedisCircuitStore(await away()) });
    let called = false;
    const error = await breaker
      .execute('n', () => {
        called = true;
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(called).toBe(false);
  });

  it("'proceed' lets the call through as if closed", async () => {
    const breaker = createCircuitBreaker({
      store: createRedisCircuitStore(await away(), { onStoreError: 'proceed' }),
    });
    await expect(breaker.execute('n', () => 'sent')).resolves.toBe('sent');
    await expect(breaker.execute('n', () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect((await breaker.status('n')).state).toBe('closed');
  });

  it('validates its options, naming the option and the value', () => {
    const redis = connectRedis();
    expect(() => createRedisCircuitStore(redis, { timeSource: 'server' as never })).toThrow(
      /timeSource must be one of 'redis', 'client', got "server"/,
    );
    expect(() => createRedisCircuitStore(redis, { onStoreError: 'allow' as never })).toThrow(
      /use onStoreError: 'proceed'/,
    );
    expect(() => createRedisCircuitStore(redis, { commandTimeoutMs: -1 })).toThrow(
      /commandTimeoutMs .* got -1/,
    );
    expect(() => createRedisCircuitStore({} as never)).toThrow(/client must be a Redis client/);
  });
});
