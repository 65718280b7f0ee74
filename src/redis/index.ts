export type { NodeRedisLike, RedisClientLike } from './client.js';
export { fromNodeRedis } from './client.js';
export type { RedisDeadLetterQueueOptions } from './dead-letter.js';
export { createRedisDeadLetterQueue, REDIS_DEAD_LETTER_DEFAULTS } from './dead-letter.js';
