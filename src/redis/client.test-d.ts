import type { Cluster as Cluster5, Redis as Redis5 } from 'ioredis';
import type { Cluster as Cluster6, Redis as Redis6 } from 'ioredis6';
import { describe, expectTypeOf, it } from 'vitest';
import type { RedisClientLike } from './index.js';

describe('RedisClientLike', () => {
  it('takes ioredis 5 and 6 clients as they are, in either reply mapping of ioredis 6', () => {
    expectTypeOf<Redis5>().toExtend<RedisClientLike>();
    expectTypeOf<Cluster5>().toExtend<RedisClientLike>();
    expectTypeOf<Redis6>().toExtend<RedisClientLike>();
    expectTypeOf<Redis6<'resp3'>>().toExtend<RedisClientLike>();
    expectTypeOf<Cluster6>().toExtend<RedisClientLike>();
  });
});
