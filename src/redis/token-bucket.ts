import { watchAbort } from '../core/abort-watch.js';
import type { ThrottleFeedback } from '../core/classify-types.js';
import { type Clock, systemClock } from '../core/clock.js';
import { StoreUnavailableError } from '../core/errors.js';
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
  RateLimiter,
} from '../core/rate-limit/rate-limit-types.js';
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
import { assertStoreErrorPolicy, type StoreErrorPolicy } from '../core/store-error.js';
import {
  assertInteger,
  assertKey,
  assertNumber,
  assertOneOf,
  showValue,
} from '../core/validate.js';
import type { RedisClientLike } from './client.js';
import { defineScript, hashTag, runScript } from './script.js';
import source from './scripts/token-bucket.lua';
import adaptiveSource from './scripts/token-bucket-adaptive.lua';
import rateSource from './scripts/token-bucket-rate.lua';
import throttleSource from './scripts/token-bucket-throttle.lua';

// Each script starts with the shared functions of token-bucket-adaptive.lua.
/** token-bucket.lua, as run (internal: tests replay it). */
export const SCRIPT = defineScript('token-bucket', `${adaptiveSource}\n${source}`);
const RATE_SCRIPT = defineScript('token-bucket-rate', `${adaptiveSource}\n${rateSource}`);
const THROTTLE_SCRIPT = defineScript(
  'token-bucket-throttle',
  `${adaptiveSource}\n${throttleSource}`,
);

/** Options of {@link createRedisTokenBucket}. */
export interface RedisTokenBucketOptions extends TokenBucketBaseOptions {
  /**
   * Prefix of every key; a bucket lives at `{prefix:key}` (one hash tag per bucket, so it
   * works on Redis Cluster).
   * @default 'retrykit:rate'
   */
  readonly prefix?: string;
  /**
   * Whose clock the bucket maths reads. `'redis'`: the server's `TIME`, one clock for every
   * instance however skewed their own clocks are. `'client'`: this process's `clock.now()`,
   * for managed Redis that forbids `TIME` in scripts; keep the clients in sync with NTP.
   * @default 'redis'
   */
  readonly timeSource?: 'redis' | 'client';
  /**
   * Milliseconds to wait for Redis before treating it as unavailable (see `onStoreError`),
   * so that a hung server doesn't hang callers. 0 waits for ever.
   * @default 2_000
   */
  readonly commandTimeoutMs?: number;
  /**
   * What to do when Redis can't answer. `'fail'`: reject with `StoreUnavailableError`.
   * `'proceed'`: grant (`remaining: 0`), trading the limit for availability. A `RateLimiter`
   * (say a `createMemoryTokenBucket` sized for one instance): ask it instead.
   * @default 'fail'
   */
  readonly onStoreError?: StoreErrorPolicy | RateLimiter;
  /**
   * Tag every call with a request id the script remembers for `2 × commandTimeoutMs` (at least
   * 2 s), so that a call a reconnecting client re-sends (ioredis does, by default) is not
   * charged twice. Costs one short-lived key per grant; turn it off only for clients that
   * never re-send (ioredis: `autoResendUnfulfilledCommands: false`).
   * @default true
   */
  readonly dedupe?: boolean;
  /**
   * Slow a key down when `retry` reports that the server throttled it (pass
   * `bucket.feedback(key)` as `retry`'s `feedback`), for every process sharing the prefix at
   * once: the lowered rate, the time of the throttle and the cubic recovery live in the
   * bucket's key, with the same maths and `AdaptiveOptions` defaults as
   * `createMemoryTokenBucket`, including the `maxThrottleMs` cap on a server's Retry-After.
   * Give every process on one prefix the same setting: one that is not adaptive ignores a
   * throttle and drops it at its next grant. `true` uses every `AdaptiveOptions` default.
   * @default false
   */
  readonly adaptive?: boolean | AdaptiveOptions;
}

/** The defaults of {@link RedisTokenBucketOptions}. */
export const REDIS_TOKEN_BUCKET_DEFAULTS = Object.freeze({
  prefix: 'retrykit:rate',
  timeSource: 'redis',
  commandTimeoutMs: 2_000,
  onStoreError: 'fail',
  dedupe: true,
  adaptive: false,
});

/** A per-key token bucket kept in Redis, shared by every process that uses the same prefix. */
export interface RedisTokenBucket extends AdjustableRateLimiter {
  tryAcquire(key: string, tokens?: number): Promise<AcquireResult>;
  /**
   * Gives `key` its own rate, shared by every process on the same prefix (one small Redis key
   * per key with its own rate, kept until `resetRate`). Rejects with `StoreUnavailableError`
   * when Redis can't answer; repeating the call is safe. This process's waiting `acquire`
   * calls on the key look again at once; those in other processes at their next look.
   */
  setRate(key: string, rate: KeyRate): Promise<void>;
  resetRate(key: string): Promise<void>;
}

const NEVER = new Promise<never>(() => {});

function isRateLimiter(value: unknown): value is RateLimiter {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RateLimiter).tryAcquire === 'function' &&
    typeof (value as RateLimiter).acquire === 'function'
  );
}

/**
 * The script's reply: remaining tokens (≥ 0) when granted, -retryAfterMs when refused,
 * `capacity <c>` when the key's own capacity is below the request.
 */
function toResult(reply: unknown, tokens: number): AcquireResult {
  if (typeof reply === 'string' && reply.startsWith('capacity ')) {
    rejectTokens(tokens, Number(reply.slice(9)));
  }
  if (typeof reply !== 'number') {
    throw new StoreUnavailableError(
      'tryAcquire',
      new Error(`unexpected reply ${showValue(reply)}`),
    );
  }
  return reply >= 0 ? granted(reply) : refused(-reply);
}

/**
 * A per-key token bucket in Redis with the same interface as `createMemoryTokenBucket`: every
 * process sharing `prefix` shares the limit. Each `tryAcquire` is one EVALSHA of
 * `token-bucket.lua`; `acquire` waits for the `retryAfterMs` Redis reports, serving this
 * process's callers on a key first come, first served.
 *
 * @example
 * const redis = new Redis(process.env.REDIS_URL);
 * const perNumber = createRedisTokenBucket(redis, {
 *   prefix: 'wa:rate',
 *   ...WHATSAPP_RATE_LIMITS.perPhoneNumber,
 *   onStoreError: createMemoryTokenBucket({ capacity: 2, refillPerSecond: 20 }),
 * });
 * await perNumber.acquire(phoneNumberId, 1, { maxWaitMs: 10_000 });
 */
export function createRedisTokenBucket(
  client: RedisClientLike,
  options: RedisTokenBucketOptions,
): RedisTokenBucket {
  if (typeof client !== 'object' || client === null || typeof client.evalsha !== 'function') {
    throw new TypeError(`client must be a Redis client with evalsha(), got ${showValue(client)}`);
  }
  const refillPerMs = validateLimits(options);
  const { capacity } = options;
  const D = REDIS_TOKEN_BUCKET_DEFAULTS;
  const prefix = assertKey('prefix', options.prefix ?? D.prefix);
  const timeSource = assertOneOf('timeSource', options.timeSource ?? D.timeSource, [
    'redis',
    'client',
  ] as const);
  const commandTimeoutMs = assertInteger(
    'commandTimeoutMs',
    options.commandTimeoutMs ?? D.commandTimeoutMs,
    0,
  );
  const onStoreError = options.onStoreError ?? D.onStoreError;
  if (!isRateLimiter(onStoreError)) assertStoreErrorPolicy(onStoreError);
  const dedupe = options.dedupe ?? D.dedupe;
  if (typeof dedupe !== 'boolean') {
    throw new TypeError(`dedupe must be a boolean, got ${showValue(dedupe)}`);
  }
  const adaptive: ResolvedAdaptiveOptions | undefined = resolveAdaptive(options.adaptive);
  /** ARGV of the adaptive tuning, `['', '', '']` when not adaptive. */
  const adaptiveArgs: readonly (string | number)[] =
    adaptive === undefined
      ? ['', '', '']
      : [adaptive.decreaseFactor, adaptive.minRefillRatio, adaptive.recoveryMs];
  const clock: Clock = options.clock ?? systemClock;
  const onEvent: EventListener | undefined = options.onEvent;
  const rememberMs = commandTimeoutMs > 0 ? Math.max(2 * commandTimeoutMs, 2_000) : 60_000;
  const instance = Math.random().toString(36).slice(2, 10);
  let sequence = 0;

  /**
   * Throttles of this process still on their way to Redis, by key. A call on the key waits for
   * its throttle, so that this process's next call sees it (a first throttle script may need
   * two round trips, EVALSHA then EVAL, and a call sent between them would overtake it).
   */
  const throttling = new Map<string, Promise<unknown>>();

  /** One EVALSHA, after this process's throttle of `key` if one is in flight. */
  const take = (key: string, tokens: number): Promise<AcquireResult> => {
    if (throttling.size !== 0) {
      const pending = throttling.get(key);
      if (pending !== undefined) return pending.then(() => takeNow(key, tokens));
    }
    return takeNow(key, tokens);
  };

  /** One EVALSHA; rejects with StoreUnavailableError. */
  const takeNow = (key: string, tokens: number): Promise<AcquireResult> => {
    const bucket = hashTag(prefix, key);
    const limits = `${bucket}:limits`;
    const keys = dedupe
      ? [bucket, limits, `${bucket}:r:${instance}:${++sequence}`]
      : [bucket, limits];
    return runScript(
      client,
      SCRIPT,
      keys,
      [
        capacity,
        refillPerMs,
        tokens,
        timeSource === 'client' ? clock.now() : '',
        rememberMs,
        ...adaptiveArgs,
      ],
      { operation: 'tryAcquire', timeoutMs: commandTimeoutMs },
    ).then((reply) => toResult(reply, tokens));
  };

  /**
   * Validates a request. Whether it fits the key's capacity is the script's to say: another
   * process may have given the key its own.
   */
  const validate = (key: string, tokens: number): void => {
    if (typeof key !== 'string' || key.length === 0) rejectKey(key);
    if (tokens !== 1 && !validTokens(tokens, Number.MAX_VALUE)) rejectTokens(tokens, capacity);
  };

  /** Runs token-bucket-rate.lua: `limits` for `key`, or the configured ones. */
  const changeRate = (key: string, limits: [number, number] | undefined): Promise<void> => {
    const bucket = hashTag(prefix, key);
    return runScript(
      client,
      RATE_SCRIPT,
      [bucket, `${bucket}:limits`],
      [
        capacity,
        refillPerMs,
        limits === undefined ? '' : limits[0],
        limits === undefined ? '' : limits[1],
        timeSource === 'client' ? clock.now() : '',
        ...adaptiveArgs,
      ],
      { operation: 'setRate', timeoutMs: commandTimeoutMs },
    ).then(() => {
      const waiting = sleepers.get(key);
      if (waiting !== undefined) for (const wake of waiting) wake.abort();
    });
  };

  /**
   * Runs token-bucket-throttle.lua for `key`. A throttle Redis can't take is dropped (the
   * next one reports again): feedback must not fail the call it reports on.
   */
  const throttled = (key: string, a: ResolvedAdaptiveOptions, retryAfterMs: number | undefined) => {
    const holdMs =
      retryAfterMs !== undefined && retryAfterMs > 0 ? Math.min(retryAfterMs, a.maxThrottleMs) : 0;
    const bucket = hashTag(prefix, key);
    const sent = runScript(
      client,
      THROTTLE_SCRIPT,
      [bucket, `${bucket}:limits`],
      [
        capacity,
        refillPerMs,
        timeSource === 'client' ? clock.now() : '',
        a.decreaseFactor,
        a.minRefillRatio,
        a.recoveryMs,
        a.throttleWindowMs,
        holdMs,
      ],
      { operation: 'feedback', timeoutMs: commandTimeoutMs },
    ).then(
      (lowered) => {
        if (throttling.get(key) === sent) throttling.delete(key);
        if (lowered !== 1) return;
        const waiting = sleepers.get(key);
        if (waiting !== undefined) for (const wake of waiting) wake.abort();
      },
      () => {
        if (throttling.get(key) === sent) throttling.delete(key);
      },
    );
    throttling.set(key, sent);
  };

  /** This process's `acquire` calls sleeping on each key, woken when `setRate` changes it. */
  const sleepers = new Map<string, Set<AbortController>>();

  /**
   * Sleeps `ms` before asking Redis again, or less when this process changes the key's rate
   * (then the caller asks at once). Rejects with `RateLimitAbortedError` when `signal` aborts.
   */
  const sleepOrWake = async (
    key: string,
    tokens: number,
    ms: number,
    signal: AbortSignal | undefined,
  ): Promise<void> => {
    if (signal?.aborted) throw new RateLimitAbortedError({ key, tokens }, signal.reason);
    const wake = new AbortController();
    let waiting = sleepers.get(key);
    if (waiting === undefined) {
      waiting = new Set();
      sleepers.set(key, waiting);
    }
    waiting.add(wake);
    const unwatch = signal === undefined ? undefined : watchAbort(signal, () => wake.abort());
    try {
      await clock.sleep(ms, wake.signal);
    } catch {
      if (signal?.aborted) throw new RateLimitAbortedError({ key, tokens }, signal.reason);
    } finally {
      unwatch?.();
      waiting.delete(wake);
      if (waiting.size === 0 && sleepers.get(key) === waiting) sleepers.delete(key);
    }
  };

  const setRate = (key: string, rate: KeyRate): Promise<void> => {
    let limits: [number, number];
    try {
      if (typeof key !== 'string' || key.length === 0) rejectKey(key);
      if (typeof rate !== 'object' || rate === null) {
        throw new TypeError(`rate must be an object, got ${showValue(rate)}`);
      }
      const own = { capacity: rate.capacity ?? capacity, refillPerSecond: rate.refillPerSecond };
      limits = [own.capacity, validateLimits(own, 'rate.')];
    } catch (error) {
      return Promise.reject(error);
    }
    return changeRate(key, limits);
  };

  const resetRate = (key: string): Promise<void> => {
    try {
      if (typeof key !== 'string' || key.length === 0) rejectKey(key);
    } catch (error) {
      return Promise.reject(error);
    }
    return changeRate(key, undefined);
  };

  const tryAcquire = (key: string, tokens = 1): Promise<AcquireResult> => {
    try {
      validate(key, tokens);
    } catch (error) {
      return Promise.reject(error);
    }
    return take(key, tokens).then(
      (result) => {
        if (!result.ok && onEvent !== undefined) {
          emit(onEvent, {
            type: 'rate_limit_wait',
            time: clock.now(),
            key,
            waitMs: result.retryAfterMs,
            granted: false,
          });
        }
        return result;
      },
      (error: unknown) => {
        if (onStoreError === 'fail' || !(error instanceof StoreUnavailableError)) throw error;
        if (onStoreError === 'proceed') return granted(0);
        return onStoreError.tryAcquire(key, tokens);
      },
    );
  };

  /** The tail of each key's line in this process. */
  const lines = new Map<string, Promise<void>>();
  /**
   * When the caller sleeping at the head of each key's line asks Redis again, in `clock`
   * milliseconds: the `retryAfterMs` Redis told it, from when it was told. No caller behind it
   * can be granted sooner.
   */
  const headDueAt = new Map<string, number>();
  /**
   * Per key with a line: how many times a caller in it was refused and slept for tokens. A
   * caller that saw it change (or joined behind a sleeping head) waited for tokens; one that
   * didn't only waited for round trips, which is no wait.
   */
  const tokenSleeps = new Map<string, number>();

  /** Resolves when `turn` does; rejects on abort or when `deadlineMs` passes first. */
  const waitTurn = async (
    turn: Promise<void>,
    key: string,
    tokens: number,
    signal: AbortSignal | undefined,
    deadlineMs: number,
    maxWaitMs: number,
  ): Promise<void> => {
    const stop = new AbortController();
    const timeout =
      deadlineMs === Number.POSITIVE_INFINITY
        ? NEVER
        : clock.sleep(Math.max(0, deadlineMs - clock.now()), stop.signal).then(() => {
            const now = clock.now();
            const retryAfterMs = Math.max(0, Math.ceil((headDueAt.get(key) ?? now) - now));
            throw new RateLimitTimeoutError({ key, tokens, maxWaitMs, retryAfterMs });
          });
    const aborted =
      signal === undefined
        ? NEVER
        : new Promise<never>((_, reject) => {
            const unwatch = watchAbort(signal, () =>
              reject(new RateLimitAbortedError({ key, tokens }, signal.reason)),
            );
            stop.signal.addEventListener('abort', unwatch);
          });
    timeout.catch(() => {});
    aborted.catch(() => {});
    try {
      await Promise.race([turn, timeout, aborted]);
    } finally {
      stop.abort();
    }
  };

  const acquire = async (key: string, tokens = 1, options?: AcquireOptions): Promise<number> => {
    validate(key, tokens);
    const signal = options?.signal;
    const maxWaitMs =
      options?.maxWaitMs === undefined
        ? Number.POSITIVE_INFINITY
        : assertNumber('maxWaitMs', options.maxWaitMs, 0);
    if (signal?.aborted) throw new RateLimitAbortedError({ key, tokens }, signal.reason);
    const start = clock.now();
    const deadlineMs = start + maxWaitMs;
    const ahead = lines.get(key);
    let leave!: () => void;
    const done = new Promise<void>((resolve) => {
      leave = resolve;
    });
    const tail = ahead === undefined ? done : ahead.then(() => done);
    lines.set(key, tail);
    const sleepsAtJoin = tokenSleeps.get(key) ?? 0;
    const behindSleeper = headDueAt.has(key);
    try {
      if (ahead !== undefined) await waitTurn(ahead, key, tokens, signal, deadlineMs, maxWaitMs);
      for (;;) {
        let result: AcquireResult;
        try {
          result = await take(key, tokens);
        } catch (error) {
          if (onStoreError === 'fail' || !(error instanceof StoreUnavailableError)) throw error;
          if (onStoreError === 'proceed') return clock.now() - start;
          const spent = clock.now() - start;
          const fallbackOptions: AcquireOptions = {
            ...(signal === undefined ? {} : { signal }),
            ...(maxWaitMs === Number.POSITIVE_INFINITY
              ? {}
              : { maxWaitMs: Math.max(0, maxWaitMs - spent) }),
          };
          return spent + (await onStoreError.acquire(key, tokens, fallbackOptions));
        }
        const now = clock.now();
        if (result.ok) {
          const waitedMs = now - start;
          const starved = behindSleeper || (tokenSleeps.get(key) ?? 0) !== sleepsAtJoin;
          if (starved && onEvent !== undefined) {
            emit(onEvent, {
              type: 'rate_limit_wait',
              time: now,
              key,
              waitMs: waitedMs,
              granted: true,
            });
          }
          return waitedMs;
        }
        if (now + result.retryAfterMs > deadlineMs) {
          if (onEvent !== undefined) {
            emit(onEvent, {
              type: 'rate_limit_wait',
              time: now,
              key,
              waitMs: now - start + result.retryAfterMs,
              granted: false,
            });
          }
          throw new RateLimitTimeoutError({
            key,
            tokens,
            maxWaitMs,
            retryAfterMs: result.retryAfterMs,
          });
        }
        headDueAt.set(key, now + result.retryAfterMs);
        tokenSleeps.set(key, (tokenSleeps.get(key) ?? 0) + 1);
        try {
          await sleepOrWake(key, tokens, result.retryAfterMs, signal);
        } finally {
          headDueAt.delete(key);
        }
      }
    } finally {
      leave();
      if (lines.get(key) === tail) {
        lines.delete(key);
        tokenSleeps.delete(key);
      }
    }
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
        throttled: (classification) => throttled(key, adaptive, classification?.retryAfterMs),
        succeeded() {},
      };
    },
  };
}
