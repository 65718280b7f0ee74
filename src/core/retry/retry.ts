import type { CircuitBreaker, CircuitPermit } from '../breaker/breaker.js';
import { CircuitOpenError } from '../breaker/breaker-errors.js';
import type { Classification, Reason, ThrottleFeedback } from '../classify-types.js';
import { type Clock, type RandomSource, systemClock } from '../clock.js';
import {
  type AttemptFailure,
  HeldError,
  PermanentError,
  RetryError,
  type RetryErrorStopReason,
  type StopReason,
} from '../errors.js';
import { type EventListener, emit } from '../events.js';
import { assertFunction, assertInteger, assertKey, assertNumber } from '../validate.js';
import {
  type BackoffOptions,
  type BackoffPolicy,
  delayAfterFailure,
  resolveBackoffPolicy,
} from './backoff.js';
import type { RetryBudget } from './budget.js';
import { classify as defaultClassify } from './classify.js';

/** What the retried function receives on each attempt. */
export interface AttemptContext {
  /** 0-based attempt number: 0 is the first call. */
  readonly attempt: number;
  /**
   * Aborts when the caller's `signal` aborts or this attempt's `attemptTimeoutMs` runs out.
   * Pass it on to `fetch` and friends.
   */
  readonly signal: AbortSignal;
  /** Milliseconds since the first attempt started. */
  readonly elapsedMs: number;
  /** What the previous attempt threw; `undefined` on the first. */
  readonly previousError: unknown;
}

/** Passed to `onRetry` before the executor sleeps. */
export interface RetryEvent {
  /** The attempt that failed (0-based). */
  readonly attempt: number;
  readonly error: unknown;
  readonly classification: Classification;
  /** How long the executor will wait before the next attempt, in milliseconds. */
  readonly delayMs: number;
  /** Milliseconds since the first attempt started. */
  readonly elapsedMs: number;
}

/** Passed to `onGiveUp` when the call fails for good. */
export interface GiveUpInfo {
  /** Calls made in all. */
  readonly attempts: number;
  /** The error the call rejects with. */
  readonly error: unknown;
  readonly reason: Reason;
  /** Why retrying stopped. */
  readonly stopReason: StopReason;
  readonly elapsedMs: number;
}

/** Options of {@link retry} and {@link createRetry}. */
export interface RetryOptions {
  /**
   * Total calls, including the first. 1 disables retrying.
   * @default 5
   */
  readonly maxAttempts?: number;
  /**
   * Give up once this many milliseconds have passed since the first attempt started; a retry
   * whose delay would end past it is not attempted. A server asking for a longer wait
   * (`Retry-After`, a platform's retry hint) than what is left of it ends the call at once
   * with `stopReason: 'retry_after_exceeds_elapsed'`.
   * @default 86_400_000 (24 hours)
   */
  readonly maxElapsedMs?: number;
  /**
   * Abort each attempt after this many milliseconds; its `signal` aborts and the failure
   * counts as `timeout` (retryable). Unset: no per-attempt limit.
   */
  readonly attemptTimeoutMs?: number;
  /** Aborts the whole call at once, including a sleep between attempts. */
  readonly signal?: AbortSignal;
  /** Delays between attempts; each field has its own default. */
  readonly backoff?: BackoffOptions;
  /**
   * Backoff overrides per failure reason, merged over `backoff`.
   *
   * @example
   * // A WASenderApi session answering 503 while it reconnects gets more room:
   * { backoffByReason: { service_unavailable: { multiplier: 3 } } }
   */
  readonly backoffByReason?: Partial<Record<Reason, BackoffOptions>>;
  /**
   * Decides whether a failure is worth retrying. If it throws, the call stops at once with a
   * `PermanentError` whose `cause` is the failure and `classifyError` what the classifier
   * threw. @default classify
   *
   * @example
   * import { composeClassifiers } from 'retrykit';
   * import { classifyWhatsAppError } from 'retrykit/whatsapp';
   * { classify: composeClassifiers(classifyWhatsAppError) }
   */
  readonly classify?: (error: unknown) => Classification;
  /**
   * Called before each sleep. Must not throw (a throw is ignored).
   *
   * @example
   * { onRetry: ({ attempt, delayMs, classification }) =>
   *     log.warn({ attempt, delayMs, reason: classification.reason }, 'retrying') }
   */
  readonly onRetry?: (event: RetryEvent) => void;
  /**
   * Called once when the call fails for good. Must not throw (a throw is ignored).
   *
   * @example
   * { onGiveUp: ({ error, reason }) => deadLetters.add({ error, reason }) }
   */
  readonly onGiveUp?: (info: GiveUpInfo) => void;
  /** Typed events for metrics; see `createMetrics`. */
  readonly onEvent?: EventListener;
  /** A shared budget that refuses retries once they exceed their share of traffic. */
  readonly budget?: RetryBudget;
  /** Told about throttles and successes, e.g. `bucket.feedback(key)` of an adaptive limiter. */
  readonly feedback?: ThrottleFeedback;
  /**
   * A circuit breaker every attempt goes through, on `breakerKey`: an attempt it refuses, or
   * a failure that opens it, stops the call at once with a `CircuitOpenError`
   * (`stopReason: 'circuit_open'`) instead of retrying into an outage. `retry`'s `classify`
   * tells the breaker's `isFailure` what each failure was.
   */
  readonly breaker?: CircuitBreaker;
  /**
   * The key of `breaker` this call's attempts go through (a phone number ID, a host).
   * @default 'default'
   */
  readonly breakerKey?: string;
  /** Time source and sleep. @default systemClock */
  readonly clock?: Clock;
  /** Random source for jitter. @default Math.random */
  readonly random?: RandomSource;
}

/** Options a single call may override. */
export type PerCallOptions = Pick<
  RetryOptions,
  | 'signal'
  | 'maxAttempts'
  | 'maxElapsedMs'
  | 'attemptTimeoutMs'
  | 'onRetry'
  | 'onGiveUp'
  | 'feedback'
  | 'breaker'
  | 'breakerKey'
>;

/** The defaults of {@link RetryOptions}. */
export const RETRY_DEFAULTS = Object.freeze({
  maxAttempts: 5,
  maxElapsedMs: 86_400_000,
});

/** A retry executor made by {@link createRetry}. */
export type RetryFunction = <T>(
  fn: (ctx: AttemptContext) => T | PromiseLike<T>,
  perCall?: PerCallOptions,
) => Promise<T>;

interface Resolved {
  readonly maxAttempts: number;
  readonly maxElapsedMs: number;
  readonly attemptTimeoutMs: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly backoff: BackoffPolicy;
  readonly classify: (error: unknown) => Classification;
  readonly onRetry: ((event: RetryEvent) => void) | undefined;
  readonly onGiveUp: ((info: GiveUpInfo) => void) | undefined;
  readonly onEvent: EventListener | undefined;
  readonly budget: RetryBudget | undefined;
  readonly feedback: ThrottleFeedback | undefined;
  readonly breaker: CircuitBreaker | undefined;
  readonly breakerKey: string;
  /** Set per call when `breaker` is: the attempt in flight's permit. */
  readonly gate: Gate | undefined;
  readonly clock: Clock;
  readonly random: RandomSource;
}

/** One call's passage through its breaker: the permit of the attempt in flight. */
class Gate {
  permit: CircuitPermit | undefined = undefined;
  readonly #breaker: CircuitBreaker;
  readonly #key: string;

  constructor(breaker: CircuitBreaker, key: string) {
    this.#breaker = breaker;
    this.#key = key;
  }

  /** `fn` behind the breaker: refused attempts throw a `CircuitOpenError` without calling it. */
  wrap<T>(fn: (ctx: AttemptContext) => T | PromiseLike<T>): (ctx: AttemptContext) => Promise<T> {
    return async (ctx) => {
      const permission = await this.#breaker.tryAcquire(this.#key);
      if (!permission.ok) {
        throw new CircuitOpenError(
          {
            key: this.#key,
            state: permission.state,
            retryAfterMs: permission.retryAfterMs,
            openUntil: permission.openUntil,
          },
          ctx.previousError === undefined ? undefined : { cause: ctx.previousError },
        );
      }
      const { permit } = permission;
      this.permit = permit;
      const value = await fn(ctx);
      // An attempt that timed out may settle while a later one is in flight: leave its permit.
      if (this.permit === permit) this.permit = undefined;
      // Recording is best effort: the call succeeded whatever the store says.
      await permit.success().catch(noop);
      return value;
    };
  }

  /**
   * Records the failed attempt's outcome; returns the error to stop with when the circuit is
   * open after it.
   */
  async failed(error: unknown, c: Classification): Promise<CircuitOpenError | undefined> {
    const permit = this.permit;
    if (permit === undefined) return undefined;
    this.permit = undefined;
    const after = await permit.failure(error, c).catch(() => undefined);
    if (after?.state !== 'open' || after.openUntil === undefined) return undefined;
    return new CircuitOpenError(
      {
        key: this.#key,
        state: 'open',
        retryAfterMs: Math.max(0, after.openUntil - after.time),
        openUntil: after.openUntil,
      },
      { cause: error },
    );
  }
}

/**
 * The context of a first attempt without a caller signal or timeout. Its `signal` never aborts
 * and is made only when the function reads it, so the happy path allocates almost nothing and
 * listeners added to it (fetch, limiters) die with the call instead of piling up on a shared one.
 */
class FirstAttempt implements AttemptContext {
  readonly attempt = 0;
  readonly elapsedMs = 0;
  readonly previousError = undefined;
  private lazySignal: AbortSignal | undefined = undefined;

  get signal(): AbortSignal {
    this.lazySignal ??= new AbortController().signal;
    return this.lazySignal;
  }
}

function noop(): void {}

function resolveOptions(options: RetryOptions): Resolved {
  const maxAttempts = assertInteger(
    'maxAttempts',
    options.maxAttempts ?? RETRY_DEFAULTS.maxAttempts,
    1,
  );
  const maxElapsedMs = assertNumber(
    'maxElapsedMs',
    options.maxElapsedMs ?? RETRY_DEFAULTS.maxElapsedMs,
    0,
  );
  const attemptTimeoutMs =
    options.attemptTimeoutMs === undefined
      ? undefined
      : assertNumber('attemptTimeoutMs', options.attemptTimeoutMs, 0);
  const backoff = resolveBackoffPolicy(options.backoff, options.backoffByReason);
  for (const name of ['classify', 'onRetry', 'onGiveUp', 'onEvent', 'random'] as const) {
    if (options[name] !== undefined) assertFunction(name, options[name]);
  }
  if (options.breaker !== undefined) assertBreaker(options.breaker);
  if (options.breakerKey !== undefined) assertKey('breakerKey', options.breakerKey);
  return {
    maxAttempts,
    maxElapsedMs,
    attemptTimeoutMs,
    signal: options.signal,
    backoff,
    classify: options.classify ?? defaultClassify,
    onRetry: options.onRetry,
    onGiveUp: options.onGiveUp,
    onEvent: options.onEvent,
    budget: options.budget,
    feedback: options.feedback,
    breaker: options.breaker,
    breakerKey: options.breakerKey ?? 'default',
    gate: undefined,
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
  };
}

function withPerCall(base: Resolved, perCall: PerCallOptions): Resolved {
  const merged: Resolved = { ...base };
  const m = merged as { -readonly [K in keyof Resolved]: Resolved[K] };
  if (perCall.signal !== undefined) m.signal = perCall.signal;
  if (perCall.maxAttempts !== undefined)
    m.maxAttempts = assertInteger('maxAttempts', perCall.maxAttempts, 1);
  if (perCall.maxElapsedMs !== undefined)
    m.maxElapsedMs = assertNumber('maxElapsedMs', perCall.maxElapsedMs, 0);
  if (perCall.attemptTimeoutMs !== undefined) {
    m.attemptTimeoutMs = assertNumber('attemptTimeoutMs', perCall.attemptTimeoutMs, 0);
  }
  if (perCall.onRetry !== undefined) m.onRetry = perCall.onRetry;
  if (perCall.onGiveUp !== undefined) m.onGiveUp = perCall.onGiveUp;
  if (perCall.feedback !== undefined) m.feedback = perCall.feedback;
  if (perCall.breaker !== undefined) m.breaker = assertBreaker(perCall.breaker);
  if (perCall.breakerKey !== undefined) m.breakerKey = assertKey('breakerKey', perCall.breakerKey);
  return merged;
}

function assertBreaker(value: unknown): CircuitBreaker {
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as CircuitBreaker).tryAcquire !== 'function'
  ) {
    throw new TypeError('breaker must be a CircuitBreaker (createCircuitBreaker())');
  }
  return value as CircuitBreaker;
}

/** Runs one attempt, racing it against the caller's signal and the attempt timeout. */
function runAttempt<T>(
  fn: (ctx: AttemptContext) => T | PromiseLike<T>,
  o: Resolved,
  attempt: number,
  elapsedMs: number,
  previousError: unknown,
): Promise<T> {
  const { signal, attemptTimeoutMs } = o;
  if (signal === undefined && attemptTimeoutMs === undefined) {
    try {
      const never = new AbortController().signal;
      return Promise.resolve(fn({ attempt, signal: never, elapsedMs, previousError }));
    } catch (error) {
      return Promise.reject(error);
    }
  }
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const controller = attemptTimeoutMs === undefined ? undefined : new AbortController();
    const timer = attemptTimeoutMs === undefined ? undefined : new AbortController();
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      timer?.abort();
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = (): void => {
      if (!settle()) return;
      controller?.abort(signal?.reason);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (attemptTimeoutMs !== undefined) {
      o.clock.sleep(attemptTimeoutMs, timer?.signal).then(() => {
        if (!settle()) return;
        const error = new DOMException(
          `Attempt ${attempt} timed out after ${attemptTimeoutMs} ms`,
          'TimeoutError',
        );
        controller?.abort(error);
        reject(error);
      }, noop);
    }
    let result: PromiseLike<T> | T;
    try {
      result = fn({
        attempt,
        signal: controller?.signal ?? signal ?? new AbortController().signal,
        elapsedMs,
        previousError,
      });
    } catch (error) {
      if (settle()) reject(error);
      return;
    }
    Promise.resolve(result).then(
      (value) => {
        if (settle()) resolve(value);
      },
      (error: unknown) => {
        if (settle()) reject(error);
      },
    );
  });
}

function giveUp(o: Resolved, start: number, info: Omit<GiveUpInfo, 'elapsedMs'>): unknown {
  const now = o.clock.now();
  const full: GiveUpInfo = { ...info, elapsedMs: now - start };
  if (o.onGiveUp !== undefined) {
    try {
      o.onGiveUp(full);
    } catch {
      // A hook never changes the outcome.
    }
  }
  emit(o.onEvent, { type: 'give_up', time: now, ...full });
  return info.error;
}

/** `o.classify(error)`, or what it threw (then {@link UNCLASSIFIABLE} applies). */
function classifySafely(o: Resolved, error: unknown): Classification | { thrown: unknown } {
  try {
    return o.classify(error);
  } catch (thrown) {
    return { thrown };
  }
}

/** `error instanceof CircuitOpenError`, `false` for a value that throws when inspected. */
function isCircuitOpenError(error: unknown): error is CircuitOpenError {
  try {
    return error instanceof CircuitOpenError;
  } catch {
    return false;
  }
}

/** `error instanceof PermanentError`, `false` for a value that throws when inspected. */
function isPermanentError(error: unknown): error is PermanentError {
  try {
    return error instanceof PermanentError;
  } catch {
    return false;
  }
}

/**
 * The classification of a failure whose classifier threw: not retryable. The classifier's
 * verdict is unknown, and trying a possibly side-effecting call again on no verdict risks
 * doubling it; a classifier bug surfaces at once instead of behind retries.
 */
const UNCLASSIFIABLE: Classification = Object.freeze({ retryable: false, reason: 'unknown' });

async function continueAfterFailure<T>(
  fn: (ctx: AttemptContext) => T | PromiseLike<T>,
  o: Resolved,
  start: number,
  firstError: unknown,
): Promise<T> {
  const { clock, signal } = o;
  const failures: AttemptFailure[] = [];
  let error = firstError;
  let attemptStart = start;
  let previousDelayMs: number | undefined;
  for (let attempt = 0; ; attempt++) {
    const now = clock.now();
    if (signal?.aborted) {
      throw giveUp(o, start, {
        attempts: attempt + 1,
        error: signal.reason,
        reason: 'aborted',
        stopReason: 'aborted',
      });
    }
    const verdict = classifySafely(o, error);
    const classifierThrew = 'thrown' in verdict;
    const c: Classification = classifierThrew ? UNCLASSIFIABLE : verdict;
    failures.push({ attempt, error, reason: c.reason, time: now });
    emit(o.onEvent, {
      type: 'attempt_failure',
      time: now,
      attempt,
      durationMs: now - attemptStart,
      error,
      classification: c,
    });
    if (c.reason === 'rate_limited') o.feedback?.throttled(c);
    const attempts = attempt + 1;
    const circuitOpen = isCircuitOpenError(error)
      ? error
      : await o.gate?.failed(error, classifierThrew ? UNCLASSIFIABLE : c);
    if (circuitOpen !== undefined) {
      throw giveUp(o, start, {
        attempts,
        error: circuitOpen,
        reason: c.reason,
        stopReason: 'circuit_open',
      });
    }
    if (!c.retryable && c.scope === 'account' && !classifierThrew && !isPermanentError(error)) {
      const out = new HeldError(error, { classification: c, attempts, errors: failures });
      throw giveUp(o, start, { attempts, error: out, reason: c.reason, stopReason: 'held' });
    }
    if (!c.retryable) {
      const out =
        !classifierThrew && isPermanentError(error)
          ? error
          : new PermanentError(error, {
              classification: c,
              attempts,
              errors: failures,
              ...(classifierThrew ? { classifyError: verdict.thrown } : {}),
            });
      throw giveUp(o, start, { attempts, error: out, reason: c.reason, stopReason: 'permanent' });
    }
    const limit =
      c.maxAttempts !== undefined && c.maxAttempts < o.maxAttempts ? c.maxAttempts : o.maxAttempts;
    let stop: RetryErrorStopReason | undefined;
    let delayMs = 0;
    if (attempts >= limit) {
      stop = 'max_attempts';
    } else {
      const next = delayAfterFailure(o.backoff, c, {
        attempt,
        previousDelayMs,
        leftMs: o.maxElapsedMs - (now - start),
        random: o.random,
      });
      if (typeof next !== 'number') stop = next;
      else if (o.budget !== undefined && !o.budget.tryWithdraw()) stop = 'budget_exhausted';
      else delayMs = next;
    }
    if (stop !== undefined) {
      const out = new RetryError(stop, failures, error);
      throw giveUp(o, start, { attempts, error: out, reason: out.reason, stopReason: stop });
    }
    previousDelayMs = delayMs;
    const elapsedMs = now - start;
    if (o.onRetry !== undefined) {
      try {
        o.onRetry({ attempt, error, classification: c, delayMs, elapsedMs });
      } catch {
        // A hook never changes the outcome.
      }
    }
    emit(o.onEvent, {
      type: 'retry_scheduled',
      time: now,
      attempt: attempts,
      delayMs,
      reason: c.reason,
    });
    try {
      await clock.sleep(delayMs, signal);
    } catch (abortReason) {
      throw giveUp(o, start, {
        attempts,
        error: abortReason,
        reason: 'aborted',
        stopReason: 'aborted',
      });
    }
    attemptStart = clock.now();
    emit(o.onEvent, {
      type: 'attempt_start',
      time: attemptStart,
      attempt: attempts,
      elapsedMs: attemptStart - start,
    });
    try {
      const value = await runAttempt(fn, o, attempts, attemptStart - start, error);
      succeeded(o, attempts, attemptStart, start);
      return value;
    } catch (next) {
      error = next;
    }
  }
}

function succeeded(o: Resolved, attempt: number, attemptStart: number, start: number): void {
  o.feedback?.succeeded();
  if (o.onEvent === undefined) return;
  const now = o.clock.now();
  emit(o.onEvent, {
    type: 'attempt_success',
    time: now,
    attempt,
    durationMs: now - attemptStart,
    elapsedMs: now - start,
  });
}

/**
 * Starts a call: reads the clock, deposits into the budget, emits `attempt_start`. Returns
 * when the first attempt started.
 */
function begin(o: Resolved): number {
  const start = o.clock.now();
  o.budget?.deposit();
  if (o.onEvent !== undefined) {
    emit(o.onEvent, { type: 'attempt_start', time: start, attempt: 0, elapsedMs: 0 });
  }
  return start;
}

/**
 * Runs a call. The first attempt of a call with neither a signal nor an attempt timeout is the
 * hot path: no async function, one closure (the failure handler, which keeps the start) and
 * the one promise `then` makes; everything after a failure is in {@link continueAfterFailure}.
 */
function execute<T>(fn: (ctx: AttemptContext) => T | PromiseLike<T>, o: Resolved): Promise<T> {
  if (o.breaker !== undefined && o.gate === undefined) {
    const gate = new Gate(o.breaker, o.breakerKey);
    return execute(gate.wrap(fn), { ...o, gate });
  }
  if (o.signal !== undefined || o.attemptTimeoutMs !== undefined) return executeWatched(fn, o);
  let start: number;
  try {
    start = begin(o);
  } catch (error) {
    return Promise.reject(error);
  }
  let result: T | PromiseLike<T>;
  try {
    result = fn(new FirstAttempt());
  } catch (error) {
    return continueAfterFailure(fn, o, start, error);
  }
  if (o.feedback === undefined && o.onEvent === undefined) {
    return Promise.resolve(result).then(undefined, (error: unknown) =>
      continueAfterFailure(fn, o, start, error),
    );
  }
  return Promise.resolve(result).then(
    (value) => {
      succeeded(o, 0, start, start);
      return value;
    },
    (error: unknown) => continueAfterFailure(fn, o, start, error),
  );
}

/** {@link execute} for a call with a signal or an attempt timeout: each attempt is raced. */
async function executeWatched<T>(
  fn: (ctx: AttemptContext) => T | PromiseLike<T>,
  o: Resolved,
): Promise<T> {
  if (o.signal?.aborted) {
    const reason: unknown = o.signal.reason;
    throw giveUp(o, o.clock.now(), {
      attempts: 0,
      error: reason,
      reason: 'aborted',
      stopReason: 'aborted',
    });
  }
  const start = begin(o);
  let value: T;
  try {
    value = await runAttempt(fn, o, 0, 0, undefined);
  } catch (error) {
    return continueAfterFailure(fn, o, start, error);
  }
  if (o.feedback !== undefined || o.onEvent !== undefined) succeeded(o, 0, start, start);
  return value;
}

/**
 * Validates `options` once and returns a reusable executor: the cheap way to retry on a hot
 * path. Per-call options (`signal`, limits, hooks) override the shared ones.
 *
 * @example
 * const sendWithRetry = createRetry({ maxAttempts: 6, backoff: { initialDelayMs: 500 } });
 * const res = await sendWithRetry(({ signal }) => fetch(url, { signal }));
 */
export function createRetry(options: RetryOptions = {}): RetryFunction {
  const base = resolveOptions(options);
  return (fn, perCall) => execute(fn, perCall === undefined ? base : withPerCall(base, perCall));
}

/**
 * Calls `fn` until it succeeds, a failure is classified permanent, or a limit is reached.
 * Rejects with {@link RetryError} when retries run out, with {@link PermanentError} (wrapping
 * the original, with every failure before it in `errors`) for a permanent failure, and with
 * the signal's reason on abort.
 *
 * @example
 * const res = await retry(({ signal }) => fetch(url, { signal }), { maxAttempts: 4 });
 */
export function retry<T>(
  fn: (ctx: AttemptContext) => T | PromiseLike<T>,
  options: RetryOptions = {},
): Promise<T> {
  return execute(fn, resolveOptions(options));
}
