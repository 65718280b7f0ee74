/**
 * What the soak's processes share: the settings the orchestrator hands each child (as JSON in
 * `SOAK_CONFIG`), the names of queues and key prefixes, and the job each send carries.
 */

/** The settings every child process of one soak run receives. */
export interface SoakProcessConfig {
  /** Redis as the children see it: through the fault proxy. */
  readonly redisUrl: string;
  /** The fake Cloud API's base URL. */
  readonly apiUrl: string;
  readonly accessToken: string;
  readonly appSecret: string;
  /** Business phone number IDs the load spreads over. */
  readonly phoneNumbers: readonly string[];
  /** Meta's per-number throughput limit the fake enforces, messages per second. */
  readonly perNumberLimit: number;
  /** The per-recipient (pair) bucket: scaled down from Meta's 45 + 1/6 s so it bites in minutes. */
  readonly pair: { readonly capacity: number; readonly refillPerSecond: number };
  /** Directory of the dead-letter fallback files, one per process slot. */
  readonly fallbackDir: string;
  /** BullMQ concurrency of each worker process. */
  readonly concurrency: number;
  /** Directory of the reconcilers' event logs (`<slot>.jsonl`), read by the audit. */
  readonly eventsDir: string;
}

/**
 * The closed loop's timings, scaled down from the defaults (60 s grace, 10 min stuck, 30 s
 * backoff) so that the reconcilers act within a run of a minute: a held send is re-sent after
 * `graceMs` without a status, a transient `failed` after `backoff`, a message without
 * `delivered` is reported stuck after `stuckAfterMs`.
 */
export const CLOSED_LOOP = Object.freeze({
  /** The client's and the reconcilers' `timeoutGraceMs`: statuses here arrive within ~3 s. */
  graceMs: 8_000,
  /** The reconcilers' `stuckAfterMs`. */
  stuckAfterMs: 20_000,
  /** The reconcilers' lease: above one re-send (3 attempts of up to 4 s, and waits). */
  leaseMs: 30_000,
  /** Pause between reconciler rounds. */
  intervalMs: 1_000,
  /** Sends per message, the first included. */
  maxAttempts: 3,
  /** Wait before re-sending after a transient `failed` status. */
  backoff: Object.freeze({ initialDelayMs: 2_000, maxDelayMs: 8_000 }),
});

/** A reconciler's event, as its process logs it for the audit. */
export interface LoopEvent {
  readonly type: 'message_stuck' | 'message_resent';
  readonly key: string;
  readonly messageId?: string;
  readonly cause?: string;
  readonly attemptId?: string;
  /** Epoch milliseconds. */
  readonly at: number;
  /** `<slot>/<pid>` of the reconciler's process. */
  readonly by: string;
}

/** The BullMQ prefix and queue names, and the retrykit key prefixes. */
export const NAMES = Object.freeze({
  bullPrefix: 'soak',
  sends: 'sends',
  updates: 'updates',
  sendStore: 'soak:send',
  webhookStore: 'soak:webhook',
  deliveries: 'soak:deliveries',
  dlq: 'soak:dlq',
  numberBucket: 'soak:rate',
  pairBucket: 'soak:pair',
});

/**
 * A logical message's key: it names the business phone number, for the reader of the audit's
 * timelines (the reconciler routes re-sends by the record's sender, not by the key).
 */
export function messageKey(seed: number, index: number, phoneNumberId: string): string {
  return `s${seed}-${phoneNumberId}-${String(index).padStart(6, '0')}`;
}

/** One logical message: a BullMQ job of the `sends` queue, its job ID the idempotency key. */
export interface SendJob {
  readonly key: string;
  readonly phoneNumberId: string;
  readonly to: string;
}

/** Header naming the process that made a request, read back from the fake API's log. */
export const WORKER_HEADER = 'x-soak-worker';
/** Header with the epoch milliseconds at which the request left the worker (after the limiters). */
export const SENT_HEADER = 'x-soak-sent';

/** The text of a message: its key, so that the fake API's log names the logical message. */
export function messageText(key: string): string {
  return key;
}

/** Reads the child's settings from `SOAK_CONFIG`. */
export function readProcessConfig(): SoakProcessConfig {
  const raw = process.env.SOAK_CONFIG;
  if (raw === undefined) throw new Error('SOAK_CONFIG is not set: start this via npm run soak');
  return JSON.parse(raw) as SoakProcessConfig;
}

/** Messages a child sends its parent over the IPC channel. */
export type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'metrics'; readonly snapshot: WorkerCounters };

/** Counters a worker reports (cumulative for its lifetime). */
export interface WorkerCounters {
  readonly jobsCompleted: number;
  readonly jobsFailed: number;
  readonly jobsDeferred: number;
  readonly retriesScheduled: number;
  readonly deadLetters: number;
  readonly fallbackWrites: number;
}
