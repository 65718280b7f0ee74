export type {
  CircuitAdmission,
  CircuitBreaker,
  CircuitBreakerOptions,
  CircuitBreakerStore,
  CircuitExecuteOptions,
  CircuitOutcome,
  CircuitPermission,
  CircuitPermit,
  CircuitPolicy,
  CircuitState,
  CircuitStatus,
  CircuitTicket,
  CircuitTransition,
} from './core/breaker/index.js';
export {
  CIRCUIT_BREAKER_DEFAULTS,
  CircuitOpenError,
  createCircuitBreaker,
  isCircuitFailure,
} from './core/breaker/index.js';
export type {
  Bulkhead,
  BulkheadOptions,
  BulkheadRunOptions,
  BulkheadStats,
} from './core/bulkhead/index.js';
export {
  BULKHEAD_DEFAULTS,
  BulkheadRejectedError,
  createBulkhead,
} from './core/bulkhead/index.js';
export type {
  Classification,
  Classifier,
  FailureScope,
  Reason,
  ThrottleFeedback,
} from './core/classify-types.js';
export { REASONS } from './core/classify-types.js';
export type { Clock, RandomSource } from './core/clock.js';
export { systemClock } from './core/clock.js';
export type {
  DeadLetterAttempt,
  DeadLetterEntry,
  DeadLetterGroup,
  DeadLetterOrigin,
  DeadLetterPattern,
  DeadLetterQueue,
  DeadLetterSummary,
  ListOptions,
  NewDeadLetter,
  RedriveOptions,
  RedriveReport,
  RedriveSelector,
  RetryRecord,
  RetryRecordOptions,
  Sink,
  SummarizedDeadLetter,
  ToDeadLetterOptions,
} from './core/dead-letter/index.js';
export {
  createRetryRecord,
  deadLetterCode,
  InvalidRecordError,
  parseRetryRecord,
  recordFailure,
  serializeRetryRecord,
  summarizeDeadLetters,
  toDeadLetter,
  validateRetryRecord,
} from './core/dead-letter/index.js';
export type {
  ApplyStatusResult,
  BeginDeliveryOptions,
  BeginDeliveryResult,
  ClaimDueOptions,
  ClaimedDelivery,
  DeliveryAttempt,
  DeliveryAttemptInput,
  DeliveryRecord,
  DeliveryStatusReport,
  DeliveryStore,
  RecordAttemptOptions,
  RecordAttemptResult,
} from './core/delivery/index.js';
export type { AttemptFailure, RetrykitErrorCode, StopReason } from './core/errors.js';
export {
  HeldError,
  isRetrykitError,
  PermanentError,
  permanent,
  RetryError,
  RetrykitError,
  StoreUnavailableError,
  shouldHold,
} from './core/errors.js';
export type {
  AnyEvent,
  AttemptFailureEvent,
  AttemptStartEvent,
  AttemptSuccessEvent,
  BreakerTransitionEvent,
  DeadLetterEvent,
  EventAttributes,
  EventListener,
  EventScope,
  ExtensionEvent,
  GiveUpEvent,
  IdempotencyHitEvent,
  JobAttemptFailureEvent,
  JobAttemptStartEvent,
  JobAttemptSuccessEvent,
  JobEventScope,
  JobRetryScheduledEvent,
  QueueDepthEvent,
  RateLimitWaitEvent,
  RetrykitEvent,
  RetryScheduledEvent,
} from './core/events.js';
export { combineListeners, scopeListener } from './core/events.js';
export type {
  ClaimOptions,
  ClaimResult,
  IdempotencyStore,
  IdempotentContext,
  IdempotentOptions,
  NotRecordedInfo,
  StoredFailure,
} from './core/idempotency/index.js';
export {
  IDEMPOTENCY_DEFAULTS,
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  idempotent,
} from './core/idempotency/index.js';
export type {
  AttachedSection,
  BreakerSummary,
  HealthBreach,
  HealthReport,
  HealthResolution,
  HealthThresholds,
  InstrumentOptions,
  JobsSnapshot,
  LatencySummary,
  MetricsHandle,
  MetricsOptions,
  MetricsSection,
  MetricsSnapshot,
  MetricsWindow,
  QueueSummary,
  SectionBreach,
  SectionCounter,
  SectionLatency,
  SectionSnapshots,
} from './core/metrics/index.js';
export { createMetrics } from './core/metrics/index.js';
export type {
  AcquireOptions,
  AcquireResult,
  AdaptiveOptions,
  AdjustableRateLimiter,
  KeyRate,
  RateLimiter,
  TokenBucketBaseOptions,
  TokenBucketLimits,
} from './core/rate-limit/index.js';
export {
  RateLimitAbortedError,
  RateLimitTimeoutError,
} from './core/rate-limit/index.js';
export type {
  AttemptContext,
  BackoffOptions,
  DelayContext,
  EnvRetryOptions,
  GiveUpInfo,
  JitterContext,
  JitterFunction,
  JitterKind,
  PerCallOptions,
  RetryBudget,
  RetryBudgetOptions,
  RetryEvent,
  RetryFunction,
  RetryOptions,
} from './core/retry/index.js';
export {
  backoffFromEnv,
  backoffSchedule,
  classify,
  classifyStatus,
  composeClassifiers,
  computeDelay,
  createRetry,
  createRetryBudget,
  parseRetryAfter,
  retry,
} from './core/retry/index.js';
export type { StoreErrorPolicy } from './core/store-error.js';
export type { MemoryCircuitStore, MemoryCircuitStoreOptions } from './memory/circuit-store.js';
export { createMemoryCircuitStore } from './memory/circuit-store.js';
export type { MemoryDeadLetterQueueOptions } from './memory/dead-letter.js';
export { createMemoryDeadLetterQueue } from './memory/dead-letter.js';
export type { MemoryDeliveryStore, MemoryDeliveryStoreOptions } from './memory/delivery-store.js';
export { createMemoryDeliveryStore } from './memory/delivery-store.js';
export type {
  MemoryIdempotencyStore,
  MemoryIdempotencyStoreOptions,
} from './memory/idempotency.js';
export { createMemoryIdempotencyStore } from './memory/idempotency.js';
export type { MemoryTokenBucket, MemoryTokenBucketOptions } from './memory/token-bucket.js';
export { createMemoryTokenBucket } from './memory/token-bucket.js';
