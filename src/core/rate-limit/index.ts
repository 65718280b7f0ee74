// What this feature offers to the rest of retrykit: token-bucket maths, options and errors shared by the limiter adapters.
export { RateLimitAbortedError, RateLimitTimeoutError } from './rate-limit-errors.js';
export type {
  AcquireOptions,
  AcquireResult,
  AdjustableRateLimiter,
  KeyRate,
  RateLimiter,
} from './rate-limit-types.js';
export { cubicRate, msUntil, refill } from './token-bucket-math.js';
export type {
  AdaptiveOptions,
  ResolvedAdaptiveOptions,
  TokenBucketBaseOptions,
  TokenBucketLimits,
} from './token-bucket-options.js';
export {
  granted,
  NO_FEEDBACK,
  refused,
  rejectKey,
  rejectTokens,
  resolveAdaptive,
  validateLimits,
  validTokens,
} from './token-bucket-options.js';
