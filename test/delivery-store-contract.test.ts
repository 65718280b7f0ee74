import { expect, it } from 'vitest';
import { createMemoryDeliveryStore } from '../src/index.js';
import { createRedisDeliveryStore } from '../src/redis/index.js';
import { createManualClock } from '../src/testing/index.js';
import { deliveryStoreContract } from './support/delivery-store-contract.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';
import { advanceDeliveryTime } from './support/redis-time.js';

const TTL = 60_000;

deliveryStoreContract('memory', async () => {
  const clock = createManualClock(1_000_000);
  return {
    store: createMemoryDeliveryStore({ maxEntries: 1_000, recordTtlMs: TTL, clock }),
    advance: (ms) => clock.advance(ms),
    recordTtlMs: TTL,
  };
});

describeRedis('redis', () => {
  deliveryStoreContract('redis', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('delivery-contract');
    return {
      store: createRedisDeliveryStore(redis, { prefix, recordTtlMs: TTL }),
      advance: (ms) => advanceDeliveryTime(redis, prefix, ms),
      recordTtlMs: TTL,
    };
  });

  it('keeps a record and its external-id index under one hash tag, with the record TTL', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('delivery-slot');
    const store = createRedisDeliveryStore(redis, { prefix, recordTtlMs: TTL });
    await store.begin('order:1', { to: '1' });
    await store.recordAttempt('order:1', { attemptId: 'a', externalId: 'wamid.1', at: 1 });
    const keys = (await redis.keys(`*${prefix}*`)).sort();
    expect(keys).toEqual([`{${prefix}:deliveries}:r:order:1`, `{${prefix}:deliveries}:x:wamid.1`]);
    for (const k of keys) {
      const left = await redis.pttl(k);
      expect(left).toBeGreaterThan(TTL - 5_000);
      expect(left).toBeLessThanOrEqual(TTL);
    }
  });

  it('keeps the due index and the alias under the same hash tag, with the record TTL', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('delivery-due-slot');
    const store = createRedisDeliveryStore(redis, { prefix, recordTtlMs: TTL });
    await store.begin('order:2', { to: '2' }, { alias: 'tag2', dueInMs: 5_000 });
    const keys = (await redis.keys(`*${prefix}*`)).sort();
    expect(keys).toEqual([
      `{${prefix}:deliveries}:a:tag2`,
      `{${prefix}:deliveries}:due`,
      `{${prefix}:deliveries}:r:order:2`,
    ]);
    for (const k of keys) {
      const left = await redis.pttl(k);
      expect(left).toBeGreaterThan(TTL - 5_000);
      expect(left).toBeLessThanOrEqual(TTL);
    }
    const [member, score] = await redis.zrange(
      `{${prefix}:deliveries}:due`,
      '0',
      '-1',
      'WITHSCORES',
    );
    expect(member).toBe('order:2');
    expect(Number(score)).toBe((await store.get('order:2'))?.dueAt);
  });

  it('validates its options, naming the option and the value', () => {
    const redis = connectRedis();
    expect(() => createRedisDeliveryStore({} as never, { prefix: 'p' })).toThrow(
      /client must be a Redis client/,
    );
    expect(() => createRedisDeliveryStore(redis, undefined as never)).toThrow(/options object/);
    expect(() => createRedisDeliveryStore(redis, { prefix: '' })).toThrow(
      /prefix must not be empty/,
    );
    expect(() => createRedisDeliveryStore(redis, { prefix: 'a{b}' })).toThrow(/'\{' or '\}'/);
    expect(() => createRedisDeliveryStore(redis, { prefix: 'p', recordTtlMs: 0 })).toThrow(
      /recordTtlMs must be .*, got 0/,
    );
    expect(() => createRedisDeliveryStore(redis, { prefix: 'p', commandTimeoutMs: -1 })).toThrow(
      /commandTimeoutMs must be .*, got -1/,
    );
    expect(() => createRedisDeliveryStore(redis, { prefix: 'p', ttlMs: 1 } as never)).toThrow(
      /recordTtlMs/,
    );
  });
});
