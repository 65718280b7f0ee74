import { createMemoryTokenBucket } from '../src/index.js';
import { createRedisTokenBucket } from '../src/redis/index.js';
import { rateLimiterContract } from './support/rate-limiter-contract.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';

rateLimiterContract('memory token bucket', (limits, clock, onEvent) =>
  createMemoryTokenBucket({ ...limits, clock, ...(onEvent === undefined ? {} : { onEvent }) }),
);

describeRedis('Redis', () => {
  rateLimiterContract('Redis token bucket (client clock)', (limits, clock, onEvent) =>
    createRedisTokenBucket(connectRedis(), {
      ...limits,
      clock,
      ...(onEvent === undefined ? {} : { onEvent }),
      timeSource: 'client',
      prefix: uniquePrefix('contract'),
    }),
  );
});
