/**
 * Where retrykit reads the time and how it waits. Inject one (e.g. `createManualClock()` from
 * `retrykit/testing`) to make every delay deterministic.
 */
export interface Clock {
  /** Current time in milliseconds. Only differences between readings are used. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds, however long (past `setTimeout`'s 2^31 − 1 ms too); rejects
   * with `signal.reason` as soon as `signal` aborts (at once if it already has).
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** A `() => number` in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/** The longest delay `setTimeout` honours (2^31 − 1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Calls `callback` once `ms` milliseconds have passed, however many that is. Node and browsers
 * fire a `setTimeout` longer than {@link MAX_TIMER_MS} after 1 ms, which turns a long wait
 * into a busy loop; this arms at most `MAX_TIMER_MS` at a time and re-arms until the whole
 * delay has run. `ms` that is not > 0 (NaN included) fires on the next turn; `Infinity` never
 * fires. Every timer in retrykit goes through here. Returns a function that cancels it.
 *
 * @param unref Let the process exit while only this timer is pending, where the runtime allows.
 */
export function setLongTimeout(callback: () => void, ms: number, unref = false): () => void {
  // biome-ignore lint/complexity/useMathMinMax: Math.max(NaN, 0) is NaN; this is 0.
  let left = ms > 0 ? ms : 0;
  let timer: ReturnType<typeof setTimeout>;
  const arm = (): void => {
    const step = Math.min(left, MAX_TIMER_MS);
    left -= step;
    timer = setTimeout(left > 0 ? arm : callback, step);
    if (unref) (timer as { unref?: () => void }).unref?.();
  };
  arm();
  return () => clearTimeout(timer);
}

/**
 * The real clock: `Date.now()` and `setTimeout` (through {@link setLongTimeout}, so a wait
 * past 2^31 − 1 ms is honoured rather than cut to 1 ms). The sleep timer is not `unref`'d: a
 * pending retry is work the caller awaits, and the process should stay alive for it.
 */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  sleep: sleep,
});

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      cancel();
      reject(signal?.reason);
    };
    const cancel = setLongTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * @internal The system clock, but its sleeps never keep the process alive: for background
 * loops (samplers, reporters) that must not hold a process open on their own.
 */
export const backgroundClock: Clock = Object.freeze({
  now: () => Date.now(),
  sleep: (ms: number, signal?: AbortSignal): Promise<void> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        cancel();
        reject(signal?.reason);
      };
      const cancel = setLongTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        ms,
        true,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
});
