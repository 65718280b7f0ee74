export type { NodeRedisLike, RedisClientLike } from './client.js';
export { fromNodeRedis } from './client.js';
export type { RedisDeadLetterQueueOptions } from './dead-letter.js';
export { createRedisDeadLetterQueue, REDIS_DEAD_LETTER_DEFAULTS } from './dead-letter.js';
export type { RedisIdempotencyStoreOptions } from './idempotency.js';
export { createRedisIdempotencyStore, REDIS_IDEMPOTENCY_DEFAULTS } from './idempotency.js';
export type { Serializer } from './serializer.js';
export { jsonSerializer } from './serializer.js';
