import type { Classification, Reason } from '../classify-types.js';
import type { Clock } from '../clock.js';
import type { EventListener } from '../events.js';
import { assertFunction, assertInteger, assertNumber, showValue } from '../validate.js';
import type { CircuitBreakerStore, CircuitPolicy } from './breaker-types.js';

/** Options of `createCircuitBreaker`. */
export interface CircuitBreakerOptions {
  /**
   * Where circuit state lives: `createMemoryCircuitStore()` for one process,
   * `createRedisCircuitStore(redis)` from `retrykit/redis` for every worker of a fleet.
   */
  readonly store: CircuitBreakerStore;
  /**
   * Open once this share of the calls in the window failed (counted failures ÷ counted
   * calls), when the window holds at least `minimumCalls`. Between 0 (exclusive) and 1.
   * @default 0.5
   */
  readonly failureRatio?: number;
  /**
   * Calls the window must hold before `failureRatio` is judged, so that 1 failure in 2 calls
   * does not open it. `Infinity` judges on `consecutiveFailures` only.
   * @default 20
   */
  readonly minimumCalls?: number;
  /**
   * Length of the sliding window the ratio is computed over, in milliseconds.
   * @default 30_000
   */
  readonly windowMs?: number;
  /**
   * Slots the window is divided into: it slides one slot (`windowMs / windowSlots`) at a time;
   * memory per key is proportional to it. Between 1 and 100.
   * @default 10
   */
  readonly windowSlots?: number;
  /**
   * Open after this many counted failures in a row, whatever the window holds (cockatiel's
   * `ConsecutiveBreaker`). `Infinity` judges on the ratio only.
   * @default 10
   */
  readonly consecutiveFailures?: number;
  /**
   * How long the circuit stays open before letting probes through, in milliseconds.
   * @default 30_000
   */
  readonly breakDurationMs?: number;
  /**
   * Each break that follows a failed probe lasts this many times the one before (1: every
   * break is `breakDurationMs`), up to `maxBreakDurationMs`; closing starts over.
   * @default 2
   */
  readonly breakMultiplier?: number;
  /**
   * The longest break, in milliseconds.
   * @default 300_000 (5 minutes)
   */
  readonly maxBreakDurationMs?: number;
  /**
   * Probe calls let through at once while half-open (others are refused with
   * `CircuitOpenError`). With a shared store, for the whole fleet.
   * @default 1
   */
  readonly halfOpenMaxCalls?: number;
  /**
   * Probe successes that close the circuit; one probe failure opens it again.
   * @default 1
   */
  readonly halfOpenSuccesses?: number;
  /**
   * A probe that has not reported after this many milliseconds frees its place (its worker
   * crashed or hung), so that a lost probe cannot keep the circuit half-open for ever.
   * @default 60_000
   */
  readonly probeTimeoutMs?: number;
  /**
   * Whether a failure counts against the circuit. By default failures that say the service
   * is unwell count (`server_error`, `service_unavailable`, `timeout`, `network`, `auth`, and
   * anything with `scope: 'account'`); a throttle (`rate_limited`: the limiter's business),
   * a failure that is one message's own (`client_error`, `policy`, `schema_mismatch`), an
   * abort and an `unknown` failure do not. See `isCircuitFailure`.
   * @default isCircuitFailure
   *
   * @example
   * // Count 429s too:
   * { isFailure: (c) => c.reason === 'rate_limited' || isCircuitFailure(c) }
   */
  readonly isFailure?: (classification: Classification, error: unknown) => boolean;
  /**
   * Classifies what `execute`'s function threw, for `isFailure`. (With `retry`'s `breaker`
   * option, `retry`'s own `classify` decides.)
   * @default classify
   */
  readonly classify?: (error: unknown) => Classification;
  /** Receives a `breaker_transition` event for every change of state this process makes. */
  readonly onEvent?: EventListener;
  /** Time source. @default systemClock */
  readonly clock?: Clock;
}

/** The defaults of {@link CircuitBreakerOptions}. */
export const CIRCUIT_BREAKER_DEFAULTS = Object.freeze({
  failureRatio: 0.5,
  minimumCalls: 20,
  windowMs: 30_000,
  windowSlots: 10,
  consecutiveFailures: 10,
  breakDurationMs: 30_000,
  breakMultiplier: 2,
  maxBreakDurationMs: 300_000,
  halfOpenMaxCalls: 1,
  halfOpenSuccesses: 1,
  probeTimeoutMs: 60_000,
});

const COUNTED: ReadonlySet<Reason> = new Set<Reason>([
  'server_error',
  'service_unavailable',
  'timeout',
  'network',
  'auth',
]);

/**
 * The default `isFailure` of a circuit breaker: `true` for `server_error`,
 * `service_unavailable`, `timeout`, `network` and `auth`, and for any failure with
 * `scope: 'account'`; `false` for throttles, a message's own failures, aborts and `unknown`.
 */
export function isCircuitFailure(classification: Classification): boolean {
  return classification.scope === 'account' || COUNTED.has(classification.reason);
}

function countOrInfinity(name: string, value: unknown): number {
  return value === Number.POSITIVE_INFINITY ? value : assertInteger(name, value, 1);
}

/** Validates the policy fields of `options` once; each error names the option and the value. */
export function resolveCircuitPolicy(options: CircuitBreakerOptions): CircuitPolicy {
  const d = CIRCUIT_BREAKER_DEFAULTS;
  const failureRatio = assertNumber('failureRatio', options.failureRatio ?? d.failureRatio, 0, 1);
  if (failureRatio === 0) {
    throw new RangeError(`failureRatio must be above 0, got ${showValue(failureRatio)}`);
  }
  const breakDurationMs = assertNumber(
    'breakDurationMs',
    options.breakDurationMs ?? d.breakDurationMs,
    1,
  );
  const maxBreakDurationMs = assertNumber(
    'maxBreakDurationMs',
    options.maxBreakDurationMs ?? Math.max(d.maxBreakDurationMs, breakDurationMs),
    breakDurationMs,
  );
  const policy: CircuitPolicy = {
    failureRatio,
    minimumCalls: countOrInfinity('minimumCalls', options.minimumCalls ?? d.minimumCalls),
    windowMs: assertNumber('windowMs', options.windowMs ?? d.windowMs, 1),
    windowSlots: assertInteger('windowSlots', options.windowSlots ?? d.windowSlots, 1, 100),
    consecutiveFailures: countOrInfinity(
      'consecutiveFailures',
      options.consecutiveFailures ?? d.consecutiveFailures,
    ),
    breakDurationMs,
    breakMultiplier: assertNumber(
      'breakMultiplier',
      options.breakMultiplier ?? d.breakMultiplier,
      1,
      100,
    ),
    maxBreakDurationMs,
    halfOpenMaxCalls: assertInteger(
      'halfOpenMaxCalls',
      options.halfOpenMaxCalls ?? d.halfOpenMaxCalls,
      1,
    ),
    halfOpenSuccesses: assertInteger(
      'halfOpenSuccesses',
      options.halfOpenSuccesses ?? d.halfOpenSuccesses,
      1,
    ),
    probeTimeoutMs: assertNumber('probeTimeoutMs', options.probeTimeoutMs ?? d.probeTimeoutMs, 1),
  };
  if (
    policy.minimumCalls === Number.POSITIVE_INFINITY &&
    policy.consecutiveFailures === Number.POSITIVE_INFINITY
  ) {
    throw new RangeError(
      'minimumCalls and consecutiveFailures are both Infinity: the circuit could never open',
    );
  }
  for (const name of ['isFailure', 'classify', 'onEvent'] as const) {
    if (options[name] !== undefined) assertFunction(name, options[name]);
  }
  return Object.freeze(policy);
}
