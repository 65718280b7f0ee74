/** Options of {@link IdempotencyStore.claim}. */
export interface ClaimOptions {
  /**
   * How long the claim is held, in milliseconds, before another worker may take the key over
   * (the holder crashed). Make it longer than the work takes.
   */
  readonly leaseMs: number;
  /**
   * A digest of the request (e.g. a hash of the payload). A later claim of the same key with a
   * different fingerprint answers `mismatch`: a different request reusing the key.
   */
  readonly fingerprint?: string;
  /**
   * A request id made by the caller, used as the claim's fencing token (the store makes a
   * random one when absent). A claim of a key held in progress by the same `requestId` answers
   * `claimed` with it and starts the lease again: it is the caller's own claim, e.g. a retry of
   * a job (pass the job id) after a claim that timed out but still ran on the store. Two calls
   * that may run at the same time must never share one: the second would run alongside the
   * first.
   *
   * @example
   * { leaseMs: 60_000, requestId: `job:${job.id}` }
   */
  readonly requestId?: string;
}

/** The outcome of {@link IdempotencyStore.claim}, a value for every expected case. */
export type ClaimResult<R = unknown> =
  | {
      readonly status: 'claimed';
      /**
       * Fencing token: only its holder may complete or release. The claim's `requestId` when it
       * had one, else a random one.
       */
      readonly token: string;
    }
  | {
      readonly status: 'in_progress';
      /** Milliseconds until the current lease runs out. */
      readonly retryAfterMs: number;
    }
  | {
      readonly status: 'completed';
      /** What the first run stored. */
      readonly result: R;
    }
  | { readonly status: 'mismatch' };

/**
 * Where "this already happened" is remembered: a key is absent, `in_progress` under a lease,
 * or `completed` with a stored result. Every method rejects with `StoreUnavailableError` when
 * the store can't be reached: never read that as "not seen before".
 */
export interface IdempotencyStore {
  /**
   * Claims `key` for this worker, or reports who has it and what came of it. A key held in
   * progress under the same `requestId` (or a store-made token the same claim carries when a
   * client sends it again) is claimed again, its lease started anew.
   */
  claim<R = unknown>(key: string, options: ClaimOptions): Promise<ClaimResult<R>>;
  /**
   * Stores `result` for `resultTtlMs` milliseconds and ends the lease. `false` (nothing written) if
   * `token` is no longer the current holder's: the lease expired and someone took over.
   */
  complete(
    key: string,
    token: string,
    result: unknown,
    options: { readonly resultTtlMs: number },
  ): Promise<boolean>;
  /** Drops the claim so that a retry can run again. `false` if `token` no longer holds it. */
  release(key: string, token: string): Promise<boolean>;
  /** `true` the first time `key` is seen within `ttlMs` milliseconds, `false` after. */
  markOnce(key: string, ttlMs: number): Promise<boolean>;
}
