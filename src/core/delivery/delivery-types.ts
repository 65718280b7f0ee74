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
  /**
   * The record's alias (see {@link BeginDeliveryOptions.alias}) the report names, if any.
   * When no attempt carries the external id but a record has this alias, the external id is
   * first given to that record's latest attempt without one (a send whose answer was lost),
   * then the report is applied to it.
   */
  readonly alias?: string;
  /**
   * What the report does to the record's due time when its attempt is the record's latest:
   * `close` takes the record out of the due index (settled: nothing left to do), `wake` makes
   * it due now (someone must act). Either changes the lease token. Left out: no change.
   */
  readonly schedule?: 'close' | 'wake';
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
  /**
   * Who sends the message (see {@link BeginDeliveryOptions.sender}), e.g. the WhatsApp phone
   * number id; `undefined` when the first `begin` named none.
   */
  readonly sender: string | undefined;
  /** Every attempt, oldest first. */
  readonly attempts: readonly DeliveryAttempt<E>[];
  /**
   * When the record is next due for whoever reconciles it (`claimDue`), in milliseconds since
   * the epoch on the store's clock; `undefined` when it is not in the due index (settled).
   */
  readonly dueAt: number | undefined;
}

/** Options of {@link DeliveryStore.begin}. */
export interface BeginDeliveryOptions {
  /**
   * A second name of the record (e.g. a hash of its key carried by the remote system), so a
   * status report whose external id is unknown can still find it (`DeliveryStatusReport.alias`).
   * Kept from the first `begin` of the key.
   */
  readonly alias?: string;
  /**
   * Who sends the message, so whoever re-sends it from a store shared by several senders
   * knows which one to use (the WhatsApp client records its `phoneNumberId`). Kept from the
   * first `begin` of the key. Left out: none (`record.sender` is `undefined`).
   */
  readonly sender?: string;
  /**
   * Puts a new record in the due index this many milliseconds from now (the store's clock):
   * when it comes due, `claimDue` hands it out. Ignored when the record exists. Left out: not due.
   */
  readonly dueInMs?: number;
}

/** Options of {@link DeliveryStore.recordAttempt}. */
export interface RecordAttemptOptions {
  /**
   * Fencing: write only if the record holds exactly this many attempts, else answer
   * `conflict` and write nothing. Two writers adding attempt n+1 at once: one wins.
   */
  readonly ifAttempts?: number;
  /**
   * Moves the record's due time to this many milliseconds from now (the store's clock), or
   * `null` to take it out of the due index; changes the lease token. Left out: no change.
   */
  readonly dueInMs?: number | null;
}

/** A record handed out by {@link DeliveryStore.claimDue}, leased to the caller. */
export interface ClaimedDelivery<P = unknown, E = unknown> {
  readonly record: DeliveryRecord<P, E>;
  /**
   * The lease token: `reschedule` with it succeeds only while nobody else changed the record's
   * due time since (another claim, a status that woke or closed it, a new attempt's schedule).
   */
  readonly token: string;
}

/** Options of {@link DeliveryStore.claimDue}. */
export interface ClaimDueOptions {
  /** Most records to hand out, an integer ≥ 1. */
  readonly limit: number;
  /**
   * How long each claimed record stays out of other claims, in milliseconds (≥ 1): its due time
   * becomes now + `leaseMs`, so a claimer that crashes hands it back when this runs out.
   */
  readonly leaseMs: number;
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
  | { readonly outcome: 'missing' }
  /** `ifAttempts` did not match: another writer added an attempt first. Nothing written. */
  | { readonly outcome: 'conflict'; readonly record: DeliveryRecord<P, E> };

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
      /** `true` when the external id was given to the attempt by the report's `alias`. */
      readonly attached: boolean;
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
  begin(
    key: string,
    payload: P,
    options?: BeginDeliveryOptions,
  ): Promise<BeginDeliveryResult<P, E>>;
  /**
   * Adds an attempt to the record of `key`, or updates the one with the same `attemptId`
   * (an `externalId` learnt later is filled in; a known one is never replaced).
   */
  recordAttempt(
    key: string,
    attempt: DeliveryAttemptInput,
    options?: RecordAttemptOptions,
  ): Promise<RecordAttemptResult<P, E>>;
  /** Applies a status report to the attempt whose external id is `externalId`. */
  applyStatus(
    externalId: string,
    report: DeliveryStatusReport<E>,
  ): Promise<ApplyStatusResult<P, E>>;
  /** The key of the record whose attempt carries `externalId`, or `undefined`. */
  findKey(externalId: string): Promise<string | undefined>;
  /** The record of `key`, or `undefined` (never begun, or expired). */
  get(key: string): Promise<DeliveryRecord<P, E> | undefined>;
  /**
   * Leases up to `limit` records whose due time has come (the store's clock), earliest first:
   * each one's due time moves to now + `leaseMs` and its lease token changes, atomically, so
   * two claimers never get the same record while a lease runs. Expired records are dropped
   * from the due index on the way.
   */
  claimDue(options: ClaimDueOptions): Promise<ClaimedDelivery<P, E>[]>;
  /**
   * Ends a lease: the record is next due `dueInMs` milliseconds from now, or leaves the due
   * index (`null`). `false`, writing nothing, when the token is no longer the record's (a
   * status woke or closed it, another claimer took it after the lease ran out) or the record
   * is gone.
   */
  reschedule(key: string, token: string, dueInMs: number | null): Promise<boolean>;
}
