/**
 * Where retrykit reads the time and how it waits. Inject one (e.g. `createManualClock()` from
 * `retrykit/testing`) to make every delay deterministic.
 */
export interface Clock {
  /** Current time in milliseconds. Only differences between readings are used. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds; rejects with `signal.reason` as soon as `signal` aborts
   * (at once if it already has).
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** A `() => number` in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/**
 * The real clock: `Date.now()` and `setTimeout`. The sleep timer is not `unref`'d: a pending
 * retry is work the caller awaits, and the process should stay alive for it.
 */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  sleep: sleep,
});

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The longest delay `setTimeout` honours (2^31 − 1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;
