import {
  admitCall,
  type CircuitRecord,
  isIdle,
  newCircuitRecord,
  recordOutcome,
} from '../core/breaker/breaker-machine.js';
import type {
  CircuitAdmission,
  CircuitBreakerStore,
  CircuitOutcome,
  CircuitPolicy,
  CircuitStatus,
  CircuitTicket,
} from '../core/breaker/breaker-types.js';
import { assertNumber, showValue } from '../core/validate.js';

/** Options of {@link createMemoryCircuitStore}. */
export interface MemoryCircuitStoreOptions {
  /**
   * Most keys held at once. A new key past it drops the least recently used one, preferring a
   * closed circuit with empty counts; a dropped key starts over closed.
   * @default 10_000
   */
  readonly maxKeys?: number;
}

/** The defaults of {@link MemoryCircuitStoreOptions}. */
export const MEMORY_CIRCUIT_STORE_DEFAULTS = Object.freeze({ maxKeys: 10_000 });

/** Circuit state for one process. */
export interface MemoryCircuitStore extends CircuitBreakerStore {
  admit(key: string, policy: CircuitPolicy, now: number): CircuitAdmission;
  record(
    key: string,
    policy: CircuitPolicy,
    ticket: CircuitTicket,
    outcome: CircuitOutcome,
    now: number,
  ): CircuitStatus;
  status(key: string, policy: CircuitPolicy, now: number): CircuitStatus;
  reset(key: string): void;
  /** Keys held. */
  readonly size: number;
}

/** How many of the least recently used keys eviction looks at for an idle one. */
const EVICTION_SCAN = 8;

/**
 * Circuit breaker state in this process's memory, for `createCircuitBreaker({ store })`:
 * every call is synchronous, and at most `maxKeys` circuits are held (least recently used
 * dropped first). Each process has its own circuits; share them across a fleet with
 * `createRedisCircuitStore` from `retrykit/redis`.
 *
 * @example
 * const breaker = createCircuitBreaker({ store: createMemoryCircuitStore({ maxKeys: 1_000 }) });
 */
export function createMemoryCircuitStore(
  options: MemoryCircuitStoreOptions = {},
): MemoryCircuitStore {
  const maxKeys = assertNumber(
    'maxKeys',
    options.maxKeys ?? MEMORY_CIRCUIT_STORE_DEFAULTS.maxKeys,
    1,
  );
  if (maxKeys !== Number.POSITIVE_INFINITY && !Number.isInteger(maxKeys)) {
    throw new RangeError(`maxKeys must be an integer, got ${showValue(maxKeys)}`);
  }
  // A Map keeps insertion order: re-inserting a key on use keeps the least recently used first.
  const records = new Map<string, CircuitRecord>();

  const evict = (policy: CircuitPolicy, now: number): void => {
    let scanned = 0;
    for (const [key, r] of records) {
      if (isIdle(r, policy, now)) {
        records.delete(key);
        return;
      }
      if (++scanned >= EVICTION_SCAN) break;
    }
    const oldest = records.keys().next();
    if (oldest.done !== true) records.delete(oldest.value);
  };

  const use = (key: string, policy: CircuitPolicy, now: number): CircuitRecord => {
    let r = records.get(key);
    if (r === undefined) {
      if (records.size >= maxKeys) evict(policy, now);
      r = newCircuitRecord(policy);
    } else {
      records.delete(key);
    }
    records.set(key, r);
    return r;
  };

  return {
    admit: (key, policy, now) => admitCall(use(key, policy, now), policy, now),
    record: (key, policy, ticket, outcome, now) =>
      recordOutcome(use(key, policy, now), policy, ticket, outcome, now),
    status(key, _policy, now) {
      const r = records.get(key);
      if (r === undefined) return { state: 'closed', openUntil: undefined, time: now };
      return { state: r.state, openUntil: r.state === 'open' ? r.openUntil : undefined, time: now };
    },
    reset(key) {
      records.delete(key);
    },
    get size() {
      return records.size;
    },
  };
}
