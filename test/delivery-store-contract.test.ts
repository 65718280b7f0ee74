import { createMemoryDeliveryStore } from '../src/index.js';
import { createRedisDeliveryStore } from '../src/redis/index.js';
import { createManualClock } from '../src/testing/index.js';
import { deliveryStoreContract } from './support/delivery-store-contract.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';
import { advanceRedisTime } from './support/redis-time.js';

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
      advance: (ms) => advanceRedisTime(redis, prefix, ms),
      recordTtlMs: TTL,
    };
  });
});
