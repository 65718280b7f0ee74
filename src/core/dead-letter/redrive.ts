import type { Classification, Reason } from '../classify-types.js';
import { REASONS } from '../classify-types.js';
import type { Clock } from '../clock.js';
import { type BackoffOptions, computeDelay, resolveBackoff } from '../retry/backoff.js';
import { assertFunction, assertInteger, assertOneOf, showValue } from '../validate.js';
import type {
  DeadLetterEntry,
  ListOptions,
  RedriveOptions,
  RedriveReport,
  RedriveSelector,
} from './dead-letter-types.js';
import { attemptOf } from './failure.js';

/** The defaults of {@link RedriveOptions} and of listing. */
export const DEAD_LETTER_DEFAULTS = Object.freeze({
  /** Entries per `list` page. */
  listLimit: 100,
  /** Lease on an entry being redriven, in milliseconds. */
  leaseMs: 60_000,
  /**
   * The redrive backoff: 1 min after the first failed redrive of an entry, doubling, up to
   * 1 h. No jitter, so the wait is exactly what `notBefore` says.
   */
  backoff: Object.freeze({
    initialDelayMs: 60_000,
    multiplier: 2,
    maxDelayMs: 3_600_000,
    jitter: 'none',
  }) as Readonly<BackoffOptions>,
});

/** @internal One entry with its position in the queue (insertion order). */
export interface Positioned<P> {
  readonly seq: number;
  readonly entry: DeadLetterEntry<P>;
}

/** @internal What an adapter provides so that {@link runRedrive} can drive it. */
export interface RedrivePort<P> {
  /**
   * Entries after position `after`, oldest first, up to `upTo` inclusive, at most `limit`;
   * `tail` is the newest position now.
   */
  scan(
    after: number,
    limit: number,
    reason: Reason | undefined,
    upTo: number,
  ): Promise<{ readonly items: readonly Positioned<P>[]; readonly more: boolean; tail: number }>;
  /**
   * Claims `id` under `token` for `holdMs` (on the store's clock), unless another claim holds
   * it or its not-before time hasn't passed (`leased`). Claiming again under the token that
   * holds it sets a new hold from now.
   */
  claim(
    id: string,
    token: string,
    holdMs: number,
  ): Promise<
    | { readonly status: 'claimed'; readonly entry: DeadLetterEntry<P> }
    | { readonly status: 'leased' | 'missing' }
  >;
  /** The handler succeeded: removes the entry. */
  succeed(id: string, token: string): Promise<void>;
  /**
   * The handler failed: if `token` still holds the claim, stores `entry` (the failure
   * appended) and replaces the claim by a not-before time `delayMs` from now (on the store's
   * clock).
   */
  fail(id: string, token: string, entry: DeadLetterEntry<P>, delayMs: number): Promise<void>;
}

/** @internal Reads a `list` cursor: the position of the last entry of the previous page. */
export function parseCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  if (typeof cursor !== 'string' || !/^\d{1,15}$/.test(cursor)) {
    throw new TypeError(`cursor must be a cursor returned by list(), got ${showValue(cursor)}`);
  }
  return Number(cursor);
}

/** @internal Validates `list` options. */
export function listOptions(options: ListOptions): {
  after: number;
  limit: number;
  reason: Reason | undefined;
} {
  return {
    after: parseCursor(options.cursor),
    limit: assertInteger('limit', options.limit ?? DEAD_LETTER_DEFAULTS.listLimit, 1, 10_000),
    reason:
      options.reason === undefined ? undefined : assertOneOf('reason', options.reason, REASONS),
  };
}

function selectorKind<P>(selector: RedriveSelector<P>):
  | { kind: 'ids'; ids: readonly string[] }
  | {
      kind: 'scan';
      reason: Reason | undefined;
      limit: number;
      keep: (e: DeadLetterEntry<P>) => boolean;
    } {
  if (typeof selector === 'function') {
    return { kind: 'scan', reason: undefined, limit: Infinity, keep: selector };
  }
  if (typeof selector !== 'object' || selector === null) {
    throw new TypeError(
      `selector must be { ids }, { reason, limit } or a function, got ${showValue(selector)}`,
    );
  }
  if ('ids' in selector) {
    if (!Array.isArray(selector.ids) || selector.ids.some((id) => typeof id !== 'string')) {
      throw new TypeError(
        `selector.ids must be an array of strings, got ${showValue(selector.ids)}`,
      );
    }
    return { kind: 'ids', ids: [...new Set(selector.ids)] };
  }
  const limit =
    selector.limit === undefined ? Infinity : assertInteger('selector.limit', selector.limit, 1);
  const reason =
    selector.reason === undefined
      ? undefined
      : assertOneOf('selector.reason', selector.reason, REASONS);
  return { kind: 'scan', reason, limit, keep: () => true };
}

/**
 * @internal The redrive loop every adapter shares: select, claim under a lease, run the
 * handler, then remove the entry (success) or append the failure and release it.
 */
export async function runRedrive<P>(
  port: RedrivePort<P>,
  selector: RedriveSelector<P>,
  handler: (entry: DeadLetterEntry<P>) => unknown,
  options: RedriveOptions,
  context: {
    readonly clock: Clock;
    readonly classify: (error: unknown) => Classification;
    readonly token: string;
  },
): Promise<RedriveReport> {
  assertFunction('handler', handler);
  const leaseMs = assertInteger('leaseMs', options.leaseMs ?? DEAD_LETTER_DEFAULTS.leaseMs, 1);
  const backoff = options.backoff ?? DEAD_LETTER_DEFAULTS.backoff;
  resolveBackoff(backoff, 'backoff');
  const { signal } = options;
  const sel = selectorKind(selector);
  const redriven: string[] = [];
  const failed: string[] = [];
  const skipped: string[] = [];

  const one = async (id: string, failures: number | undefined): Promise<void> => {
    signal?.throwIfAborted();
    let delayMs = Math.ceil(computeDelay(failures ?? 0, backoff));
    let claim = await port.claim(id, context.token, Math.max(leaseMs, delayMs));
    const redriveFailures = claim.status === 'claimed' ? (claim.entry.redriveFailures ?? 0) + 1 : 0;
    if (claim.status === 'claimed' && redriveFailures - 1 !== (failures ?? 0)) {
      // Selected by id, or failed elsewhere since the scan: hold it for its own backoff.
      delayMs = Math.ceil(computeDelay(redriveFailures - 1, backoff));
      claim = await port.claim(id, context.token, Math.max(leaseMs, delayMs));
    }
    if (claim.status !== 'claimed') {
      skipped.push(id);
      return;
    }
    try {
      await handler(claim.entry);
    } catch (error) {
      const now = context.clock.now();
      const attempt = attemptOf(error, context.classify(error), new Date(now).toISOString());
      const entry: DeadLetterEntry<P> = {
        ...claim.entry,
        attempts: [...claim.entry.attempts, attempt],
        lastAttemptAt: attempt.at,
        redriveFailures,
        notBefore: new Date(now + delayMs).toISOString(),
      };
      await port.fail(id, context.token, entry, delayMs);
      failed.push(id);
      return;
    }
    await port.succeed(id, context.token);
    redriven.push(id);
  };

  if (sel.kind === 'ids') {
    for (const id of sel.ids) await one(id, undefined);
    return { redriven, failed, skipped };
  }
  let after = 0;
  let upTo = Infinity;
  const pageSize = DEAD_LETTER_DEFAULTS.listLimit;
  for (;;) {
    signal?.throwIfAborted();
    const page = await port.scan(after, pageSize, sel.reason, upTo);
    if (upTo === Infinity) upTo = page.tail;
    for (const { seq, entry } of page.items) {
      after = seq;
      if (redriven.length + failed.length >= sel.limit) return { redriven, failed, skipped };
      if (sel.keep(entry)) await one(entry.id, entry.redriveFailures);
    }
    if (!page.more || redriven.length + failed.length >= sel.limit) break;
  }
  return { redriven, failed, skipped };
}
