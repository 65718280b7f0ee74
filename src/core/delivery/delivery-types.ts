/**
 * One physical send of a logical message: each re-send is a new attempt with its own
 * `attemptId`, so a re-send is never taken for a duplicate of the first.
 */
export interface DeliveryAttemptInput {
  /** Unique within the record, e.g. `<key>#2`; recording the same id again updates it. */
  readonly attemptId: string;
  /** The id the remote system gave the send (a WhatsApp wamid), once known. */
  readonly externalId?: string;
  /** When the attempt was made, in whole milliseconds since the epoch. */
  readonly at: number;
}

/** A status report about one attempt, found by its external id. */
export interface DeliveryStatusReport<E = unknown> {
  /** The status as the remote system names it, e.g. `delivered`. */
  readonly status: string;
  /**
   * The status's rank: an attempt's status only moves to a higher rank (see `foldByRank`).
   * An integer ≥ 1.
   */
  readonly rank: number;
  /** The time the report itself carries, in whole milliseconds since the epoch. */
  readonly timestampMs: number;
  /** Errors the report carries (kept with the status when it wins), JSON-serialisable. */
  readonly errors?: readonly E[];
}

/** One attempt as the store holds it. */
export interface DeliveryAttempt<E = unknown> {
  readonly attemptId: string;
  /** The remote id of the send, `undefined` until known (e.g. a send that timed out). */
  readonly externalId: string | undefined;
  /** When the attempt was made, in milliseconds since the epoch. */
  readonly at: number;
  /** The highest-ranked status reported for this attempt, `undefined` before any. */
  readonly status: string | undefined;
  /** The rank of `status`; 0 before any. */
  readonly rank: number;
  /** The payload timestamp of `status`, in milliseconds; `undefined` before any. */
  readonly statusAt: number | undefined;
  /** The earliest payload timestamp of every status reported, in milliseconds, by status. */
  readonly statusTimes: Readonly<Record<string, number>>;
  /** The errors of the report that set `status`; empty otherwise. */
  readonly errors: readonly E[];
}

/** Everything a store keeps about one logical message. */
export interface DeliveryRecord<P = unknown, E = unknown> {
  /** The logical message's key (e.g. its idempotency key). */
  readonly key: string;
  /** The original payload, as `begin` was given it. */
  readonly payload: P;
  /** When the record was made, in milliseconds since the epoch (the store's clock). */
  readonly createdAt: number;
  /** Every attempt, oldest first. */
  readonly attempts: readonly DeliveryAttempt<E>[];
}

/** The outcome of {@link DeliveryStore.begin}. */
export interface BeginDeliveryResult<P = unknown, E = unknown> {
  /** `false` when the key already had a record: that one is returned, its payload kept. */
  readonly created: boolean;
  readonly record: DeliveryRecord<P, E>;
}

/** The outcome of {@link DeliveryStore.recordAttempt}. */
export type RecordAttemptResult<P = unknown, E = unknown> =
  | { readonly outcome: 'recorded'; readonly record: DeliveryRecord<P, E> }
  /** No record under the key (never begun, or expired): nothing written. */
  | { readonly outcome: 'missing' };

/** The outcome of {@link DeliveryStore.applyStatus}. */
export type ApplyStatusResult<P = unknown, E = unknown> =
  | {
      /**
       * `applied`: the attempt's status moved up. `stale`: it did not (a duplicate, or a
       * lower or later report of a status already held); only `statusTimes` may have gained
       * an earlier time.
       */
      readonly outcome: 'applied' | 'stale';
      readonly key: string;
      readonly attemptId: string;
      readonly record: DeliveryRecord<P, E>;
    }
  /** No attempt carries this external id (not ours, expired, or not recorded yet). */
  | { readonly outcome: 'unknown' };

/**
 * Records of logical messages, their attempts and the statuses reported for each attempt, for
 * closing the loop on sends a remote system acknowledges later. Statuses are applied by rank
 * (`foldByRank`), so reports that arrive twice or out of order never move an attempt back.
 * Records expire a configured time after their last write. Every method rejects with
 * `StoreUnavailableError` when the store can't be reached.
 */
export interface DeliveryStore<P = unknown, E = unknown> {
  /** Makes the record of `key`, or returns the one already there (its payload is kept). */
  begin(key: string, payload: P): Promise<BeginDeliveryResult<P, E>>;
  /**
   * Adds an attempt to the record of `key`, or updates the one with the same `attemptId`
   * (an `externalId` learnt later is filled in; a known one is never replaced).
   */
  recordAttempt(key: string, attempt: DeliveryAttemptInput): Promise<RecordAttemptResult<P, E>>;
  /** Applies a status report to the attempt whose external id is `externalId`. */
  applyStatus(
    externalId: string,
    report: DeliveryStatusReport<E>,
  ): Promise<ApplyStatusResult<P, E>>;
  /** The key of the record whose attempt carries `externalId`, or `undefined`. */
  findKey(externalId: string): Promise<string | undefined>;
  /** The record of `key`, or `undefined` (never begun, or expired). */
  get(key: string): Promise<DeliveryRecord<P, E> | undefined>;
}
