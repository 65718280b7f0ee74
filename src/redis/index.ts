export type { RedisCircuitStoreOptions } from './circuit-store.js';
export { createRedisCircuitStore } from './circuit-store.js';
export type { NodeRedisLike, RedisClientLike } from './client.js';
export { fromNodeRedis } from './client.js';
export type { RedisDeadLetterQueueOptions } from './dead-letter.js';
export { createRedisDeadLetterQueue } from './dead-letter.js';
export type { RedisDeliveryStoreOptions } from './delivery-store.js';
export { createRedisDeliveryStore } from './delivery-store.js';
export type { RedisIdempotencyStoreOptions } from './idempotency.js';
export { createRedisIdempotencyStore } from './idempotency.js';
export type {
  FleetInterval,
  FleetMetrics,
  FleetMetricsKeyOptions,
  ReadFleetMetricsOptions,
  RedisMetricsReporter,
  RedisMetricsReporterOptions,
} from './metrics-reporter.js';
export { createRedisMetricsReporter, readFleetMetrics } from './metrics-reporter.js';
export type { WaitForReplicas } from './replicas.js';
export type { Serializer } from './serializer.js';
export { jsonSerializer } from './serializer.js';
export type { RedisTokenBucket, RedisTokenBucketOptions } from './token-bucket.js';
export { createRedisTokenBucket } from './token-bucket.js';
