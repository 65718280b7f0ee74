export type {
  BackoffOptions,
  DelayContext,
  JitterContext,
  JitterFunction,
  JitterKind,
} from './core/backoff.js';
export { backoffSchedule, computeDelay } from './core/backoff.js';
export type { RetryBudget, RetryBudgetOptions } from './core/budget.js';
export { createRetryBudget } from './core/budget.js';
export { classify, classifyStatus, composeClassifiers, parseRetryAfter } from './core/classify.js';
export type { Classification, Classifier, Reason } from './core/classify-types.js';
export { REASONS } from './core/classify-types.js';
export type { Clock, RandomSource } from './core/clock.js';
export { systemClock } from './core/clock.js';
export type { Sink, ToDeadLetterOptions } from './core/dead-letter.js';
export { toDeadLetter } from './core/dead-letter.js';
export type {
  DeadLetterAttempt,
  DeadLetterEntry,
  DeadLetterQueue,
  ListOptions,
  NewDeadLetter,
  RedriveOptions,
  RedriveReport,
  RedriveSelector,
} from './core/dead-letter-types.js';
export type { EnvRetryOptions } from './core/env.js';
export { backoffFromEnv } from './core/env.js';
export type { AttemptFailure, RetrykitErrorCode, StopReason } from './core/errors.js';
export {
  isRetrykitError,
  PermanentError,
  permanent,
  RetryError,
  RetrykitError,
  StoreUnavailableError,
} from './core/errors.js';
export type {
  AnyEvent,
  AttemptFailureEvent,
  AttemptStartEvent,
  AttemptSuccessEvent,
  DeadLetterEvent,
  EventAttributes,
  EventListener,
  EventScope,
  ExtensionEvent,
  GiveUpEvent,
  IdempotencyHitEvent,
  QueueDepthEvent,
  RateLimitWaitEvent,
  RetrykitEvent,
  RetryScheduledEvent,
} from './core/events.js';
export { combineListeners, scopeListener } from './core/events.js';
export type { ClaimOptions, ClaimResult, IdempotencyStore } from './core/idempotency-types.js';
export type {
  IdempotentContext,
  IdempotentOptions,
  NotRecordedInfo,
  StoredFailure,
} from './core/idempotent.js';
export {
  IDEMPOTENCY_DEFAULTS,
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  idempotent,
} from './core/idempotent.js';
export type {
  HealthBreach,
  HealthReport,
  HealthResolution,
  HealthThresholds,
  MetricsHandle,
  MetricsOptions,
  MetricsSnapshot,
  QueueSummary,
} from './core/metrics.js';
export { createMetrics } from './core/metrics.js';
export type {
  AttachedSection,
  InstrumentOptions,
  LatencySummary,
  MetricsSection,
  MetricsWindow,
  SectionBreach,
  SectionCounter,
  SectionLatency,
  SectionSnapshots,
} from './core/metrics-section.js';
export {
  RateLimitAbortedError,
  RateLimitTimeoutError,
} from './core/rate-limit-errors.js';
export type {
  AcquireOptions,
  AcquireResult,
  AdjustableRateLimiter,
  KeyRate,
  RateLimiter,
} from './core/rate-limit-types.js';
export type {
  AttemptContext,
  GiveUpInfo,
  PerCallOptions,
  RetryEvent,
  RetryFunction,
  RetryOptions,
  ThrottleFeedback,
} from './core/retry.js';
export { createRetry, retry } from './core/retry.js';
export type { RetryRecord, RetryRecordOptions } from './core/retry-record.js';
export {
  createRetryRecord,
  InvalidRecordError,
  parseRetryRecord,
  recordFailure,
  serializeRetryRecord,
  validateRetryRecord,
} from './core/retry-record.js';
export type { StoreErrorPolicy } from './core/store-error.js';
export type {
  AdaptiveOptions,
  TokenBucketBaseOptions,
  TokenBucketLimits,
} from './core/token-bucket-options.js';
export type { MemoryDeadLetterQueueOptions } from './memory/dead-letter.js';
export { createMemoryDeadLetterQueue } from './memory/dead-letter.js';
export type {
  MemoryIdempotencyStore,
  MemoryIdempotencyStoreOptions,
} from './memory/idempotency.js';
export { createMemoryIdempotencyStore } from './memory/idempotency.js';
export type { MemoryTokenBucket, MemoryTokenBucketOptions } from './memory/token-bucket.js';
export { createMemoryTokenBucket } from './memory/token-bucket.js';
