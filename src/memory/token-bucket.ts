import { type Clock, systemClock } from '../core/clock.js';
import { type EventListener, emit } from '../core/events.js';
import { RateLimitAbortedError, RateLimitTimeoutError } from '../core/rate-limit-errors.js';
import type { AcquireOptions, AcquireResult, RateLimiter } from '../core/rate-limit-types.js';
import type { ThrottleFeedback } from '../core/retry.js';
import { cubicRate, msUntil, refill } from '../core/token-bucket-math.js';
import {
  type AdaptiveOptions,
  granted,
  NO_FEEDBACK,
  type ResolvedAdaptiveOptions,
  refused,
  rejectKey,
  rejectTokens,
  resolveAdaptive,
  type TokenBucketBaseOptions,
  validateLimits,
  validTokens,
} from '../core/token-bucket-options.js';
import { assertNumber, showValue } from '../core/validate.js';

/** Options of {@link createTokenBucket}. */
export interface TokenBucketOptions extends TokenBucketBaseOptions {
  /**
   * Most keys held at once. When a new key would exceed it, the least recently used key
   * without waiters is dropped (it starts over with a full bucket if it comes back), so set
   * it above the number of keys active within `capacity / refillPerSecond` seconds. Idle
   * keys whose bucket is full again are dropped anyway, without a cap.
   * @default Infinity
   */
  readonly maxKeys?: number;
  /**
   * Slow a key down when `retry` reports that the server throttled it (pass
   * `bucket.feedback(key)` as `retry`'s `feedback`). `true` uses {@link ADAPTIVE_DEFAULTS}.
   * @default false
   */
  readonly adaptive?: boolean | AdaptiveOptions;
}

/** The defaults of {@link TokenBucketOptions}. */
export const TOKEN_BUCKET_DEFAULTS = Object.freeze({
  maxKeys: Number.POSITIVE_INFINITY,
  adaptive: false,
});

/** A per-key token bucket held in memory; `tryAcquire` is synchronous. */
export interface TokenBucket extends RateLimiter {
  tryAcquire(key: string, tokens?: number): AcquireResult;
  /** The refill `key` gets now, in tokens per second: below the setting after throttles. */
  effectiveRefillPerSecond(key: string): number;
  /** Keys currently held. */
  readonly size: number;
}

interface Waiter {
  readonly tokens: number;
  readonly startMs: number;
  /** Absolute clock time by which the grant must come; `Infinity` without `maxWaitMs`. */
  readonly deadlineMs: number;
  readonly maxWaitMs: number;
  readonly resolve: (waitedMs: number) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** The FIFO line of one key, and its single timer. */
interface Line {
  readonly queue: Waiter[];
  /** Tokens asked for by everyone in `queue`. */
  queued: number;
  pumping: boolean;
  /** Aborts the current sleep so that the line is looked at again at once. */
  wake: AbortController | undefined;
}

interface Throttle {
  /** Effective refill when throttled, in tokens per millisecond. */
  readonly rateAtThrottle: number;
  readonly throttledAtMs: number;
}

interface Bucket {
  tokens: number;
  /** Latest clock reading seen, in milliseconds. */
  at: number;
  /** Position in the LRU order (see `touch`). */
  stamp: number;
  line: Line | undefined;
  throttle: Throttle | undefined;
}

const RESOLVED_ZERO: Promise<number> = Promise.resolve(0);

/**
 * A per-key token bucket in memory: each key holds up to `capacity` tokens and gains
 * `refillPerSecond`; a new key starts full. `tryAcquire` answers at once; `acquire` waits in
 * a first-come-first-served line per key, so a request for many tokens is not starved by
 * small ones. There is no timer per key: buckets refill on reading, full idle ones are dropped
 * as new keys arrive, and `maxKeys` caps the map.
 *
 * @example
 * const perNumber = createTokenBucket(WHATSAPP_RATE_LIMITS.perPhoneNumber);
 * await perNumber.acquire(phoneNumberId, 1, { maxWaitMs: 10_000 });
 * await sendMessage(phoneNumberId, message);
 */
export function createTokenBucket(options: TokenBucketOptions): TokenBucket {
  const refillPerMs = validateLimits(options);
  const { capacity } = options;
  const clock: Clock = options.clock ?? systemClock;
  const maxKeys =
    options.maxKeys === undefined
      ? TOKEN_BUCKET_DEFAULTS.maxKeys
      : assertNumber('maxKeys', options.maxKeys, 1);
  if (maxKeys !== Number.POSITIVE_INFINITY && !Number.isInteger(maxKeys)) {
    throw new RangeError(`maxKeys must be an integer, got ${showValue(maxKeys)}`);
  }
  const adaptive: ResolvedAdaptiveOptions | undefined = resolveAdaptive(options.adaptive);
  const onEvent: EventListener | undefined = options.onEvent;
  const minRefillPerMs =
    adaptive === undefined ? refillPerMs : refillPerMs * adaptive.minRefillRatio;

  const buckets = new Map<string, Bucket>();
  // LRU with lazy promotion: a hit moves its key to the back of the map only once the key has
  // drifted into the older half, so most hits cost one lookup. The front of the map is then a
  // key unused for at least maxKeys/2 insertions or promotions.
  const promoteAfter = Math.floor(maxKeys / 2);
  let tick = 0;
  let sweeper: MapIterator<[string, Bucket]> | undefined;

  const rateOf = (b: Bucket, now: number): number => {
    const t = b.throttle;
    if (t === undefined || adaptive === undefined) return refillPerMs;
    const rate = cubicRate(
      t.rateAtThrottle,
      now - t.throttledAtMs,
      adaptive.decreaseFactor,
      adaptive.recoveryMs,
      minRefillPerMs,
      refillPerMs,
    );
    if (rate === refillPerMs) b.throttle = undefined;
    return rate;
  };

  /** Drops up to two idle keys whose bucket is full again (nothing would change if kept). */
  const sweep = (now: number): void => {
    for (let i = 0; i < 2; i++) {
      let step = sweeper?.next();
      if (step === undefined || step.done) {
        sweeper = buckets.entries();
        step = sweeper.next();
        if (step.done) return;
      }
      const [key, b] = step.value;
      if (
        b.line === undefined &&
        b.throttle === undefined &&
        refill(b.tokens, b.at, now, capacity, refillPerMs) >= capacity
      ) {
        buckets.delete(key);
      }
    }
  };

  const evictOne = (): void => {
    for (const [key, b] of buckets) {
      if (b.line === undefined) {
        buckets.delete(key);
        return;
      }
    }
  };

  const insert = (key: string, now: number): Bucket => {
    sweep(now);
    if (buckets.size >= maxKeys) evictOne();
    const b: Bucket = {
      tokens: capacity,
      at: now,
      stamp: ++tick,
      line: undefined,
      throttle: undefined,
    };
    buckets.set(key, b);
    return b;
  };

  const bucketFor = (key: string, now: number): Bucket => {
    const b = buckets.get(key);
    if (b === undefined) return insert(key, now);
    if (tick - b.stamp > promoteAfter) {
      buckets.delete(key);
      buckets.set(key, b);
      b.stamp = ++tick;
    }
    return b;
  };

  const refuse = (key: string, now: number, retryAfterMs: number): AcquireResult => {
    if (onEvent !== undefined) {
      emit(onEvent, {
        type: 'rate_limit_wait',
        time: now,
        key,
        waitMs: retryAfterMs,
        granted: false,
      });
    }
    return refused(retryAfterMs);
  };

  const tryAcquire = (key: string, tokens = 1): AcquireResult => {
    if (typeof key !== 'string' || key.length === 0) rejectKey(key);
    if (tokens !== 1 && !validTokens(tokens, capacity)) rejectTokens(tokens, capacity);
    const now = clock.now();
    const b = bucketFor(key, now);
    const rate = b.throttle === undefined ? refillPerMs : rateOf(b, now);
    const available = refill(b.tokens, b.at, now, capacity, rate);
    if (now > b.at) b.at = now;
    const line = b.line;
    if (line === undefined && available >= tokens) {
      const left = available - tokens;
      b.tokens = left;
      return granted(Math.floor(left));
    }
    b.tokens = available;
    // Waiters are served first: a caller who doesn't wait must not overtake them.
    const ahead = line === undefined ? 0 : line.queued;
    return refuse(key, now, msUntil(available, ahead + tokens, rate));
  };

  const settle = (w: Waiter): void => {
    if (w.onAbort !== undefined) w.signal?.removeEventListener('abort', w.onAbort);
  };

  const remove = (line: Line, index: number): Waiter => {
    const [w] = line.queue.splice(index, 1) as [Waiter];
    line.queued -= w.tokens;
    settle(w);
    return w;
  };

  /** Serves `key`'s line in order; one sleep at a time, until the line is empty. */
  const pump = async (key: string, b: Bucket, line: Line): Promise<void> => {
    line.pumping = true;
    while (line.queue.length > 0) {
      const now = clock.now();
      const rate = rateOf(b, now);
      let available = refill(b.tokens, b.at, now, capacity, rate);
      if (now > b.at) b.at = now;
      let head = line.queue[0]!;
      while (head !== undefined && available >= head.tokens) {
        available -= head.tokens;
        remove(line, 0);
        const waitedMs = now - head.startMs;
        if (onEvent !== undefined) {
          emit(onEvent, {
            type: 'rate_limit_wait',
            time: now,
            key,
            waitMs: waitedMs,
            granted: true,
          });
        }
        head.resolve(waitedMs);
        head = line.queue[0]!;
      }
      b.tokens = available;
      if (head === undefined) break;
      // Give up now on behalf of those whose turn can't come before their deadline.
      let demand = 0;
      for (let i = 0; i < line.queue.length; i++) {
        const w = line.queue[i]!;
        const eta = msUntil(available, demand + w.tokens, rate);
        if (now + eta > w.deadlineMs) {
          remove(line, i--);
          if (onEvent !== undefined) {
            emit(onEvent, { type: 'rate_limit_wait', time: now, key, waitMs: eta, granted: false });
          }
          w.reject(
            new RateLimitTimeoutError({
              key,
              tokens: w.tokens,
              maxWaitMs: w.maxWaitMs,
              retryAfterMs: eta,
            }),
          );
        } else {
          demand += w.tokens;
        }
      }
      head = line.queue[0]!;
      if (head === undefined) break;
      const wake = new AbortController();
      line.wake = wake;
      try {
        await clock.sleep(msUntil(available, head.tokens, rate), wake.signal);
      } catch {
        // Woken early: the line changed.
      }
      line.wake = undefined;
    }
    line.pumping = false;
    if (b.line === line) b.line = undefined;
  };

  const acquire = (key: string, tokens = 1, options?: AcquireOptions): Promise<number> => {
    try {
      if (typeof key !== 'string' || key.length === 0) rejectKey(key);
      if (tokens !== 1 && !validTokens(tokens, capacity)) rejectTokens(tokens, capacity);
    } catch (error) {
      return Promise.reject(error);
    }
    const signal = options?.signal;
    let maxWaitMs = Number.POSITIVE_INFINITY;
    if (options?.maxWaitMs !== undefined) {
      try {
        maxWaitMs = assertNumber('maxWaitMs', options.maxWaitMs, 0);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (signal?.aborted)
      return Promise.reject(new RateLimitAbortedError({ key, tokens }, signal.reason));
    const now = clock.now();
    const b = bucketFor(key, now);
    const rate = rateOf(b, now);
    const available = refill(b.tokens, b.at, now, capacity, rate);
    if (now > b.at) b.at = now;
    if (b.line === undefined && available >= tokens) {
      b.tokens = available - tokens;
      return RESOLVED_ZERO;
    }
    b.tokens = available;
    const ahead = b.line === undefined ? 0 : b.line.queued;
    const eta = msUntil(available, ahead + tokens, rate);
    if (eta > maxWaitMs) {
      if (onEvent !== undefined) {
        emit(onEvent, { type: 'rate_limit_wait', time: now, key, waitMs: eta, granted: false });
      }
      return Promise.reject(
        new RateLimitTimeoutError({ key, tokens, maxWaitMs, retryAfterMs: eta }),
      );
    }
    let line = b.line;
    if (line === undefined) {
      line = { queue: [], queued: 0, pumping: false, wake: undefined };
      b.line = line;
    }
    const current = line;
    return new Promise<number>((resolve, reject) => {
      const w: Waiter = {
        tokens,
        startMs: now,
        deadlineMs: now + maxWaitMs,
        maxWaitMs,
        resolve,
        reject,
        signal,
        onAbort: undefined,
      };
      if (signal !== undefined) {
        w.onAbort = () => {
          const index = current.queue.indexOf(w);
          if (index < 0) return;
          remove(current, index);
          reject(new RateLimitAbortedError({ key, tokens }, signal.reason));
          if (index === 0) current.wake?.abort();
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      current.queue.push(w);
      current.queued += tokens;
      if (!current.pumping) void pump(key, b, current);
    });
  };

  const throttled = (key: string, retryAfterMs: number | undefined): void => {
    if (adaptive === undefined) return;
    const now = clock.now();
    const b = bucketFor(key, now);
    const last = b.throttle;
    if (last !== undefined && now - last.throttledAtMs < adaptive.throttleWindowMs) return;
    const rate = rateOf(b, now);
    const next = Math.max(rate * adaptive.decreaseFactor, minRefillPerMs);
    b.throttle = { rateAtThrottle: rate, throttledAtMs: now };
    if (now > b.at) b.at = now;
    // The server says the burst is spent: empty the bucket, and keep it empty for as long as
    // the server asked, if it did.
    b.tokens = retryAfterMs !== undefined && retryAfterMs > 0 ? -retryAfterMs * next : 0;
    b.line?.wake?.abort();
  };

  return {
    tryAcquire,
    acquire,
    feedback(key: string): ThrottleFeedback {
      if (typeof key !== 'string' || key.length === 0) rejectKey(key);
      if (adaptive === undefined) return NO_FEEDBACK;
      return {
        throttled: (classification) => throttled(key, classification?.retryAfterMs),
        succeeded() {},
      };
    },
    effectiveRefillPerSecond(key: string): number {
      if (typeof key !== 'string' || key.length === 0) rejectKey(key);
      const b = buckets.get(key);
      return b === undefined ? refillPerMs * 1000 : rateOf(b, clock.now()) * 1000;
    },
    get size() {
      return buckets.size;
    },
  };
}
