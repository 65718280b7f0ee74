import { createMemoryIdempotencyStore } from '../src/index.js';
import { createRedisIdempotencyStore } from '../src/redis/index.js';
import { createManualClock } from '../src/testing/index.js';
import { idempotencyStoreContract } from './support/idempotency-contract.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';
import { advanceRedisTime } from './support/redis-time.js';

idempotencyStoreContract('memory', async () => {
  const clock = createManualClock(1_000_000);
  return {
    store: createMemoryIdempotencyStore({ maxEntries: 1000, clock }),
    advance: (ms) => clock.advance(ms),
  };
});

describeRedis('redis', () => {
  idempotencyStoreContract('redis', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('idem-contract');
    return {
      store: createRedisIdempotencyStore(redis, { prefix }),
      advance: (ms) => advanceRedisTime(redis, prefix, ms),
    };
  });

  idempotencyStoreContract('redis, scripts only (a client without set)', async () => {
    const redis = connectRedis();
    const prefix = uniquePrefix('idem-contract-scripts');
    const scriptsOnly = { evalsha: redis.evalsha.bind(redis), eval: redis.eval.bind(redis) };
    return {
      store: createRedisIdempotencyStore(scriptsOnly, { prefix }),
      advance: (ms) => advanceRedisTime(redis, prefix, ms),
    };
  });
});
