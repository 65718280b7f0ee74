import { classifyFailure, UNKNOWN } from '../classify-failure.js';
import type { Classification, Classifier } from '../classify-types.js';
import { HeldError, hasDerivedClassification, isRetrykitError, PermanentError } from '../errors.js';

export {
  classifyStatus,
  headersOf,
  parseRetryAfter,
  statusOf,
} from '../classify-failure.js';

/** `error instanceof PermanentError`, `false` for a value that throws when inspected. */
function isPermanentError(error: unknown): error is PermanentError {
  try {
    return error instanceof PermanentError;
  } catch {
    return false;
  }
}

/**
 * The default classifier. Understands `PermanentError`, `HeldError` and `CircuitOpenError` (not
 * retried, `scope: 'account'`), responses and HTTP client errors with a
 * status, Node and undici network errors, `fetch failed`, and abort/timeout errors. Anything
 * else is `{ retryable: true, reason: 'unknown' }`: an unexpected throw is assumed transient,
 * as p-retry and cockatiel do, and capped by `maxAttempts`. So is a value that throws when
 * read (a Proxy, a throwing `code` getter): `classify` itself never throws.
 */
export function classify(error: unknown): Classification {
  try {
    if (error instanceof HeldError) return error.classification;
    if (isRetrykitError(error) && error.code === 'CIRCUIT_OPEN') return circuitOpen(error);
    if (!(error instanceof PermanentError)) return classifyFailure(error);
    // Set by every copy of retrykit from this version on; an older copy's may lack it.
    if (error.classification !== undefined) return error.classification;
    return {
      retryable: false,
      reason: error.cause === undefined ? 'unknown' : classify(error.cause).reason,
    };
  } catch {
    return UNKNOWN;
  }
}

/** The verdict on a `CircuitOpenError` (from any copy): not retried, not the message's fault. */
function circuitOpen(error: object): Classification {
  const retryAfterMs = (error as { retryAfterMs?: unknown }).retryAfterMs;
  return {
    retryable: false,
    reason: 'service_unavailable',
    scope: 'account',
    ...(typeof retryAfterMs === 'number' ? { retryAfterMs } : {}),
  };
}

/**
 * Chains classifiers: the first that returns a verdict wins, {@link classify} decides when none
 * does. The WhatsApp layer plugs in this way:
 *
 * @example
 * const classifier = composeClassifiers(classifyWhatsAppError);
 */
export function composeClassifiers(
  ...classifiers: Classifier[]
): (error: unknown) => Classification {
  return (error) => {
    // A classification the error was made with wins; one it derived from its cause at
    // construction is what `classify` would say, so the classifiers are asked first.
    if (
      isPermanentError(error) &&
      !hasDerivedClassification(error) &&
      error.classification !== undefined
    ) {
      return error.classification;
    }
    for (const classifier of classifiers) {
      const verdict = classifier(error);
      if (verdict !== undefined) return verdict;
    }
    return classify(error);
  };
}
