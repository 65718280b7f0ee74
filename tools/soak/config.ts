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
