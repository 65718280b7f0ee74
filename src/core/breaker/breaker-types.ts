import type { CircuitState } from '../events.js';

export type { CircuitState };

/**
 * The rules a {@link CircuitBreakerStore} applies, as `createCircuitBreaker` resolved them from
 * its options: every field is set and valid. Durations in milliseconds.
 */
export interface CircuitPolicy {
  /** Open once failures ÷ calls in the window reach this (with at least `minimumCalls`). */
  readonly failureRatio: number;
  /** Calls the window must hold before `failureRatio` is judged; `Infinity` turns it off. */
  readonly minimumCalls: number;
  /** Length of the sliding window calls are counted over. */
  readonly windowMs: number;
  /** Slots the window is divided into; it slides one slot (`windowMs / windowSlots`) at a time. */
  readonly windowSlots: number;
  /** Open after this many counted failures in a row; `Infinity` turns it off. */
  readonly consecutiveFailures: number;
  /** How long the first break lasts. */
  readonly breakDurationMs: number;
  /** Each break after a failed probe lasts `breakMultiplier` times the one before… */
  readonly breakMultiplier: number;
  /** …up to this. */
  readonly maxBreakDurationMs: number;
  /** Probe calls let through at once while half-open. */
  readonly halfOpenMaxCalls: number;
  /** Probe successes that close the circuit. */
  readonly halfOpenSuccesses: number;
  /** A probe that has not reported after this long frees its place (its worker died). */
  readonly probeTimeoutMs: number;
}

/** A change of state, as the store that made it reports it. */
export interface CircuitTransition {
  readonly from: CircuitState;
  readonly to: CircuitState;
}

/** Where one key's circuit stands, in the store's clock. */
export interface CircuitStatus {
  readonly state: CircuitState;
  /** When the break ends, in epoch milliseconds of the store's clock; set while `open`. */
  readonly openUntil: number | undefined;
  /** The store's clock when it answered, in milliseconds. */
  readonly time: number;
  /** The change this operation made, if it made one. */
  readonly transition?: CircuitTransition;
}

/** What an admitted call hands back with its outcome. */
export interface CircuitTicket {
  /** The circuit's generation when the call was admitted: a result from an older one is dropped. */
  readonly epoch: number;
  /** `true` for a half-open probe. */
  readonly probe: boolean;
}

/** The answer of {@link CircuitBreakerStore.admit}: a value, never an exception, for "not now". */
export type CircuitAdmission =
  | (CircuitStatus & { readonly ok: true; readonly ticket: CircuitTicket })
  | (CircuitStatus & {
      readonly ok: false;
      /**
       * Milliseconds until a call may be let through: the rest of the break; while every probe
       * place is taken, until the oldest probe's place would be freed by `probeTimeoutMs`, but
       * at most `breakDurationMs` (a probe usually reports much sooner).
       */
      readonly retryAfterMs: number;
    });

/**
 * How an admitted call ended, for the circuit: `failure` counts against it, `success` for it,
 * `ignored` neither (a throttle, a failure that is the message's own); each frees a probe place.
 */
export type CircuitOutcome = 'success' | 'failure' | 'ignored';

/**
 * Where circuit state lives: `createMemoryCircuitStore()` for one process,
 * `createRedisCircuitStore()` (`retrykit/redis`) for a fleet that opens and closes together.
 * Each operation is one atomic step of the state machine (`docs/circuit-breaker.md`).
 * `now` is the breaker's clock; a store with a clock of its own (Redis `TIME`) may ignore it.
 */
export interface CircuitBreakerStore {
  /** Lets a call through (closed, or a free probe place) or refuses it. */
  admit(
    key: string,
    policy: CircuitPolicy,
    now: number,
  ): CircuitAdmission | Promise<CircuitAdmission>;
  /** Records how an admitted call ended; may open or close the circuit. */
  record(
    key: string,
    policy: CircuitPolicy,
    ticket: CircuitTicket,
    outcome: CircuitOutcome,
    now: number,
  ): CircuitStatus | Promise<CircuitStatus>;
  /** Reads a key's circuit without changing it. */
  status(key: string, policy: CircuitPolicy, now: number): CircuitStatus | Promise<CircuitStatus>;
  /** Closes a key's circuit and forgets its counts. */
  reset(key: string): void | Promise<void>;
}
