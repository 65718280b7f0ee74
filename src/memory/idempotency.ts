import { type Clock, systemClock } from '../core/clock.js';
import { type EventListener, emit } from '../core/events.js';
import {
  checkClaim,
  checkCompleteOptions,
  checkKey,
  checkToken,
  checkTtl,
  fencingToken,
} from '../core/idempotency/idempotency-args.js';
import type {
  ClaimOptions,
  ClaimResult,
  IdempotencyStore,
} from '../core/idempotency/idempotency-types.js';
import { assertFunction, assertInteger, showValue } from '../core/validate.js';

/** Options of {@link createMemoryIdempotencyStore}. */
export interface MemoryIdempotencyStoreOptions {
  /**
   * Most keys held at once (claims and `markOnce` marks together). When full, expired entries
   * go first, then the least recently used one. Size it above the number of keys that are live
   * within their TTL, or an evicted key is seen as new again.
   * @default 100_000
   */
  readonly maxEntries?: number;
  /** Time source for leases and TTLs. @default systemClock */
  readonly clock?: Clock;
  /** Receives `idempotency_hit` events. */
  readonly onEvent?: EventListener;
}

/** The defaults of {@link MemoryIdempotencyStoreOptions}. */
export const MEMORY_IDEMPOTENCY_DEFAULTS = Object.freeze({ maxEntries: 100_000 });

/** An in-process {@link IdempotencyStore}: bounded LRU + TTL, for one process or for tests. */
export interface MemoryIdempotencyStore extends IdempotencyStore {
  /** Entries held right now, including expired ones not yet swept (always ≤ `maxEntries`). */
  readonly size: number;
  /** Drops every entry. */
  clear(): void;
}

type Entry =
  | {
      readonly state: 'in_progress';
      readonly token: string;
      readonly fingerprint: string | undefined;
      readonly expiresAt: number;
    }
  | {
      readonly state: 'completed';
      readonly result: unknown;
      readonly fingerprint: string | undefined;
      readonly expiresAt: number;
    }
  | { readonly state: 'marked'; readonly expiresAt: number };

interface Node {
  readonly id: string;
  entry: Entry;
  older: Node | undefined;
  newer: Node | undefined;
}

/** Expired entries looked at per write, from the least recently used end. */
const SWEEP_BATCH = 4;

/**
 * An {@link IdempotencyStore} in process memory. Entries expire lazily: an expired one is
 * dropped when it is read, and each write sweeps a few expired entries from the least recently
 * used end. There is no timer per key, and the map never holds more than `maxEntries`.
 *
 * Use it for a single process or tests; several processes need a shared store such as
 * `createRedisIdempotencyStore` from `retrykit/redis`. Results are kept by reference (not
 * copied): don't mutate what `claim` hands back.
 *
 * @example
 * const store = createMemoryIdempotencyStore({ maxEntries: 50_000 });
 * const receipt = await idempotent(store, `send:${orderId}`, () => sendMessage(order));
 */
export function createMemoryIdempotencyStore(
  options: MemoryIdempotencyStoreOptions = {},
): MemoryIdempotencyStore {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${showValue(options)}`);
  }
  const maxEntries = assertInteger(
    'maxEntries',
    options.maxEntries ?? MEMORY_IDEMPOTENCY_DEFAULTS.maxEntries,
    1,
  );
  const clock = options.clock ?? systemClock;
  if (options.onEvent !== undefined) assertFunction('onEvent', options.onEvent);
  const onEvent = options.onEvent;
  // A map for lookups plus a doubly linked list in order of use: `oldest` is the least
  // recently used entry, `newest` the most recent. (A Map's own insertion order would do, but
  // V8 leaves a hole per deleted entry that iteration from the front must skip, so an LRU on
  // it slows down as it churns.) Claims and marks share one map under distinct prefixes.
  const nodes = new Map<string, Node>();
  let oldest: Node | undefined;
  let newest: Node | undefined;

  const unlink = (node: Node): void => {
    if (node.older === undefined) oldest = node.newer;
    else node.older.newer = node.newer;
    if (node.newer === undefined) newest = node.older;
    else node.newer.older = node.older;
    node.older = undefined;
    node.newer = undefined;
  };

  const append = (node: Node): void => {
    node.older = newest;
    if (newest === undefined) oldest = node;
    else newest.newer = node;
    newest = node;
  };

  const drop = (node: Node): void => {
    unlink(node);
    nodes.delete(node.id);
  };

  const read = (id: string, now: number): Entry | undefined => {
    const node = nodes.get(id);
    if (node === undefined) return undefined;
    if (node.entry.expiresAt <= now) {
      drop(node);
      return undefined;
    }
    unlink(node);
    append(node);
    return node.entry;
  };

  const write = (id: string, entry: Entry, now: number): void => {
    const existing = nodes.get(id);
    if (existing !== undefined) {
      existing.entry = entry;
      unlink(existing);
      append(existing);
      return;
    }
    for (let swept = 0; swept < SWEEP_BATCH && oldest !== undefined; swept++) {
      if (oldest.entry.expiresAt > now) break;
      drop(oldest);
    }
    while (nodes.size >= maxEntries && oldest !== undefined) drop(oldest);
    const node: Node = { id, entry, older: undefined, newer: undefined };
    nodes.set(id, node);
    append(node);
  };

  const hit = (key: string, status: 'completed' | 'in_progress' | 'duplicate', now: number) => {
    if (onEvent !== undefined) emit(onEvent, { type: 'idempotency_hit', time: now, key, status });
  };

  return {
    get size() {
      return nodes.size;
    },
    clear() {
      nodes.clear();
      oldest = undefined;
      newest = undefined;
    },

    async claim<R = unknown>(key: string, claimOptions: ClaimOptions): Promise<ClaimResult<R>> {
      const { leaseMs, fingerprint, requestId } = checkClaim(key, claimOptions);
      const now = clock.now();
      const id = `c:${key}`;
      const entry = read(id, now);
      let kept = fingerprint;
      if (entry !== undefined && entry.state !== 'marked') {
        if (
          fingerprint !== undefined &&
          entry.fingerprint !== undefined &&
          entry.fingerprint !== fingerprint
        ) {
          return { status: 'mismatch' };
        }
        if (entry.state === 'completed') {
          hit(key, 'completed', now);
          return { status: 'completed', result: entry.result as R };
        }
        if (entry.token !== requestId) {
          hit(key, 'in_progress', now);
          return { status: 'in_progress', retryAfterMs: entry.expiresAt - now };
        }
        // The caller's own claim again: a new lease under the same token.
        kept = entry.fingerprint ?? fingerprint;
      }
      const token = requestId ?? fencingToken();
      write(id, { state: 'in_progress', token, fingerprint: kept, expiresAt: now + leaseMs }, now);
      return { status: 'claimed', token };
    },

    async complete(key, token, result, completeOptions) {
      checkKey(key);
      checkToken(token);
      const ttlMs = checkCompleteOptions(completeOptions);
      const now = clock.now();
      const id = `c:${key}`;
      const entry = read(id, now);
      if (entry?.state !== 'in_progress' || entry.token !== token) return false;
      write(
        id,
        { state: 'completed', result, fingerprint: entry.fingerprint, expiresAt: now + ttlMs },
        now,
      );
      return true;
    },

    async release(key, token) {
      checkKey(key);
      checkToken(token);
      const id = `c:${key}`;
      const entry = read(id, clock.now());
      const node = nodes.get(id);
      if (node === undefined || entry?.state !== 'in_progress' || entry.token !== token) {
        return false;
      }
      drop(node);
      return true;
    },

    async markOnce(key, ttlMs) {
      checkKey(key);
      const ttl = checkTtl(ttlMs);
      const now = clock.now();
      const id = `m:${key}`;
      if (read(id, now) !== undefined) {
        hit(key, 'duplicate', now);
        return false;
      }
      write(id, { state: 'marked', expiresAt: now + ttl }, now);
      return true;
    },
  };
}
