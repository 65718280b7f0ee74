import type { BackoffOptions } from '../backoff-types.js';
import type { Reason } from '../classify-types.js';

/** One failed attempt as a dead letter remembers it. */
export interface DeadLetterAttempt {
  readonly message: string;
  /**
   * The platform's or the OS's error code, when there was one (`130429`, `ECONNRESET`).
   * Records written by retrykit 0.1 called it `code`; every reader takes that as `errorCode`.
   */
  readonly errorCode?: string | number;
  readonly reason: Reason;
  /** ISO 8601 time of the failure. */
  readonly at: string;
  /**
   * Set when this failure spent no attempt: a throttle after which the job was put back for
   * this many milliseconds (BullMQ `wrapProcessor`'s deferral).
   */
  readonly deferredMs?: number;
  /**
   * Set with `deferredMs` when the deferral was a hold: a failure that is not the message's
   * (an open circuit, an expired token), which `maxDeferrals` does not count.
   */
  readonly held?: true;
}

/**
 * Where a dead letter came from, as structured data, so that a redrive (in code, or the
 * `retrykit` command line) knows how to run it again:
 * - `bullmq`: a job of `queue` (`jobName` is what `queue.add(name, data)` takes to re-add it);
 * - `send`: an outgoing call, under its idempotency (send) key when it had one;
 * - `webhook`: an incoming webhook (a part of one at `path`), `webhookId` naming the body;
 * - `status`: a failed delivery status for the send recorded under `key`.
 */
export type DeadLetterOrigin =
  | {
      readonly kind: 'bullmq';
      readonly queue: string;
      readonly jobId: string;
      readonly jobName?: string;
    }
  | { readonly kind: 'send'; readonly key?: string }
  | { readonly kind: 'webhook'; readonly webhookId: string; readonly path?: string }
  | { readonly kind: 'status'; readonly key: string };

/** Something that failed for good, kept for a person to inspect and redrive. */
export interface DeadLetterEntry<P = unknown> {
  /** Unique id; adding an entry with an id already present keeps the first. */
  readonly id: string;
  /** The whole payload (webhook body, send request), enough to redo the work. */
  readonly payload: P;
  /** The final classification's reason. */
  readonly reason: Reason;
  /** `permanent`: not worth retrying; `exhausted`: retries ran out. */
  readonly disposition: 'permanent' | 'exhausted';
  /** Every attempt's failure, oldest first. */
  readonly attempts: readonly DeadLetterAttempt[];
  /** ISO 8601 times of the first and last attempt, and of the dead-lettering. */
  readonly firstAttemptAt: string;
  readonly lastAttemptAt: string;
  readonly deadAt: string;
  /** Where it came from, as a label (a queue name, `whatsapp.send`). */
  readonly source?: string;
  /**
   * Where it came from, as structured data (see {@link DeadLetterOrigin}). Absent on entries
   * written before retrykit 0.2 and on entries added without one.
   */
  readonly origin?: DeadLetterOrigin;
  /** How many redrives of this entry failed so far; absent before the first failure. */
  readonly redriveFailures?: number;
  /**
   * ISO 8601 time before which no redrive runs this entry again: set by a failed redrive to
   * the failure time plus its redrive backoff ({@link RedriveOptions.backoff}). The Redis queue
   * enforces it on the Redis server's clock; this field is the failing consumer's reckoning.
   */
  readonly notBefore?: string;
}

/** A new dead letter: `id` and `deadAt` are filled in when absent. */
export type NewDeadLetter<P = unknown> = Omit<DeadLetterEntry<P>, 'id' | 'deadAt'> & {
  readonly id?: string;
  readonly deadAt?: string;
};

/**
 * Options of {@link DeadLetterQueue.list}. Each may be `undefined`, read as absent, so that a
 * paging loop can pass the last page's `cursor` (or a filter it holds) back as it is.
 *
 * @example
 * let cursor: string | undefined;
 * do {
 *   const page = await dlq.list({ cursor });
 *   for (const entry of page.entries) console.log(entry.id);
 *   cursor = page.cursor;
 * } while (cursor !== undefined);
 */
export interface ListOptions {
  /** At most this many entries. @default 100 */
  readonly limit?: number | undefined;
  /** Where the previous page ended (its `cursor`); absent for the first page. */
  readonly cursor?: string | undefined;
  /** Only entries with this reason; every reason when absent. */
  readonly reason?: Reason | undefined;
}

/**
 * Which entries {@link DeadLetterQueue.redrive} re-runs: these ids; entries with this reason
 * (all when absent), at most `limit` of them, oldest first; or every entry the predicate keeps.
 */
export type RedriveSelector<P = unknown> =
  | { readonly ids: readonly string[] }
  | { readonly reason?: Reason; readonly limit?: number }
  | ((entry: DeadLetterEntry<P>) => boolean);

/** Options of {@link DeadLetterQueue.redrive}. */
export interface RedriveOptions {
  /**
   * How long one entry stays claimed by this redrive, in milliseconds. Another consumer may
   * take it over once the lease runs out (this one crashed), so make it longer than the
   * handler takes.
   * @default 60_000
   */
  readonly leaseMs?: number;
  /**
   * The redrive backoff: after the n-th failed redrive of an entry (n = 1, 2, …), no consumer
   * runs it again for `computeDelay(n - 1, backoff)` milliseconds. A claimed entry is held for
   * the longer of `leaseMs` and the delay it would get if this run failed, so a consumer that
   * dies mid-run hands the entry over no sooner than a failure would have. Every entry's
   * handler therefore runs at most once per backoff period, whatever the number of consumers.
   * @default { initialDelayMs: 60_000, multiplier: 2, maxDelayMs: 3_600_000, jitter: 'none' } (1 min, doubling, up to 1 h)
   */
  readonly backoff?: BackoffOptions;
  /** Stops the redrive before the next entry; it then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** What {@link DeadLetterQueue.redrive} did. */
export interface RedriveReport {
  /** Ids whose handler succeeded: removed from the queue. */
  readonly redriven: readonly string[];
  /** Ids whose handler threw: kept, with the new failure appended. */
  readonly failed: readonly string[];
  /**
   * Ids another consumer was redriving at the same time (left to it), not due yet (a failed
   * redrive's backoff hasn't passed), or already gone.
   */
  readonly skipped: readonly string[];
}

/**
 * A dead-letter queue. Adapters: memory (`retrykit`), Redis (`retrykit/redis`), PostgreSQL
 * (`retrykit/postgres`).
 */
export interface DeadLetterQueue<P = unknown> {
  /**
   * Stores `entry` (validated; `id` and `deadAt` filled in when absent) and resolves with
   * what is stored: the earlier entry when one with the same id is already there. Rejects
   * with `InvalidRecordError` for a malformed entry, `StoreUnavailableError` when the store
   * can't take it.
   */
  add(entry: NewDeadLetter<P>): Promise<DeadLetterEntry<P>>;
  /** The entry with this id, or `undefined`. */
  get(id: string): Promise<DeadLetterEntry<P> | undefined>;
  /**
   * Oldest first (in the order they were added), a page at a time: pass a page's `cursor`
   * to get the next; no `cursor` means this was the last page.
   */
  list(
    options?: ListOptions,
  ): Promise<{ readonly entries: readonly DeadLetterEntry<P>[]; readonly cursor?: string }>;
  /** How many entries there are. */
  size(): Promise<number>;
  /** Removes the entry; `false` when there was none. */
  remove(id: string): Promise<boolean>;
  /**
   * Re-runs `handler` on the selected entries, one at a time, oldest first. Only a success
   * removes an entry; a failure is appended to its `attempts`, counted in `redriveFailures`
   * and sets its `notBefore` (the redrive backoff). Each entry is claimed under a lease first,
   * and an entry whose `notBefore` hasn't passed is skipped, so consumers redriving at once
   * run each entry at most once per backoff period, failing or not. Entries added after the
   * redrive started are left for the next one.
   */
  redrive(
    selector: RedriveSelector<P>,
    handler: (entry: DeadLetterEntry<P>) => unknown,
    options?: RedriveOptions,
  ): Promise<RedriveReport>;
  /** Removes every entry; resolves with how many there were. */
  purge(): Promise<number>;
}
