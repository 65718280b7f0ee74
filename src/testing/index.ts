import type { Clock, RandomSource } from '../core/clock.js';

/** A {@link Clock} that only moves when told to. */
export interface ManualClock extends Clock {
  /**
   * Moves time forward by `ms` milliseconds, firing due sleeps in order of their deadline.
   * Returns after the microtasks those sleeps start have run, so awaited work can react.
   */
  advance(ms: number): Promise<void>;
  /** Moves time forward to the next pending sleep's deadline and fires it. `false` if none. */
  next(): Promise<boolean>;
  /** Advances through pending sleeps until none is left (or `maxSteps` fired). */
  runAll(maxSteps?: number): Promise<number>;
  /** Deadlines (absolute, in milliseconds) of the sleeps not yet fired, soonest first. */
  pending(): number[];
  /** Every `ms` ever passed to `sleep`, in call order. */
  readonly sleeps: readonly number[];
}

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly resolve: () => void;
  cancel?: () => void;
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise<void>((resolve) =>
    typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0),
  );
}

/**
 * A deterministic clock for tests: `now()` starts at `start` (milliseconds) and only
 * `advance()` moves it. Pass it as `clock` to `retry`, limiters and stores.
 *
 * @example
 * const clock = createManualClock();
 * const p = retry(flaky, { clock, backoff: { jitter: 'none' } });
 * await clock.advance(1000); // the first retry runs
 */
export function createManualClock(start = 0): ManualClock {
  let now = start;
  let seq = 0;
  const timers: Timer[] = [];
  const sleeps: number[] = [];

  const fire = (timer: Timer): void => {
    const i = timers.indexOf(timer);
    if (i >= 0) timers.splice(i, 1);
    timer.resolve();
  };

  const clock: ManualClock = {
    now: () => now,
    sleep(ms, signal) {
      sleeps.push(ms);
      if (signal?.aborted) return Promise.reject(signal.reason);
      return new Promise<void>((resolve, reject) => {
        const timer: Timer = {
          at: now + Math.max(0, ms),
          seq: seq++,
          resolve: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
        };
        const onAbort = (): void => {
          const i = timers.indexOf(timer);
          if (i >= 0) timers.splice(i, 1);
          reject(signal?.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        timers.push(timer);
        timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      });
    },
    async advance(ms) {
      if (!(ms >= 0)) throw new RangeError(`ms must be >= 0, got ${ms}`);
      const target = now + ms;
      await flushMicrotasks();
      for (;;) {
        const due = timers[0];
        if (due === undefined || due.at > target) break;
        now = Math.max(now, due.at);
        fire(due);
        await flushMicrotasks();
      }
      now = target;
      await flushMicrotasks();
    },
    async next() {
      await flushMicrotasks();
      const due = timers[0];
      if (due === undefined) return false;
      now = Math.max(now, due.at);
      fire(due);
      await flushMicrotasks();
      return true;
    },
    async runAll(maxSteps = 10_000) {
      let steps = 0;
      while (steps < maxSteps && (await clock.next())) steps++;
      return steps;
    },
    pending: () => timers.map((t) => t.at),
    sleeps,
  };
  return clock;
}

/**
 * A seeded pseudo-random source in [0, 1) (mulberry32): the same seed gives the same sequence,
 * so jittered delays are reproducible in tests and simulations.
 */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
