import { describe, expectTypeOf, it } from 'vitest';
import type { AdjustableRateLimiter } from '../index.js';
import type { RedisTokenBucket } from './index.js';

describe('Redis token bucket types', () => {
  it('changes a key’s rate asynchronously, as an AdjustableRateLimiter', () => {
    expectTypeOf<RedisTokenBucket>().toExtend<AdjustableRateLimiter>();
    expectTypeOf<RedisTokenBucket['setRate']>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<RedisTokenBucket['resetRate']>().returns.toEqualTypeOf<Promise<void>>();
  });
});
