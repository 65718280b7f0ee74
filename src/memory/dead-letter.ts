import type { Classification } from '../core/classify-types.js';
import { type Clock, systemClock } from '../core/clock.js';
import { completeDeadLetter, newId } from '../core/dead-letter/dead-letter.js';
import type { DeadLetterEntry, DeadLetterQueue } from '../core/dead-letter/dead-letter-types.js';
import {
  listOptions,
  type Positioned,
  type RedrivePort,
  runRedrive,
} from '../core/dead-letter/redrive.js';
import { StoreUnavailableError } from '../core/errors.js';
import { type EventListener, emit } from '../core/events.js';
import { classify as defaultClassify } from '../core/retry/classify.js';
import { assertFunction, assertInteger } from '../core/validate.js';

/** Options of {@link createMemoryDeadLetterQueue}. */
export interface MemoryDeadLetterQueueOptions {
  /** Dates dead letters, redrive failures and leases. @default systemClock */
  readonly clock?: Clock;
  /** Receives a `dead_letter` event for every entry added. */
  readonly onEvent?: EventListener;
  /**
   * Most entries held. Once full, `add` rejects with `StoreUnavailableError` rather than drop
   * an entry already accepted (`withFallback` then writes to a file).
   * @default 10_000
   */
  readonly maxEntries?: number;
  /** Classifies a redrive handler's failure. @default classify */
  readonly classify?: (error: unknown) => Classification;
}

/** The defaults of {@link MemoryDeadLetterQueueOptions}. */
export const MEMORY_DEAD_LETTER_DEFAULTS = Object.freeze({ maxEntries: 10_000 });

interface Slot<P> {
  readonly seq: number;
  entry: DeadLetterEntry<P>;
  /** A redrive's claim (`token`), or a failed redrive's not-before time (no token), until `expiresAt`. */
  lease?: { readonly token: string | undefined; readonly expiresAt: number };
}

/**
 * A dead-letter queue in process memory: for tests, development and single-process tools.
 * It is lost when the process exits; use `createRedisDeadLetterQueue` from `retrykit/redis`
 * to keep dead letters across restarts. Payloads are kept by reference.
 *
 * @example
 * const dlq = createMemoryDeadLetterQueue();
 * await dlq.add(toDeadLetter(error, { payload: webhook, id: messageId }));
 * await dlq.redrive({ reason: 'service_unavailable' }, (entry) => handle(entry.payload));
 */
export function createMemoryDeadLetterQueue<P = unknown>(
  options: MemoryDeadLetterQueueOptions = {},
): DeadLetterQueue<P> {
  const clock = options.clock ?? systemClock;
  const maxEntries = assertInteger(
    'maxEntries',
    options.maxEntries ?? MEMORY_DEAD_LETTER_DEFAULTS.maxEntries,
    1,
  );
  if (options.onEvent !== undefined) assertFunction('onEvent', options.onEvent);
  if (options.classify !== undefined) assertFunction('classify', options.classify);
  const classify = options.classify ?? defaultClassify;
  const slots = new Map<string, Slot<P>>();
  let seq = 0;

  const scan = (after: number, limit: number, reason: string | undefined, upTo: number) => {
    const items: Positioned<P>[] = [];
    let more = false;
    for (const slot of slots.values()) {
      if (slot.seq <= after || (reason !== undefined && slot.entry.reason !== reason)) continue;
      if (slot.seq > upTo) break;
      if (items.length === limit) {
        more = true;
        break;
      }
      items.push({ seq: slot.seq, entry: slot.entry });
    }
    return { items, more, tail: seq };
  };

  const port: RedrivePort<P> = {
    scan: async (after, limit, reason, upTo) => scan(after, limit, reason, upTo),
    async claim(id, token, holdMs) {
      const slot = slots.get(id);
      if (slot === undefined) return { status: 'missing' };
      const now = clock.now();
      const held = slot.lease !== undefined && slot.lease.expiresAt > now;
      if (held && slot.lease?.token !== token) return { status: 'leased' };
      slot.lease = { token, expiresAt: now + holdMs };
      return { status: 'claimed', entry: slot.entry };
    },
    async succeed(id) {
      slots.delete(id);
    },
    async fail(id, token, entry, delayMs) {
      const slot = slots.get(id);
      if (slot === undefined || slot.lease?.token !== token) return;
      slot.entry = entry;
      slot.lease = { token: undefined, expiresAt: clock.now() + delayMs };
    },
  };

  return {
    async add(newEntry) {
      const entry = completeDeadLetter(newEntry, clock.now());
      const existing = slots.get(entry.id);
      if (existing !== undefined) return existing.entry;
      if (slots.size >= maxEntries) {
        throw new StoreUnavailableError(
          'add',
          new Error(`the memory dead-letter queue is full (maxEntries ${maxEntries})`),
        );
      }
      const notBefore = entry.notBefore === undefined ? Number.NaN : Date.parse(entry.notBefore);
      slots.set(entry.id, {
        seq: ++seq,
        entry,
        ...(notBefore > clock.now() ? { lease: { token: undefined, expiresAt: notBefore } } : {}),
      });
      emit(options.onEvent, {
        type: 'dead_letter',
        time: clock.now(),
        id: entry.id,
        reason: entry.reason,
      });
      return entry;
    },
    async get(id) {
      return slots.get(id)?.entry;
    },
    async list(listOpts = {}) {
      const { after, limit, reason } = listOptions(listOpts);
      const { items, more } = scan(after, limit, reason, Infinity);
      const entries = items.map((i) => i.entry);
      const last = items[items.length - 1];
      return more && last !== undefined ? { entries, cursor: String(last.seq) } : { entries };
    },
    async size() {
      return slots.size;
    },
    async remove(id) {
      return slots.delete(id);
    },
    redrive(selector, handler, redriveOptions = {}) {
      return runRedrive(port, selector, handler, redriveOptions, {
        clock,
        classify,
        token: newId(),
      });
    },
    async purge() {
      const count = slots.size;
      slots.clear();
      return count;
    },
  };
}
