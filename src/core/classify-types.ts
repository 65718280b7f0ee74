import type { BackoffOptions } from './backoff-types.js';

/** Why an attempt failed. */
export type Reason =
  | 'rate_limited'
  | 'server_error'
  | 'service_unavailable'
  | 'timeout'
  | 'network'
  | 'client_error'
  | 'schema_mismatch'
  | 'auth'
  | 'policy'
  | 'aborted'
  | 'unknown';

/** Every {@link Reason}, in a fixed order (for validation and per-reason counters). */
export const REASONS: readonly Reason[] = Object.freeze([
  'rate_limited',
  'server_error',
  'service_unavailable',
  'timeout',
  'network',
  'client_error',
  'schema_mismatch',
  'auth',
  'policy',
  'aborted',
  'unknown',
] satisfies Reason[]);

/** The verdict on one failure. */
export interface Classification {
  /** Whether trying again can help. */
  readonly retryable: boolean;
  /** Why it failed. */
  readonly reason: Reason;
  /**
   * The server asked to wait at least this long before the next try, in milliseconds
   * (`Retry-After`, `X-RateLimit-Reset`, or a platform rule such as WhatsApp's 133015).
   */
  readonly retryAfterMs?: number;
  /**
   * Backoff overrides for this failure (e.g. WhatsApp's 131056: 4^X seconds). Merged over the
   * retry's `backoff` and `backoffByReason`.
   */
  readonly backoff?: Partial<BackoffOptions>;
  /** Cap on total attempts for this kind of failure, when lower than the retry's `maxAttempts`. */
  readonly maxAttempts?: number;
  /**
   * The platform's or the OS's error code, when the failure carried one (WhatsApp's `130429`,
   * `ECONNRESET`). Not a retrykit error's `code`, which names its family.
   */
  readonly errorCode?: string | number;
  /**
   * Whose fault the failure is. `'message'`: this call's own (a bad recipient, a malformed
   * payload). `'account'`: the sender's or the platform's, for every call alike (an expired
   * access token, an account-wide block): `retry` then stops with a `HeldError` (or a
   * `CircuitOpenError`) instead of a `PermanentError`, so that the message is held and sent
   * again later rather than dead-lettered, and a circuit breaker counts it as a failure.
   * @default 'message'
   */
  readonly scope?: FailureScope;
}

/** Whose fault a failure is; see {@link Classification.scope}. */
export type FailureScope = 'message' | 'account';

/**
 * Turns a thrown value into a {@link Classification}, or `undefined` to let the next
 * classifier in {@link composeClassifiers} decide.
 */
export type Classifier = (error: unknown) => Classification | undefined;

/**
 * Receives throttling feedback from `retry`, e.g. an adaptive token bucket that slows down
 * when the server says "too many requests".
 */
export interface ThrottleFeedback {
  /** An attempt failed with reason `rate_limited`. */
  throttled(classification: Classification): void;
  /** An attempt succeeded. */
  succeeded(): void;
}
