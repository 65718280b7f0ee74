import { type Clock, systemClock } from '../core/clock.js';
import {
  applyReport,
  checkAttempt,
  checkAttemptOptions,
  checkBeginOptions,
  checkClaimOptions,
  checkReport,
  checkReschedule,
  DELIVERY_STORE_DEFAULTS,
  newAttempt,
} from '../core/delivery/delivery-args.js';
import type {
  ApplyStatusResult,
  ClaimedDelivery,
  DeliveryAttempt,
  DeliveryRecord,
  DeliveryStore,
  RecordAttemptResult,
} from '../core/delivery/delivery-types.js';
import { assertInteger, assertKey, assertNumber, showValue } from '../core/validate.js';
import { createDueIndex } from './due-index.js';

/** Options of {@link createMemoryDeliveryStore}. */
export interface MemoryDeliveryStoreOptions {
  /**
   * Most records held at once. When full, expired records go first, then the least recently
   * used one (with its external ids and its place in the due index: the delivery reconciler
   * never sees it again, so size this above the messages in flight).
   * @default 100_000
   */
  readonly maxEntries?: number;
  /**
   * How long a record is kept after its last write, in milliseconds.
   * @default 604_800_000 (7 days)
   */
  readonly recordTtlMs?: number;
  /** Time source for `createdAt` and expiry. @default systemClock */
  readonly clock?: Clock;
}

/** The defaults of {@link MemoryDeliveryStoreOptions}. */
export const MEMORY_DELIVERY_STORE_DEFAULTS = Object.freeze({
  maxEntries: 100_000,
  recordTtlMs: DELIVERY_STORE_DEFAULTS.recordTtlMs,
});

/** An in-process {@link DeliveryStore}: bounded LRU + TTL, for one process or for tests. */
export interface MemoryDeliveryStore<P = unknown, E = unknown> extends DeliveryStore<P, E> {
  /** Records held right now, including expired ones not yet swept (always ≤ `maxEntries`). */
  readonly size: number;
  /** Drops every record. */
  clear(): void;
}

interface Entry<P, E> {
  record: DeliveryRecord<P, E>;
  expiresAt: number;
  /** The lease token: changes with every write of the due time. */
  revision: number;
  alias: string | undefined;
}

/** Expired records looked at per new record, from the least recently used end. */
const SWEEP_BATCH = 4;

/**
 * A {@link DeliveryStore} in process memory. Records expire lazily (dropped when read, and a
 * few swept on each new record); the map never holds more than `maxEntries`. Records are
 * returned as frozen copies; the payload is kept by reference.
 *
 * Use it for one process or tests: a webhook handler and a sender in different processes
 * need a shared store such as `createRedisDeliveryStore` from `retrykit/redis` or
 * `createPostgresDeliveryStore` from `retrykit/postgres`.
 *
 * @example
 * const deliveries = createMemoryDeliveryStore({ maxEntries: 50_000 });
 * await deliveries.begin('order-42', payload);
 */
export function createMemoryDeliveryStore<P = unknown, E = unknown>(
  options: MemoryDeliveryStoreOptions = {},
): MemoryDeliveryStore<P, E> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${showValue(options)}`);
  }
  const maxEntries = assertInteger(
    'maxEntries',
    options.maxEntries ?? MEMORY_DELIVERY_STORE_DEFAULTS.maxEntries,
    1,
  );
  const ttlMs = assertNumber(
    'recordTtlMs',
    options.recordTtlMs ?? MEMORY_DELIVERY_STORE_DEFAULTS.recordTtlMs,
    1,
  );
  const clock = options.clock ?? systemClock;
  // A Map keeps insertion order: re-inserting a key on use keeps the least recently used first.
  const entries = new Map<string, Entry<P, E>>();
  const byExternalId = new Map<string, string>();
  const byAlias = new Map<string, string>();
  /** The due index: key → due time, for the records that have one. */
  const due = createDueIndex();
  let revisions = 0;

  const drop = (key: string, entry: Entry<P, E>): void => {
    entries.delete(key);
    due.delete(key);
    if (entry.alias !== undefined && byAlias.get(entry.alias) === key) byAlias.delete(entry.alias);
    for (const a of entry.record.attempts) {
      if (a.externalId !== undefined && byExternalId.get(a.externalId) === key) {
        byExternalId.delete(a.externalId);
      }
    }
  };

  const read = (key: string, now: number): Entry<P, E> | undefined => {
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      drop(key, entry);
      return undefined;
    }
    entries.delete(key);
    entries.set(key, entry);
    return entry;
  };

  /**
   * Writes `record`; `dueInMs` moves its due time (`null`: out of the index) and its token,
   * `undefined` keeps both.
   */
  const save = (
    key: string,
    record: DeliveryRecord<P, E>,
    now: number,
    dueInMs?: number | null,
    alias?: string,
  ): DeliveryRecord<P, E> => {
    let dueAt = record.dueAt;
    if (dueInMs !== undefined) {
      dueAt = dueInMs === null ? undefined : now + dueInMs;
      if (dueAt === undefined) due.delete(key);
      else due.set(key, dueAt);
    }
    const frozen = freezeRecord({ ...record, dueAt });
    const existing = entries.get(key);
    if (existing !== undefined) {
      existing.record = frozen;
      existing.expiresAt = now + ttlMs;
      if (dueInMs !== undefined) existing.revision = ++revisions;
      return frozen;
    }
    let swept = 0;
    for (const [oldKey, old] of entries) {
      if (swept++ >= SWEEP_BATCH || old.expiresAt > now) break;
      drop(oldKey, old);
    }
    while (entries.size >= maxEntries) {
      const oldest = entries.entries().next();
      if (oldest.done === true) break;
      drop(oldest.value[0], oldest.value[1]);
    }
    entries.set(key, { record: frozen, expiresAt: now + ttlMs, revision: ++revisions, alias });
    if (alias !== undefined && !byAlias.has(alias)) byAlias.set(alias, key);
    return frozen;
  };

  /** The key of the record `externalId` (else `alias`) points at, with `attached` when by alias. */
  const locate = (
    externalId: string,
    alias: string | undefined,
    now: number,
  ): { key: string; entry: Entry<P, E>; index: number; attached: boolean } | undefined => {
    const key = byExternalId.get(externalId);
    const entry = key === undefined ? undefined : read(key, now);
    if (key !== undefined && entry !== undefined) {
      const index = entry.record.attempts.findIndex((a) => a.externalId === externalId);
      if (index >= 0) return { key, entry, index, attached: false };
    }
    if (alias === undefined) return undefined;
    const aliased = byAlias.get(alias);
    const owner = aliased === undefined ? undefined : read(aliased, now);
    if (aliased === undefined || owner === undefined) return undefined;
    let index = owner.record.attempts.length - 1;
    while (index >= 0 && owner.record.attempts[index]?.externalId !== undefined) index--;
    if (index < 0) return undefined;
    return { key: aliased, entry: owner, index, attached: true };
  };

  return {
    get size() {
      return entries.size;
    },
    clear() {
      entries.clear();
      byExternalId.clear();
      byAlias.clear();
      due.clear();
    },

    async begin(key, payload, options) {
      assertKey('key', key);
      const { alias, sender, dueInMs } = checkBeginOptions(options);
      const now = clock.now();
      const existing = read(key, now);
      if (existing !== undefined) return { created: false, record: existing.record };
      const record = save(
        key,
        { key, payload, createdAt: now, sender, attempts: [], dueAt: undefined },
        now,
        dueInMs,
        alias,
      );
      return { created: true, record };
    },

    async recordAttempt(key, input, options): Promise<RecordAttemptResult<P, E>> {
      const attempt = checkAttempt(key, input);
      const { ifAttempts, dueInMs } = checkAttemptOptions(options);
      const now = clock.now();
      const entry = read(key, now);
      if (entry === undefined) return { outcome: 'missing' };
      if (ifAttempts !== undefined && entry.record.attempts.length !== ifAttempts) {
        return { outcome: 'conflict', record: entry.record };
      }
      const attempts = [...entry.record.attempts];
      const index = attempts.findIndex((a) => a.attemptId === attempt.attemptId);
      const known = attempts[index];
      let indexed = attempt.externalId;
      if (known === undefined) {
        attempts.push(newAttempt<E>(attempt));
      } else if (known.externalId === undefined && attempt.externalId !== undefined) {
        attempts[index] = { ...known, externalId: attempt.externalId };
      } else {
        indexed = undefined;
      }
      if (indexed !== undefined && !byExternalId.has(indexed)) byExternalId.set(indexed, key);
      return {
        outcome: 'recorded',
        record: save(key, { ...entry.record, attempts }, now, dueInMs),
      };
    },

    async applyStatus(externalId, input): Promise<ApplyStatusResult<P, E>> {
      const report = checkReport(externalId, input);
      const now = clock.now();
      const found = locate(externalId, report.alias, now);
      if (found === undefined) return { outcome: 'unknown' };
      const { key, entry, index, attached } = found;
      const attempts = [...entry.record.attempts];
      let target = attempts[index] as DeliveryAttempt<E>;
      if (attached) {
        target = { ...target, externalId };
        if (!byExternalId.has(externalId)) byExternalId.set(externalId, key);
      }
      const { attempt, changed } = applyReport(target, report);
      attempts[index] = attempt;
      const latest = index === attempts.length - 1;
      const dueInMs =
        !latest || report.schedule === undefined
          ? undefined
          : report.schedule === 'wake'
            ? 0
            : null;
      const record = save(key, { ...entry.record, attempts }, now, dueInMs);
      return {
        outcome: changed ? 'applied' : 'stale',
        key,
        attemptId: attempt.attemptId,
        record,
        attached,
      };
    },

    async claimDue(options) {
      const { limit, leaseMs } = checkClaimOptions(options);
      const now = clock.now();
      // Earliest due first (ties: scheduled first), O(log n) per key taken; an expired record
      // leaves the index as it is met. Leases are written once the batch is taken.
      const ready: [string, Entry<P, E>][] = [];
      while (ready.length < limit) {
        const key = due.pop(now);
        if (key === undefined) break;
        const entry = read(key, now);
        if (entry !== undefined) ready.push([key, entry]);
      }
      return ready.map(([key, entry]): ClaimedDelivery<P, E> => {
        const record = save(key, entry.record, now, leaseMs);
        return { record, token: String(entry.revision) };
      });
    },

    async reschedule(key, token, delay) {
      const dueInMs = checkReschedule(key, token, delay);
      const now = clock.now();
      const entry = read(key, now);
      if (entry === undefined || String(entry.revision) !== token) return false;
      save(key, entry.record, now, dueInMs);
      return true;
    },

    async findKey(externalId) {
      assertKey('externalId', externalId);
      const key = byExternalId.get(externalId);
      if (key === undefined || read(key, clock.now()) === undefined) return undefined;
      return key;
    },

    async get(key) {
      assertKey('key', key);
      return read(key, clock.now())?.record;
    },
  };
}

function freezeAttempt<E>(a: DeliveryAttempt<E>): DeliveryAttempt<E> {
  return Object.freeze({
    ...a,
    statusTimes: Object.freeze({ ...a.statusTimes }),
    errors: Object.freeze([...a.errors]),
  });
}

function freezeRecord<P, E>(r: DeliveryRecord<P, E>): DeliveryRecord<P, E> {
  return Object.freeze({ ...r, attempts: Object.freeze(r.attempts.map(freezeAttempt)) });
}
