export type { Serializer } from '../redis/serializer.js';
export type {
  PgClientLike,
  PgPoolClientLike,
  PgPoolLike,
  PgQueryable,
  PgQueryConfigLike,
  PgQueryResultLike,
  PreparedStatementsOption,
} from './client.js';
export type { PostgresDeadLetterQueueOptions } from './dead-letter.js';
export { createPostgresDeadLetterQueue } from './dead-letter.js';
export type {
  PostgresDeliveryStore,
  PostgresDeliveryStoreOptions,
} from './delivery-store.js';
export {
  createPostgresDeliveryStore,
  POSTGRES_DELIVERY_STORE_DEFAULTS,
} from './delivery-store.js';
export type { PostgresIdempotencyStore, PostgresIdempotencyStoreOptions } from './idempotency.js';
export { createPostgresIdempotencyStore, POSTGRES_IDEMPOTENCY_DEFAULTS } from './idempotency.js';
export type { PostgresSchemaOptions, PostgresTableOptions } from './schema.js';
export { createSchema, POSTGRES_TABLE_DEFAULTS, schemaSql } from './schema.js';
export type {
  IdempotentTransactionOptions,
  IsolationLevel,
  TransactionClient,
} from './transaction.js';
export { idempotentTransaction } from './transaction.js';
