import type { Classification } from '../classify-types.js';
import { describe, isRetrykitError } from '../errors.js';
import type { DeadLetterAttempt } from './dead-letter-types.js';

function isCode(value: unknown): value is string | number {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

/**
 * The platform's or the OS's error code a failure carries (`130429`, `ECONNRESET`), if any:
 * the classification's `errorCode`, else an `errorCode` field (e.g. `WhatsAppApiError`), else a
 * `code` field (Node's system errors), looking through `cause` (a retrykit error's own `code`
 * names its family, so it is skipped).
 * Never throws.
 */
export function errorCodeOf(
  error: unknown,
  classification?: Classification,
): string | number | undefined {
  if (classification?.errorCode !== undefined) return classification.errorCode;
  try {
    for (let e = error, depth = 0; depth < 3; depth++) {
      if (typeof e !== 'object' || e === null) return undefined;
      const { errorCode, code } = e as { errorCode?: unknown; code?: unknown };
      if (isCode(errorCode)) return errorCode;
      if (!isRetrykitError(e) && isCode(code)) return code;
      e = (e as { cause?: unknown }).cause;
    }
  } catch {
    // A value that throws when read (a Proxy, a throwing getter) carries no readable code.
  }
  return undefined;
}

/** One failed attempt as a dead letter (or a retry record) keeps it. */
export function attemptOf(
  error: unknown,
  classification: Classification,
  at: string,
): DeadLetterAttempt {
  const errorCode = errorCodeOf(error, classification);
  const message = describe(error);
  return errorCode === undefined
    ? { message, reason: classification.reason, at }
    : { message, errorCode, reason: classification.reason, at };
}
