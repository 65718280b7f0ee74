import { watchAbort } from '../core/abort-watch.js';
import type { ThrottleFeedback } from '../core/classify-types.js';
import { type Clock, systemClock } from '../core/clock.js';
import { type EventListener, emit } from '../core/events.js';
import {
  RateLimitAbortedError,
  RateLimitTimeoutError,
} from '../core/rate-limit/rate-limit-errors.js';
import type {
  AcquireOptions,
  AcquireResult,
  AdjustableRateLimiter,
  KeyRate,
} from '../core/rate-limit/rate-limit-types.js';
import { cubicRate, msUntil, refill } from '../core/rate-limit/token-bucket-math.js';
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
} from '../core/rate-limit/token-bucket-options.js';
import { assertInteger, assertNumber, showValue } from '../core/validate.js';

/** Options of {@link createMemoryTokenBucket}. */
export interface MemoryTokenBucketOptions extends TokenBucketBaseOptions {
  /**
   * Most keys held at once. When a new key would exceed it, the least recently used key
   * without waiters is dropped (it starts over with a full bucket if it comes back), so set
   * it above the number of keys active within `capacity / refillPerSecond` seconds. Idle
   * keys whose bucket is full again are dropped anyway, without a cap. Eviction costs O(1)
   * amortised, whatever the cap.
   * @default Infinity
   */
  readonly maxKeys?: number;
  /**
   * Most keys with their own rate (see `setRate`) at once; `setRate` on one more key throws a
   * `RangeError` rather than drop another key's rate. A key's own rate outlives its bucket
   * being dropped, until `resetRate`.
   * @default 10_000
   */
  readonly maxRateOverrides?: number;
  /**
   * Slow a key down when `retry` reports that the server throttled it (pass
   * `bucket.feedback(key)` as `retry`'s `feedback`). `true` uses every `AdaptiveOptions` default.
   * @default false
   */
  readonly adaptive?: boolean | AdaptiveOptions;
}

/** The defaults of {@link MemoryTokenBucketOptions}. */
export const TOKEN_BUCKET_DEFAULTS = Object.freeze({
  maxKeys: Number.POSITIVE_INFINITY,
  maxRateOverrides: 10_000,
  adaptive: false,
});

/** A per-key token bucket held in memory; `tryAcquire` is synchronous. */
export interface MemoryTokenBucket extends AdjustableRateLimiter {
  tryAcquire(key: string, tokens?: number): AcquireResult;
  setRate(key: string, rate: KeyRate): void;
  resetRate(key: string): void;
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
  /** Stops watching `signal`. */
  unwatch: (() => void) | undefined;
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

/** A key's own limits, set by `setRate`. */
interface Limits {
  readonly capacity: number;
  /** Tokens per millisecond. */
  readonly refillPerMs: number;
  /** The adaptive floor, in tokens per millisecond. */
  readonly minRefillPerMs: number;
}

/** Flag bits of a slot. */
const HAS_LINE = 1;
const THROTTLED = 2;
const OWN_RATE = 4;
const INITIAL_SLOTS = 1024;

const RESOLVED_ZERO: Promise<number> = Promise.resolve(0);

/** Throws unless `tokens` is a request of at most `limit`; the error names `capacity`. */
function checkTokens(tokens: number, limit: number, capacity: number): void {
  if (!validTokens(tokens, limit)) rejectTokens(tokens, capacity);
}

/**
 * A per-key token bucket in memory: each key holds up to `capacity` tokens and gains
 * `refillPerSecond`; a new key starts full. `tryAcquire` answers at once; `acquire` waits in
 * a first-come-first-served line per key, so a request for many tokens is not starved by
 * small ones. There is no timer per key: buckets refill on reading, full idle ones are dropped
 * as new keys arrive, and `maxKeys` caps the map.
 *
 * @example
 * const perNumber = createMemoryTokenBucket(WHATSAPP_RATE_LIMITS.perPhoneNumber);
 * await perNumber.acquire(phoneNumberId, 1, { maxWaitMs: 10_000 });
 * await sendMessage(phoneNumberId, message);
 */
export function createMemoryTokenBucket(options: MemoryTokenBucketOptions): MemoryTokenBucket {
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
  const maxRateOverrides = assertInteger(
    'maxRateOverrides',
    options.maxRateOverrides ?? TOKEN_BUCKET_DEFAULTS.maxRateOverrides,
    0,
  );
  const adaptive: ResolvedAdaptiveOptions | undefined = resolveAdaptive(options.adaptive);
  const onEvent: EventListener | undefined = options.onEvent;
  const floorOf = (rate: number): number =>
    adaptive === undefined ? rate : rate * adaptive.minRefillRatio;
  const minRefillPerMs = floorOf(refillPerMs);

  const capped = maxKeys !== Number.POSITIVE_INFINITY;
  // Each key owns a slot in a few typed arrays (17 bytes a key, 33 with maxKeys; no object per
  // key); the rare keys with waiters or a throttle keep those in side maps, flagged in `flags`.
  const slots = new Map<string, number>();
  let tokensAt = new Float64Array(INITIAL_SLOTS);
  let seenAt = new Float64Array(INITIAL_SLOTS);
  let flags = new Uint8Array(INITIAL_SLOTS);
  // With maxKeys, the slots also form a doubly linked list in least-recently-used order, in
  // two typed arrays: a hit relinks its slot at the newest end, eviction unlinks the oldest,
  // both O(1). (Keeping the order in the map itself, by deleting and re-adding a key on each
  // hit, cost about 40 % of the check with 1,000 keys in turn; finding the oldest key by
  // iterating the map from the front walked every deleted entry still in its table, making
  // eviction O(maxKeys): bench/limiter.ts, "eviction past maxKeys".)
  let older = new Int32Array(capped ? INITIAL_SLOTS : 0);
  let newer = new Int32Array(capped ? INITIAL_SLOTS : 0);
  const keyOf: string[] = [];
  let oldest = -1;
  let newest = -1;
  const freeSlots: number[] = [];
  let usedSlots = 0;
  const lines = new Map<number, Line>();
  const throttles = new Map<number, Throttle>();
  /** Keys' own limits by key (they outlive the slot), and by slot for the keys held. */
  const overrides = new Map<string, Limits>();
  /** At least the largest capacity any key has: requests above it are refused before lookup. */
  let maxCapacity = capacity;
  const slotLimits = new Map<number, Limits>();
  let sweeper: MapIterator<[string, number]> | undefined;
  // A caller checking one key over and over skips the map: its slot is remembered. Looking
  // the key up in `slots` every time left one key at 0.87-0.89× limiter's bare bucket always
  // granted and 0.92-0.99× saturated; remembered, 0.97-1.15× and 1.03-1.08× (bench/limiter.ts,
  // "memory tryAcquire", and the same loops alone, load average 10 on 2 cores). Comparing
  // every key with the last one would cost 1,000 keys in turn 15-18 % (a string comparison
  // on every miss), so the key is compared only once the last two `tryAcquire` calls found the
  // same slot (`hot`), which a miss learns by comparing slot numbers. Anything that could make
  // `lastSlot` wrong clears both: the slot being released (evicted or swept, then reused by
  // another key) or, with maxKeys, another slot becoming the most recently used (a hit must
  // then relink, which `slotFor` does).
  let lastSlot = -1;
  let hot = false;
  let hotKey = '';

  const grow = (): void => {
    const size = tokensAt.length * 2;
    const t = new Float64Array(size);
    t.set(tokensAt);
    tokensAt = t;
    const a = new Float64Array(size);
    a.set(seenAt);
    seenAt = a;
    if (capped) {
      const o = new Int32Array(size);
      o.set(older);
      older = o;
      const n = new Int32Array(size);
      n.set(newer);
      newer = n;
    }
    const f = new Uint8Array(size);
    f.set(flags);
    flags = f;
  };

  const capacityOf = (slot: number): number =>
    (flags[slot]! & OWN_RATE) === 0 ? capacity : slotLimits.get(slot)!.capacity;

  const rateOf = (slot: number, now: number): number => {
    const own = (flags[slot]! & OWN_RATE) === 0 ? undefined : slotLimits.get(slot)!;
    const base = own === undefined ? refillPerMs : own.refillPerMs;
    if ((flags[slot]! & THROTTLED) === 0 || adaptive === undefined) return base;
    const t = throttles.get(slot)!;
    const rate = cubicRate(
      t.rateAtThrottle,
      now - t.throttledAtMs,
      adaptive.decreaseFactor,
      adaptive.recoveryMs,
      own === undefined ? minRefillPerMs : own.minRefillPerMs,
      base,
    );
    if (rate === base) {
      throttles.delete(slot);
      flags[slot] = flags[slot]! & ~THROTTLED;
    }
    return rate;
  };

  const unlink = (slot: number): void => {
    const o = older[slot]!;
    const n = newer[slot]!;
    if (o === -1) oldest = n;
    else newer[o] = n;
    if (n === -1) newest = o;
    else older[n] = o;
  };

  const linkNewest = (slot: number): void => {
    if (slot !== lastSlot) hot = false;
    older[slot] = newest;
    newer[slot] = -1;
    if (newest === -1) oldest = slot;
    else newer[newest] = slot;
    newest = slot;
  };

  const release = (key: string, slot: number): void => {
    if (slot === lastSlot) {
      lastSlot = -1;
      hot = false;
    }
    if (capped) {
      unlink(slot);
      keyOf[slot] = '';
    }
    slots.delete(key);
    throttles.delete(slot);
    if ((flags[slot]! & OWN_RATE) !== 0) slotLimits.delete(slot);
    flags[slot] = 0;
    freeSlots.push(slot);
  };

  /** Drops up to two idle keys whose bucket is full again (nothing would change if kept). */
  const sweep = (now: number): void => {
    for (let i = 0; i < 2; i++) {
      let step = sweeper?.next();
      if (step === undefined || step.done) {
        sweeper = slots.entries();
        step = sweeper.next();
        if (step.done) return;
      }
      const [key, slot] = step.value;
      if (
        flags[slot] === 0 &&
        refill(tokensAt[slot]!, seenAt[slot]!, now, capacity, refillPerMs) >= capacity
      ) {
        release(key, slot);
      }
    }
  };

  /** Drops the least recently used key without waiters; keys with waiters go to the back. */
  const evictOne = (): void => {
    for (let left = slots.size; left > 0 && oldest !== -1; left--) {
      const slot = oldest;
      if ((flags[slot]! & HAS_LINE) === 0) {
        release(keyOf[slot]!, slot);
        return;
      }
      unlink(slot);
      linkNewest(slot);
    }
  };

  const insert = (key: string, now: number): number => {
    sweep(now);
    if (slots.size >= maxKeys) evictOne();
    let slot = freeSlots.pop();
    if (slot === undefined) {
      slot = usedSlots++;
      if (slot === tokensAt.length) grow();
    }
    seenAt[slot] = now;
    if (capped) {
      keyOf[slot] = key;
      linkNewest(slot);
    }
    const own = overrides.size === 0 ? undefined : overrides.get(key);
    if (own === undefined) {
      tokensAt[slot] = capacity;
      flags[slot] = 0;
    } else {
      tokensAt[slot] = own.capacity;
      flags[slot] = OWN_RATE;
      slotLimits.set(slot, own);
    }
    slots.set(key, slot);
    return slot;
  };

  const slotFor = (key: string, now: number): number => {
    const slot = slots.get(key);
    if (slot === undefined) return insert(key, now);
    if (capped && slot !== newest) {
      unlink(slot);
      linkNewest(slot);
    }
    return slot;
  };

  /** {@link slotFor} for `tryAcquire`: remembers the slot, and the key once it repeats. */
  const slotForNext = (key: string, now: number): number => {
    const slot = slotFor(key, now);
    if (slot === lastSlot) {
      hot = true;
      hotKey = key;
    } else {
      hot = false;
      lastSlot = slot;
    }
    return slot;
  };

  const emitRefusal = (key: string, now: number, retryAfterMs: number): void => {
    emit(onEvent, {
      type: 'rate_limit_wait',
      time: now,
      key,
      waitMs: retryAfterMs,
      granted: false,
    });
  };

  // Kept small, the rare cases (own rates, throttles, waiters, several tokens, events) behind
  // calls: V8 inlines a function of at most 460 bytes of bytecode into its caller (this one
  // is 438 built: `node --print-bytecode --print-bytecode-filter=tryAcquire`), and inlined, a
  // check costs about a fifth less (bench/limiter.ts, "memory tryAcquire").
  const tryAcquire = (key: string, tokens = 1): AcquireResult => {
    if (typeof key !== 'string' || key.length === 0) rejectKey(key);
    if (tokens !== 1) checkTokens(tokens, overrides.size === 0 ? capacity : maxCapacity, capacity);
    const now = clock.now();
    const slot = hot && key === hotKey ? lastSlot : slotForNext(key, now);
    const f = flags[slot]!;
    let cap = capacity;
    let rate = refillPerMs;
    if (f !== 0) {
      cap = capacityOf(slot);
      rate = rateOf(slot, now);
    }
    if (tokens !== 1) checkTokens(tokens, cap, cap);
    const last = seenAt[slot]!;
    const available = refill(tokensAt[slot]!, last, now, cap, rate);
    if ((f & HAS_LINE) === 0 && available >= tokens) {
      const left = available - tokens;
      tokensAt[slot] = left;
      if (now > last) seenAt[slot] = now;
      return granted(Math.floor(left));
    }
    // A refusal changes nothing: refilling later from the stored state gives the same tokens.
    // Waiters are served first: a caller who doesn't wait must not overtake them.
    const ahead = (f & HAS_LINE) === 0 ? 0 : lines.get(slot)!.queued;
    const retryAfterMs = msUntil(available, ahead + tokens, rate);
    if (onEvent !== undefined) emitRefusal(key, now, retryAfterMs);
    return refused(retryAfterMs);
  };

  const settle = (w: Waiter): void => {
    w.unwatch?.();
  };

  const remove = (line: Line, index: number): Waiter => {
    const [w] = line.queue.splice(index, 1) as [Waiter];
    line.queued -= w.tokens;
    settle(w);
    return w;
  };

  /** Serves `key`'s line in order; one sleep at a time, until the line is empty. */
  const pump = async (key: string, slot: number, line: Line): Promise<void> => {
    line.pumping = true;
    while (line.queue.length > 0) {
      const now = clock.now();
      const rate = rateOf(slot, now);
      let available = refill(tokensAt[slot]!, seenAt[slot]!, now, capacityOf(slot), rate);
      if (now > seenAt[slot]!) seenAt[slot] = now;
      let head = line.queue[0];
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
        head = line.queue[0];
      }
      tokensAt[slot] = available;
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
      head = line.queue[0];
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
    if (lines.get(slot) === line) {
      lines.delete(slot);
      flags[slot] = flags[slot]! & ~HAS_LINE;
    }
  };

  const acquire = (key: string, tokens = 1, options?: AcquireOptions): Promise<number> => {
    try {
      if (typeof key !== 'string' || key.length === 0) rejectKey(key);
      if (tokens !== 1 && !validTokens(tokens, overrides.size === 0 ? capacity : maxCapacity)) {
        rejectTokens(tokens, capacity);
      }
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
    const slot = slotFor(key, now);
    const cap = capacityOf(slot);
    if (tokens !== 1 && !validTokens(tokens, cap)) {
      try {
        rejectTokens(tokens, cap);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const rate = rateOf(slot, now);
    const available = refill(tokensAt[slot]!, seenAt[slot]!, now, cap, rate);
    if (now > seenAt[slot]!) seenAt[slot] = now;
    let line = lines.get(slot);
    if (line === undefined && available >= tokens) {
      tokensAt[slot] = available - tokens;
      return RESOLVED_ZERO;
    }
    tokensAt[slot] = available;
    const eta = msUntil(available, (line === undefined ? 0 : line.queued) + tokens, rate);
    if (eta > maxWaitMs) {
      if (onEvent !== undefined) {
        emit(onEvent, { type: 'rate_limit_wait', time: now, key, waitMs: eta, granted: false });
      }
      return Promise.reject(
        new RateLimitTimeoutError({ key, tokens, maxWaitMs, retryAfterMs: eta }),
      );
    }
    if (line === undefined) {
      line = { queue: [], queued: 0, pumping: false, wake: undefined };
      lines.set(slot, line);
      flags[slot] = flags[slot]! | HAS_LINE;
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
        unwatch: undefined,
      };
      if (signal !== undefined) {
        w.unwatch = watchAbort(signal, () => {
          const index = current.queue.indexOf(w);
          if (index < 0) return;
          remove(current, index);
          reject(new RateLimitAbortedError({ key, tokens }, signal.reason));
          if (index === 0) current.wake?.abort();
        });
      }
      current.queue.push(w);
      current.queued += tokens;
      if (!current.pumping) void pump(key, slot, current);
    });
  };

  const throttled = (key: string, retryAfterMs: number | undefined): void => {
    if (adaptive === undefined) return;
    const now = clock.now();
    const slot = slotFor(key, now);
    const last = throttles.get(slot);
    if (last !== undefined && now - last.throttledAtMs < adaptive.throttleWindowMs) return;
    const rate = rateOf(slot, now);
    const own = (flags[slot]! & OWN_RATE) === 0 ? undefined : slotLimits.get(slot)!;
    const next = Math.max(
      rate * adaptive.decreaseFactor,
      own === undefined ? minRefillPerMs : own.minRefillPerMs,
    );
    throttles.set(slot, { rateAtThrottle: rate, throttledAtMs: now });
    flags[slot] = flags[slot]! | THROTTLED;
    if (now > seenAt[slot]!) seenAt[slot] = now;
    // The server says the burst is spent: empty the bucket, and keep it empty for as long as
    // the server asked, if it did, up to maxThrottleMs.
    const holdMs =
      retryAfterMs !== undefined && retryAfterMs > 0
        ? Math.min(retryAfterMs, adaptive.maxThrottleMs)
        : 0;
    tokensAt[slot] = -holdMs * next;
    lines.get(slot)?.wake?.abort();
  };

  /** Moves `key` to `limits` (`undefined`: the configured ones), carrying its tokens over. */
  const changeRate = (key: string, limits: Limits | undefined): void => {
    const slot = slots.get(key);
    if (slot === undefined) return;
    const now = clock.now();
    const held = refill(tokensAt[slot]!, seenAt[slot]!, now, capacityOf(slot), rateOf(slot, now));
    if (now > seenAt[slot]!) seenAt[slot] = now;
    if (limits === undefined) {
      slotLimits.delete(slot);
      flags[slot] = flags[slot]! & ~OWN_RATE;
    } else {
      slotLimits.set(slot, limits);
      flags[slot] = flags[slot]! | OWN_RATE;
    }
    const cap = limits === undefined ? capacity : limits.capacity;
    tokensAt[slot] = Math.min(held, cap);
    const line = lines.get(slot);
    if (line === undefined) return;
    for (let i = 0; i < line.queue.length; i++) {
      const w = line.queue[i]!;
      if (w.tokens > cap) {
        remove(line, i--);
        try {
          rejectTokens(w.tokens, cap);
        } catch (error) {
          w.reject(error);
        }
      }
    }
    line.wake?.abort();
  };

  const setRate = (key: string, rate: KeyRate): void => {
    if (typeof key !== 'string' || key.length === 0) rejectKey(key);
    if (typeof rate !== 'object' || rate === null) {
      throw new TypeError(`rate must be an object, got ${showValue(rate)}`);
    }
    const own = {
      capacity: rate.capacity ?? capacity,
      refillPerSecond: rate.refillPerSecond,
    };
    const perMs = validateLimits(own, 'rate.');
    if (!overrides.has(key) && overrides.size >= maxRateOverrides) {
      throw new RangeError(
        `maxRateOverrides ${maxRateOverrides} reached: resetRate another key before giving "${key}" its own rate`,
      );
    }
    const limits: Limits = {
      capacity: own.capacity,
      refillPerMs: perMs,
      minRefillPerMs: floorOf(perMs),
    };
    overrides.set(key, limits);
    if (limits.capacity > maxCapacity) maxCapacity = limits.capacity;
    changeRate(key, limits);
  };

  const resetRate = (key: string): void => {
    if (typeof key !== 'string' || key.length === 0) rejectKey(key);
    if (!overrides.delete(key)) return;
    changeRate(key, undefined);
  };

  return {
    tryAcquire,
    acquire,
    setRate,
    resetRate,
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
      const slot = slots.get(key);
      if (slot !== undefined) return rateOf(slot, clock.now()) * 1000;
      return (overrides.get(key)?.refillPerMs ?? refillPerMs) * 1000;
    },
    get size() {
      return slots.size;
    },
  };
}
