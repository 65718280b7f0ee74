import { classifyFailure } from './classify-failure.js';
import type { Classification, Reason } from './classify-types.js';

/** Every `code` a {@link RetrykitError} can carry. */
export type RetrykitErrorCode =
  | 'RETRY_EXHAUSTED'
  | 'PERMANENT'
  | 'STORE_UNAVAILABLE'
  | 'RATE_LIMIT_TIMEOUT'
  | 'RATE_LIMIT_ABORTED'
  | 'IDEMPOTENCY_IN_PROGRESS'
  | 'IDEMPOTENCY_KEY_REUSE'
  | 'INVALID_RECORD'
  | 'WEBHOOK_PAYLOAD'
  | 'WHATSAPP_API'
  | 'BULKHEAD_REJECTED'
  | 'CIRCUIT_OPEN'
  | 'HELD';

const BRAND = Symbol.for('retrykit.error');

/**
 * The static `Symbol.hasInstance` of a retrykit error class, so that `instanceof` works across
 * copies of retrykit (a duplicate install, or the ESM build beside the CJS one), whose classes
 * are distinct: an error is recognised by the `Symbol.for` brand every copy sets, its `name`
 * and its `code` (without a `name`: any retrykit error). A class derived outside retrykit does not
 * own the method and keeps the usual prototype check.
 */
export function brandCheck(name?: string, code?: RetrykitErrorCode): (value: unknown) => boolean {
  return function hasInstance(this: abstract new (...args: never[]) => unknown, value) {
    if (!Object.hasOwn(this, Symbol.hasInstance)) {
      return Function.prototype[Symbol.hasInstance].call(this, value);
    }
    return (
      isRetrykitError(value) && (name === undefined || (value.name === name && value.code === code))
    );
  };
}

/**
 * Base class of every error retrykit throws. `instanceof` works across copies of retrykit
 * (a duplicate install, or the ESM and CJS builds in one process) for this class and every
 * retrykit error class: each reads the brand, `name` and `code` that every copy sets.
 */
export class RetrykitError extends Error {
  override readonly name: string = 'RetrykitError';
  readonly code: RetrykitErrorCode;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck();

  constructor(code: RetrykitErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** `true` for any error thrown by any installed copy of retrykit. */
export function isRetrykitError(error: unknown): error is RetrykitError {
  return typeof error === 'object' && error !== null && BRAND in error;
}

/** One failed attempt, as kept in {@link RetryError.errors}. */
export interface AttemptFailure {
  /** 0-based attempt number. */
  readonly attempt: number;
  /** What the attempt threw. */
  readonly error: unknown;
  /** Why it failed, as classified. */
  readonly reason: Reason;
  /** Clock time of the failure, in milliseconds (the retry clock's `now()`). */
  readonly time: number;
}

/**
 * Why a call stopped trying for good (the `stopReason` of a `give_up` event, of `onGiveUp` and,
 * for the four that throw it, of {@link RetryError}):
 * - `permanent`: a failure not worth retrying (thrown as a `PermanentError`);
 * - `max_attempts`: `maxAttempts` (or the failure's own cap) reached;
 * - `max_elapsed`: `maxElapsedMs` would be passed before the next try;
 * - `retry_after_exceeds_elapsed`: the server asked for a wait (`Retry-After`, a platform's
 *   retry hint) longer than what was left of `maxElapsedMs`;
 * - `budget_exhausted`: the retry budget refused another try;
 * - `aborted`: the caller's `signal` aborted;
 * - `max_deferrals`: a BullMQ job was put back for throttles `maxDeferrals` times already
 *   (`wrapProcessor`; a deferral spends no attempt).
 * - `circuit_open`: a circuit breaker refused the attempt, or the failure opened it (thrown as
 *   a `CircuitOpenError`: send again once it closes);
 * - `held`: a failure that is not the message's (`scope: 'account'`, e.g. an expired token)
 *   and that trying again now cannot fix (thrown as a `HeldError`: send again later).
 */
export type StopReason =
  | 'permanent'
  | 'max_attempts'
  | 'max_elapsed'
  | 'retry_after_exceeds_elapsed'
  | 'budget_exhausted'
  | 'aborted'
  | 'max_deferrals'
  | 'circuit_open'
  | 'held';

/** The {@link StopReason}s a {@link RetryError} carries. */
export type RetryErrorStopReason = Exclude<
  StopReason,
  'permanent' | 'aborted' | 'max_deferrals' | 'circuit_open' | 'held'
>;

/**
 * Thrown by `retry` when a retryable failure persists: attempts ran out, the time budget
 * ran out, or the retry budget refused another try. `cause` is the last error.
 */
export class RetryError extends RetrykitError {
  override readonly name = 'RetryError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck('RetryError', 'RETRY_EXHAUSTED');

  /** How many times the function was called. */
  readonly attempts: number;
  /** Every failure, oldest first. */
  readonly errors: readonly AttemptFailure[];
  /** Why retrying stopped. */
  readonly stopReason: RetryErrorStopReason;
  /** The classified reason of the last failure. */
  readonly reason: Reason;

  constructor(stopReason: RetryErrorStopReason, errors: readonly AttemptFailure[], cause: unknown) {
    super(
      'RETRY_EXHAUSTED',
      `Gave up after ${errors.length} attempt${errors.length === 1 ? '' : 's'} (${stopReason}): ${describe(cause)}`,
      { cause },
    );
    this.attempts = errors.length;
    this.errors = errors;
    this.stopReason = stopReason;
    this.reason = errors[errors.length - 1]?.reason ?? 'unknown';
  }
}

/**
 * Marks a failure as permanent: `retry` stops at once and rethrows it. Throw it from your own
 * code (or use {@link permanent}); `retry` also wraps non-retryable errors in it, with the
 * original as `cause` and its classification attached.
 */
export class PermanentError extends RetrykitError {
  override readonly name = 'PermanentError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck('PermanentError', 'PERMANENT');

  /**
   * The classification that made the failure permanent: the classifier's verdict when `retry`
   * produced the error, the one given to the constructor, or else, for a `permanent(error)` of
   * your own, `{ retryable: false, reason }` with the reason the default classifier gives its
   * `cause` (`'unknown'` without one). A classifier passed to `composeClassifiers` may still
   * refine the latter.
   */
  readonly classification: Classification;
  /** How many attempts ran, this one included, when `retry` produced it. */
  readonly attempts: number | undefined;
  /**
   * Every failure `retry` saw, oldest first, this one last, when `retry` produced it: the
   * transient failures before a permanent one stay on record (dead letters keep them).
   */
  readonly errors: readonly AttemptFailure[] | undefined;
  /**
   * What `retry`'s `classify` threw when asked about `cause`, if it threw: the failure is then
   * not retried, and `cause` stays the failure itself.
   */
  readonly classifyError: unknown;

  constructor(
    cause: unknown,
    options: {
      message?: string;
      classification?: Classification;
      attempts?: number;
      errors?: readonly AttemptFailure[];
      classifyError?: unknown;
    } = {},
  ) {
    super(
      'PERMANENT',
      options.message ??
        ('classifyError' in options
          ? `${describe(cause)} (not retried: classify threw ${describe(options.classifyError)})`
          : describe(cause)),
      { cause },
    );
    if (options.classification === undefined) {
      this.classification = fromCause(cause);
      Object.defineProperty(this, DERIVED, { value: true });
    } else {
      this.classification = options.classification;
    }
    this.attempts = options.attempts;
    this.errors = options.errors;
    this.classifyError = options.classifyError;
  }
}

/** Marks a `PermanentError` whose classification was derived from its cause, for every copy. */
const DERIVED = Symbol.for('retrykit.PermanentError.derivedClassification');

/** The classification of a `PermanentError` made without one: its cause's reason, not retryable. */
function fromCause(cause: unknown): Classification {
  if (cause === undefined) return { retryable: false, reason: 'unknown' };
  let reason: Reason;
  try {
    reason =
      cause instanceof PermanentError
        ? (cause.classification?.reason ?? 'unknown')
        : classifyFailure(cause).reason;
  } catch {
    reason = 'unknown';
  }
  return { retryable: false, reason };
}

/**
 * @internal Whether `error`'s classification was derived from its cause at construction (a
 * `permanent(error)` of the caller's own) rather than given by a classifier.
 */
export function hasDerivedClassification(error: PermanentError): boolean {
  return Object.hasOwn(error, DERIVED);
}

/** Wraps `error` so that `retry` does not try again. */
export function permanent(error: unknown): PermanentError {
  return error instanceof PermanentError ? error : new PermanentError(error);
}

/**
 * `retry` stopped on a failure that is not the message's: its classification has
 * `scope: 'account'` (an expired access token, an account-wide block) and trying again now
 * cannot fix it. Hold the message and send it again later (once the token is refreshed, the
 * block lifted, the circuit closed); do not dead-letter it. `cause` is the failure.
 */
export class HeldError extends RetrykitError {
  override readonly name = 'HeldError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck('HeldError', 'HELD');

  /** The classification that said the failure is account-wide. */
  readonly classification: Classification;
  /** How many attempts ran, this one included. */
  readonly attempts: number;
  /** Every failure `retry` saw, oldest first, this one last. */
  readonly errors: readonly AttemptFailure[];
  /**
   * Milliseconds to wait before sending again, when the failure said (its classification's
   * `retryAfterMs`); `undefined` when nobody knows (a token must be refreshed first).
   */
  readonly retryAfterMs: number | undefined;

  constructor(
    cause: unknown,
    details: {
      classification: Classification;
      attempts: number;
      errors: readonly AttemptFailure[];
    },
  ) {
    super('HELD', `Held, not the message's fault: ${describe(cause)}`, { cause });
    this.classification = details.classification;
    this.attempts = details.attempts;
    this.errors = details.errors;
    this.retryAfterMs = details.classification.retryAfterMs;
  }
}

/**
 * `true` for a failure to hold and send again later rather than dead-letter: a
 * {@link HeldError} (an account-wide failure) or a `CircuitOpenError` (a breaker refused the
 * call), from any copy of retrykit. Dead-letter code checks it before writing an entry.
 *
 * @example
 * catch (error) {
 *   if (shouldHold(error)) await queue.add('send', payload, { delay: 60_000 });
 *   else await dlq.add(toDeadLetter(error, { payload, source: 'app' }));
 * }
 */
export function shouldHold(error: unknown): boolean {
  return isRetrykitError(error) && (error.code === 'HELD' || error.code === 'CIRCUIT_OPEN');
}

/**
 * A backing store (Redis, a queue) could not be reached or answered an error. Never read as
 * "not seen before" or "allowed" unless the caller opted in.
 */
export class StoreUnavailableError extends RetrykitError {
  override readonly name = 'StoreUnavailableError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck('StoreUnavailableError', 'STORE_UNAVAILABLE');

  /** The operation that failed, e.g. `claim` or `tryAcquire`. */
  readonly operation: string;

  constructor(operation: string, cause: unknown) {
    super('STORE_UNAVAILABLE', `Store unavailable during ${operation}: ${describe(cause)}`, {
      cause,
    });
    this.operation = operation;
  }
}

/**
 * A readable one-line description of anything thrown. Never throws: a value that throws when
 * read (a Proxy, a throwing getter) is described as such.
 */
export function describe(value: unknown): string {
  try {
    if (value instanceof Error) return value.message || value.name;
    if (typeof value === 'string') return value;
    try {
      return JSON.stringify(value) ?? String(value);
    } catch {
      return String(value);
    }
  } catch {
    return `an unreadable ${typeof value}`;
  }
}
