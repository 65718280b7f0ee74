import { type Clock, systemClock } from '../core/clock.js';
import { completeDeadLetter, type Sink } from '../core/dead-letter/dead-letter.js';
import type {
  DeadLetterEntry,
  DeadLetterQueue,
  NewDeadLetter,
} from '../core/dead-letter/dead-letter-types.js';
import { describe, isRetrykitError, StoreUnavailableError } from '../core/errors.js';

/** Options of {@link withFallback}. */
export interface FallbackOptions<T> {
  /**
   * Called after an entry went to the fallback because the primary was unavailable. Must not
   * throw (a throw is ignored).
   *
   * @example
   * { onFallback: (entry, error) => log.error({ err: error }, 'dead letter written to file') }
   */
  readonly onFallback?: (entry: T, error: unknown) => void;
  /** Dates dead letters completed before they are written. @default systemClock */
  readonly clock?: Clock;
}

function isStoreUnavailable(error: unknown): boolean {
  return isRetrykitError(error) && error.code === 'STORE_UNAVAILABLE';
}

function isDeadLetterQueue<P>(sink: unknown): sink is DeadLetterQueue<P> {
  return typeof (sink as DeadLetterQueue<P>).redrive === 'function';
}

/**
 * A dead-letter queue that writes to `fallback` (a `createFileSink` file) whenever the
 * primary rejects with `StoreUnavailableError`, so a dead letter is never lost to a Redis
 * outage; other errors (bad input) still reject. When the fallback fails too, `add` rejects
 * with a `StoreUnavailableError` whose `cause` is an `AggregateError` holding both errors,
 * the primary's first (`error.cause.errors`): nothing is stored then, and a `withFallback`
 * around this one still falls back. The entry's `id` and `deadAt` are fixed
 * before the first try, so replaying the file into the queue later (`replayFile(path,
 * (e) => dlq.add(e))`) keeps every id, and replaying one twice is harmless. Everything but
 * `add` goes to the primary.
 *
 * @example
 * const dlq = withFallback(
 *   createRedisDeadLetterQueue(redis, { prefix: 'myapp:dlq' }),
 *   createFileSink<DeadLetterEntry>('/var/lib/myapp/dead-letters.jsonl'),
 * );
 */
export function withFallback<P>(
  primary: DeadLetterQueue<P>,
  fallback: Sink<DeadLetterEntry<P>>,
  options?: FallbackOptions<DeadLetterEntry<P>>,
): DeadLetterQueue<P>;
/** Any sink with `add`: writes to `fallback` when `primary` rejects with `StoreUnavailableError`. */
export function withFallback<T>(
  primary: Sink<T>,
  fallback: Sink<T>,
  options?: FallbackOptions<T>,
): Sink<T>;
export function withFallback<T>(
  primary: Sink<T>,
  fallback: Sink<T>,
  options: FallbackOptions<T> = {},
): Sink<T> {
  for (const [name, sink] of [
    ['primary', primary],
    ['fallback', fallback],
  ] as const) {
    if (typeof sink?.add !== 'function') {
      throw new TypeError(`${name} must have an add(entry) method`);
    }
  }
  const clock = options.clock ?? systemClock;
  const divert = async (entry: T, error: unknown): Promise<void> => {
    if (!isStoreUnavailable(error)) throw error;
    try {
      await fallback.add(entry);
    } catch (fallbackError) {
      throw new StoreUnavailableError(
        `${(error as StoreUnavailableError).operation} (and its fallback)`,
        new AggregateError(
          [error, fallbackError],
          `the primary was unavailable (${describe(error)}) and the fallback failed too (${describe(fallbackError)})`,
        ),
      );
    }
    try {
      options.onFallback?.(entry, error);
    } catch {
      // A hook never changes the outcome.
    }
  };
  if (!isDeadLetterQueue(primary)) {
    return {
      async add(entry: T) {
        try {
          return await primary.add(entry);
        } catch (error) {
          await divert(entry, error);
          return undefined;
        }
      },
    };
  }
  const dlq = primary as DeadLetterQueue<unknown>;
  const wrapped: DeadLetterQueue<unknown> = {
    async add(entry: NewDeadLetter<unknown>) {
      const complete = completeDeadLetter(entry, clock.now());
      try {
        return await dlq.add(complete);
      } catch (error) {
        await divert(complete as T, error);
        return complete;
      }
    },
    get: (id) => dlq.get(id),
    list: (listOptions) => dlq.list(listOptions),
    size: () => dlq.size(),
    remove: (id) => dlq.remove(id),
    redrive: (selector, handler, redriveOptions) => dlq.redrive(selector, handler, redriveOptions),
    purge: () => dlq.purge(),
  };
  return wrapped as unknown as Sink<T>;
}
