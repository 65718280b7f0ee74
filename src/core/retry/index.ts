// What this feature offers to the rest of retrykit: the retry executor, backoff, retry budgets, classification and environment presets.
export type {
  BackoffOptions,
  DelayContext,
  DelayDecision,
  JitterContext,
  JitterFunction,
  JitterKind,
} from './backoff.js';
export {
  backoffSchedule,
  computeDelay,
  delayAfterFailure,
  delayFor,
  JITTER_KINDS,
  resolveBackoff,
  resolveBackoffPolicy,
} from './backoff.js';
export type { RetryBudget, RetryBudgetOptions } from './budget.js';
export { createRetryBudget } from './budget.js';
export {
  classify,
  classifyStatus,
  composeClassifiers,
  headersOf,
  parseRetryAfter,
  statusOf,
} from './classify.js';
export type { EnvRetryOptions } from './env.js';
export { backoffFromEnv } from './env.js';
export type {
  AttemptContext,
  GiveUpInfo,
  PerCallOptions,
  RetryEvent,
  RetryFunction,
  RetryOptions,
} from './retry.js';
export { createRetry, RETRY_DEFAULTS, retry } from './retry.js';
