export type { NodeRedisLike, RedisClientLike } from './client.js';
export { fromNodeRedis } from './client.js';
export type { RedisTokenBucket, RedisTokenBucketOptions } from './token-bucket.js';
export { createRedisTokenBucket, REDIS_TOKEN_BUCKET_DEFAULTS } from './token-bucket.js';
