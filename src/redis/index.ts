export type { NodeRedisLike, RedisClientLike } from './client.js';
export { fromNodeRedis } from './client.js';
