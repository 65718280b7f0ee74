// What this feature offers to the rest of retrykit: `idempotent()`, the store interface and argument checks shared by the store adapters.
export {
  checkClaim,
  checkCompleteOptions,
  checkKey,
  checkToken,
  checkTtl,
  fencingToken,
} from './idempotency-args.js';
export type { ClaimOptions, ClaimResult, IdempotencyStore } from './idempotency-types.js';
export type {
  IdempotentContext,
  IdempotentOptions,
  NotRecordedInfo,
  StoredFailure,
} from './idempotent.js';
export {
  IDEMPOTENCY_DEFAULTS,
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  idempotent,
} from './idempotent.js';
