import type { Classification } from '../classify-types.js';
import { type Clock, systemClock } from '../clock.js';
import { type EventListener, emit } from '../events.js';
import { classify as defaultClassify } from '../retry/classify.js';
import { assertFunction, assertKey } from '../validate.js';
import { CircuitOpenError } from './breaker-errors.js';
import {
  type CircuitBreakerOptions,
  isCircuitFailure,
  resolveCircuitPolicy,
} from './breaker-options.js';
import type {
  CircuitBreakerStore,
  CircuitPolicy,
  CircuitState,
  CircuitStatus,
  CircuitTicket,
} from './breaker-types.js';

/** An admitted call's place in the circuit: report how it ended, once. */
export interface CircuitPermit {
  readonly key: string;
  /** `true` for a half-open probe. */
  readonly probe: boolean;
  /** The call succeeded. Resolves with the circuit after it. */
  success(): Promise<CircuitStatus>;
  /**
   * The call failed: counted against the circuit when `isFailure` says so (with
   * `classification` when given, else the breaker's `classify(error)`), otherwise ignored.
   * Resolves with the circuit after it.
   */
  failure(error: unknown, classification?: Classification): Promise<CircuitStatus>;
}

/** The answer of {@link CircuitBreaker.tryAcquire}: a value, never an exception, for "not now". */
export type CircuitPermission =
  | { readonly ok: true; readonly permit: CircuitPermit }
  | {
      readonly ok: false;
      /** `open`, or `half_open` when every probe place is taken. */
      readonly state: CircuitState;
      /** Milliseconds until a call may be let through. */
      readonly retryAfterMs: number;
      /** When that is, in epoch milliseconds of the store's clock. */
      readonly openUntil: number;
    };

/** Options of {@link CircuitBreaker.execute}. */
export interface CircuitExecuteOptions {
  /** Rejects at once with its reason if already aborted; passed on to the function. */
  readonly signal?: AbortSignal;
}

/** A keyed circuit breaker made by {@link createCircuitBreaker}. */
export interface CircuitBreaker {
  /**
   * Runs `fn` if `key`'s circuit lets it through and records how it ended; rejects with a
   * {@link CircuitOpenError} at once, without calling `fn`, when it does not. `fn`'s own
   * failure is rethrown unchanged.
   */
  execute<T>(
    key: string,
    fn: (ctx: { readonly signal: AbortSignal }) => T | PromiseLike<T>,
    options?: CircuitExecuteOptions,
  ): Promise<T>;
  /** Asks `key`'s circuit to let one call through, for callers that run the call themselves. */
  tryAcquire(key: string): Promise<CircuitPermission>;
  /** `key`'s circuit as the store holds it, unchanged. */
  status(key: string): Promise<CircuitStatus>;
  /** Closes `key`'s circuit and forgets its counts (after refreshing an access token, say). */
  reset(key: string): Promise<void>;
  /** The rules the breaker applies, resolved from its options. */
  readonly policy: CircuitPolicy;
}

/**
 * A circuit breaker per key (a phone number ID, a host): it opens on a failure ratio over a
 * sliding window (with a minimum number of calls) or on consecutive failures, refuses calls
 * fast with a {@link CircuitOpenError} while open, lets `halfOpenMaxCalls` probes through
 * after the break (which grows by `breakMultiplier` while probes keep failing) and closes
 * after `halfOpenSuccesses` of them succeed. Throttles and a message's own failures do not
 * count (see `isCircuitFailure`). Emits `breaker_transition` for each change it makes.
 *
 * @example
 * const breaker = createCircuitBreaker({ store: createMemoryCircuitStore() });
 * const send = createRetry({ breaker, classify });
 * await send(() => whatsapp.post(message), { breakerKey: phoneNumberId });
 */
export function createCircuitBreaker(options: CircuitBreakerOptions): CircuitBreaker {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('options must be an object with a store');
  }
  const store = options.store as CircuitBreakerStore | undefined;
  if (
    typeof store !== 'object' ||
    store === null ||
    typeof store.admit !== 'function' ||
    typeof store.record !== 'function'
  ) {
    throw new TypeError(
      'store must be a CircuitBreakerStore (createMemoryCircuitStore() or createRedisCircuitStore())',
    );
  }
  const policy = resolveCircuitPolicy(options);
  const isFailure = options.isFailure ?? isCircuitFailure;
  const classify = options.classify ?? defaultClassify;
  const onEvent: EventListener | undefined = options.onEvent;
  const clock: Clock = options.clock ?? systemClock;

  const report = <S extends CircuitStatus>(key: string, s: S): S => {
    if (s.transition !== undefined) {
      emit(onEvent, {
        type: 'breaker_transition',
        time: clock.now(),
        key,
        from: s.transition.from,
        to: s.transition.to,
        ...(s.openUntil === undefined ? {} : { openUntil: s.openUntil }),
      });
    }
    return s;
  };

  const permitFor = (key: string, ticket: CircuitTicket): CircuitPermit => {
    let done = false;
    const finish = async (outcome: 'success' | 'failure' | 'ignored'): Promise<CircuitStatus> => {
      if (done) return report(key, await store.status(key, policy, clock.now()));
      done = true;
      return report(key, await store.record(key, policy, ticket, outcome, clock.now()));
    };
    return {
      key,
      probe: ticket.probe,
      success: () => finish('success'),
      failure: (error, classification) => {
        let counted: boolean;
        try {
          counted = isFailure(classification ?? classify(error), error);
        } catch {
          counted = false;
        }
        return finish(counted ? 'failure' : 'ignored');
      },
    };
  };

  const tryAcquire = async (key: string): Promise<CircuitPermission> => {
    assertKey('key', key);
    const a = report(key, await store.admit(key, policy, clock.now()));
    if (a.ok) return { ok: true, permit: permitFor(key, a.ticket) };
    return {
      ok: false,
      state: a.state,
      retryAfterMs: a.retryAfterMs,
      openUntil: a.time + a.retryAfterMs,
    };
  };

  return {
    policy,
    tryAcquire,
    async execute<T>(
      key: string,
      fn: (ctx: { readonly signal: AbortSignal }) => T | PromiseLike<T>,
      executeOptions: CircuitExecuteOptions = {},
    ): Promise<T> {
      assertFunction('fn', fn);
      const { signal } = executeOptions;
      if (signal?.aborted) throw signal.reason;
      const permission = await tryAcquire(key);
      if (!permission.ok) {
        throw new CircuitOpenError({
          key,
          state: permission.state,
          retryAfterMs: permission.retryAfterMs,
          openUntil: permission.openUntil,
        });
      }
      let value: T;
      try {
        value = await fn({ signal: signal ?? new AbortController().signal });
      } catch (error) {
        await permission.permit.failure(error).catch(() => undefined);
        throw error;
      }
      await permission.permit.success().catch(() => undefined);
      return value;
    },
    async status(key) {
      assertKey('key', key);
      return store.status(key, policy, clock.now());
    },
    async reset(key) {
      assertKey('key', key);
      await store.reset(key);
    },
  };
}
