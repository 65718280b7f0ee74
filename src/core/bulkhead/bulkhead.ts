import { watchAbort } from '../abort-watch.js';
import { brandCheck, RetrykitError } from '../errors.js';
import { assertFunction, assertInteger, assertKey, showValue } from '../validate.js';

/** The defaults of {@link BulkheadOptions}. */
export const BULKHEAD_DEFAULTS = Object.freeze({
  /** Calls of one key that may wait for a slot: none, a full key rejects at once. */
  maxQueued: 0,
});

/** Options of {@link createBulkhead}. */
export interface BulkheadOptions {
  /**
   * Most calls of one key running at once (an integer ≥ 1), e.g. the sends in flight from one
   * WhatsApp phone number.
   */
  readonly maxConcurrent: number;
  /**
   * Most calls of one key waiting for a slot (an integer ≥ 0). They start in the order they
   * came; one more is rejected with {@link BulkheadRejectedError}.
   * @default 0
   */
  readonly maxQueued?: number;
}

/** Options of {@link Bulkhead.run}. */
export interface BulkheadRunOptions {
  /**
   * Gives up waiting for a slot: the call leaves the queue and rejects with the signal's
   * reason, and its function never runs. A call already running is not stopped by it (hand
   * the signal to the function for that).
   */
  readonly signal?: AbortSignal;
}

/** What one key of a {@link Bulkhead} holds now. */
export interface BulkheadStats {
  /** Calls running. */
  readonly running: number;
  /** Calls waiting for a slot. */
  readonly queued: number;
}

/** Caps the calls in flight per key; see {@link createBulkhead}. */
export interface Bulkhead {
  /**
   * Runs `fn` once a slot of `key` is free, and settles as it does. Rejects at once with
   * {@link BulkheadRejectedError} when `maxConcurrent` calls of `key` run and `maxQueued`
   * wait already (`fn` never runs), or with the signal's reason when `signal` aborts first.
   */
  run<T>(key: string, fn: () => T | PromiseLike<T>, options?: BulkheadRunOptions): Promise<T>;
  /** How many calls of `key` run and wait now. */
  stats(key: string): BulkheadStats;
  /** Keys with a call running or waiting; a key is forgotten once it has none. */
  readonly size: number;
}

/**
 * {@link Bulkhead.run} refused a call: `maxConcurrent` calls of the key were running and
 * `maxQueued` were waiting. The function did not run; trying later may succeed.
 */
export class BulkheadRejectedError extends RetrykitError {
  override readonly name = 'BulkheadRejectedError' as const;

  /** Makes `instanceof` recognise this error made by any copy of retrykit. */
  static override [Symbol.hasInstance] = brandCheck('BulkheadRejectedError', 'BULKHEAD_REJECTED');

  /** The key that was full. */
  readonly key: string;
  readonly maxConcurrent: number;
  readonly maxQueued: number;

  constructor(details: { key: string; maxConcurrent: number; maxQueued: number }) {
    super(
      'BULKHEAD_REJECTED',
      `Bulkhead for "${details.key}" is full: ${details.maxConcurrent} running, ` +
        `${details.maxQueued} queued`,
    );
    this.key = details.key;
    this.maxConcurrent = details.maxConcurrent;
    this.maxQueued = details.maxQueued;
  }
}

/** A call waiting for a slot: `start` hands it the slot of a call that finished. */
interface Waiter {
  readonly start: () => void;
}

/** One key's calls. Kept only while it has any. */
interface Lane {
  running: number;
  /** Waiting calls, oldest first (a `Set` keeps insertion order and removes in O(1)). */
  readonly queue: Set<Waiter>;
}

const IDLE: BulkheadStats = Object.freeze({ running: 0, queued: 0 });

/**
 * A bulkhead per key (cockatiel's `bulkhead`, keyed): at most `maxConcurrent` calls of one
 * key run at once and at most `maxQueued` wait, first come first served; more are rejected
 * with {@link BulkheadRejectedError}, so that a hung API holds a bounded number of calls
 * instead of every one made while it hangs. Memory holds only the keys with calls running or
 * waiting. In memory, for one process.
 *
 * @example
 * const bulkhead = createBulkhead({ maxConcurrent: 20, maxQueued: 100 });
 * const wamid = await bulkhead.run(phoneNumberId, () => send(message), { signal });
 */
export function createBulkhead(options: BulkheadOptions): Bulkhead {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${showValue(options)}`);
  }
  const maxConcurrent = assertInteger('maxConcurrent', options.maxConcurrent, 1);
  const maxQueued = assertInteger('maxQueued', options.maxQueued ?? BULKHEAD_DEFAULTS.maxQueued, 0);
  const lanes = new Map<string, Lane>();

  /** Hands the slot to the oldest waiter, or frees it (and forgets an idle key). */
  const release = (key: string, lane: Lane): void => {
    for (const next of lane.queue) {
      lane.queue.delete(next);
      next.start();
      return;
    }
    lane.running--;
    if (lane.running === 0) lanes.delete(key);
  };

  const execute = async <T>(key: string, lane: Lane, fn: () => T | PromiseLike<T>) => {
    try {
      return await fn();
    } finally {
      release(key, lane);
    }
  };

  return {
    run(key, fn, runOptions = {}) {
      try {
        assertKey('key', key);
        assertFunction('fn', fn);
      } catch (error) {
        return Promise.reject(error);
      }
      const { signal } = runOptions;
      if (signal?.aborted) return Promise.reject(signal.reason);
      let lane = lanes.get(key);
      if (lane === undefined) {
        lane = { running: 0, queue: new Set() };
        lanes.set(key, lane);
      }
      if (lane.running < maxConcurrent) {
        lane.running++;
        return execute(key, lane, fn);
      }
      if (lane.queue.size >= maxQueued) {
        return Promise.reject(new BulkheadRejectedError({ key, maxConcurrent, maxQueued }));
      }
      const queuedIn = lane;
      return new Promise((resolve, reject) => {
        let unwatch: (() => void) | undefined;
        const waiter: Waiter = {
          start() {
            unwatch?.();
            execute(key, queuedIn, fn).then(resolve, reject);
          },
        };
        queuedIn.queue.add(waiter);
        if (signal !== undefined) {
          // A key with a waiter has all its slots taken, so it stays known after this leaves.
          unwatch = watchAbort(signal, () => {
            if (queuedIn.queue.delete(waiter)) reject(signal.reason);
          });
        }
      });
    },
    stats(key) {
      const lane = lanes.get(key);
      return lane === undefined ? IDLE : { running: lane.running, queued: lane.queue.size };
    },
    get size() {
      return lanes.size;
    },
  };
}
