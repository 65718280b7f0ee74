import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type {
  AdjustableRateLimiter,
  EventListener,
  RetrykitEvent,
  TokenBucketLimits,
} from '../../src/index.js';
import { RateLimitAbortedError, RateLimitTimeoutError } from '../../src/index.js';
import { createManualClock, type ManualClock } from '../../src/testing/index.js';

/** Makes a limiter under test, driven by `clock`, reporting to `onEvent` when given. */
export type MakeLimiter = (
  limits: TokenBucketLimits,
  clock: ManualClock,
  onEvent?: EventListener,
) => AdjustableRateLimiter;

/** Polls `condition` in real time (I/O may be in flight) until it holds. */
export async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Runs the cases every `RateLimiter` must pass. */
export function rateLimiterContract(name: string, make: MakeLimiter): void {
  describe(`RateLimiter contract: ${name}`, () => {
    const setup = (limits: TokenBucketLimits, onEvent?: EventListener) => {
      const clock = createManualClock(1_700_000_000_000);
      return { clock, limiter: make(limits, clock, onEvent) };
    };

    it('starts a new key full, then refuses with the milliseconds until the next token', async () => {
      const { limiter } = setup({ capacity: 3, refillPerSecond: 4 });
      expect(await limiter.tryAcquire('a')).toEqual({ ok: true, remaining: 2 });
      expect(await limiter.tryAcquire('a', 2)).toEqual({ ok: true, remaining: 0 });
      expect(await limiter.tryAcquire('a')).toEqual({ ok: false, retryAfterMs: 250 });
      expect(await limiter.tryAcquire('b', 3)).toEqual({ ok: true, remaining: 0 });
    });

    it('refills with time, never beyond capacity, and a refusal takes nothing', async () => {
      const { limiter, clock } = setup({ capacity: 2, refillPerSecond: 10 });
      await limiter.tryAcquire('k', 2);
      await clock.advance(50);
      expect(await limiter.tryAcquire('k')).toEqual({ ok: false, retryAfterMs: 50 });
      await clock.advance(50);
      expect(await limiter.tryAcquire('k')).toEqual({ ok: true, remaining: 0 });
      await clock.advance(60_000);
      expect(await limiter.tryAcquire('k', 2)).toEqual({ ok: true, remaining: 0 });
      expect(await limiter.tryAcquire('k')).toEqual({ ok: false, retryAfterMs: 100 });
    });

    it('grants exactly capacity + rate·t over time', async () => {
      const { limiter, clock } = setup({ capacity: 5, refillPerSecond: 20 });
      let grantedCount = 0;
      for (let step = 0; step < 200; step++) {
        while ((await limiter.tryAcquire('k')).ok) grantedCount++;
        await clock.advance(10);
      }
      // The last check is at 1,990 ms: the initial 5 plus 39.8 tokens refilled at 20/s.
      expect(grantedCount).toBe(5 + 39);
    });

    it('rejects bad input, naming the value', async () => {
      const { limiter } = setup({ capacity: 5, refillPerSecond: 1 });
      await expect(async () => limiter.tryAcquire('')).rejects.toThrow(/key must not be empty/);
      await expect(async () => limiter.tryAcquire('k', 6)).rejects.toThrow(/capacity 5.*got 6/);
      await expect(async () => limiter.tryAcquire('k', Number.NaN)).rejects.toThrow(/got NaN/);
      await expect(limiter.acquire('k', 1, { maxWaitMs: -1 })).rejects.toThrow(/maxWaitMs.*-1/);
    });

    it('acquire waits for the refill, first come first served', async () => {
      const { limiter, clock } = setup({ capacity: 4, refillPerSecond: 10 });
      expect(await limiter.acquire('k', 4)).toBe(0);
      const order: string[] = [];
      const big = limiter.acquire('k', 4).then((ms) => order.push(`big ${ms}`));
      await until(() => clock.pending().length > 0);
      const small = limiter.acquire('k', 1).then((ms) => order.push(`small ${ms}`));
      for (let i = 0; i < 60 && order.length < 2; i++) {
        await until(() => clock.pending().length > 0 || order.length === 2);
        await clock.advance(10);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      await Promise.all([big, small]);
      expect(order[0]).toBe('big 400');
      expect(order[1]).toMatch(/^small (49|50)\d$/);
    });

    it('reports a wait only when acquire waited for tokens, with how long it waited', async () => {
      const events: RetrykitEvent[] = [];
      const { limiter, clock } = setup({ capacity: 2, refillPerSecond: 10 }, (e) => events.push(e));
      expect(await limiter.acquire('k')).toBe(0);
      expect(await limiter.acquire('k')).toBe(0);
      expect(events).toEqual([]);
      const waited: number[] = [];
      const first = limiter.acquire('k').then((ms) => waited.push(ms));
      await until(() => clock.pending().length > 0);
      const second = limiter.acquire('k').then((ms) => waited.push(ms));
      for (let i = 0; i < 40 && waited.length < 2; i++) {
        await until(() => clock.pending().length > 0 || waited.length === 2);
        await clock.advance(10);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      await Promise.all([first, second]);
      expect(waited).toEqual([100, 200]);
      expect(events).toEqual([
        { type: 'rate_limit_wait', time: 1_700_000_000_100, key: 'k', waitMs: 100, granted: true },
        { type: 'rate_limit_wait', time: 1_700_000_000_200, key: 'k', waitMs: 200, granted: true },
      ]);
      // Full again: grants from tokens on hand report nothing.
      await clock.advance(1000);
      expect(await limiter.acquire('k', 2)).toBe(0);
      expect(events).toHaveLength(2);
    });

    it('acquire gives up with RateLimitTimeoutError when maxWaitMs cannot be met, taking nothing', async () => {
      const { limiter } = setup({ capacity: 1, refillPerSecond: 1 });
      await limiter.acquire('k');
      const error = await limiter.acquire('k', 1, { maxWaitMs: 500 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RateLimitTimeoutError);
      expect(error).toMatchObject({ code: 'RATE_LIMIT_TIMEOUT', key: 'k', maxWaitMs: 500 });
      expect(await limiter.tryAcquire('k')).toEqual({ ok: false, retryAfterMs: 1000 });
    });

    it('acquire rejects with RateLimitAbortedError on abort, taking nothing', async () => {
      const { limiter, clock } = setup({ capacity: 1, refillPerSecond: 1 });
      await limiter.acquire('k');
      const controller = new AbortController();
      const waiting = limiter
        .acquire('k', 1, { signal: controller.signal })
        .catch((e: unknown) => e);
      await until(() => clock.pending().length > 0);
      controller.abort(new Error('bye'));
      const error = await waiting;
      expect(error).toBeInstanceOf(RateLimitAbortedError);
      expect(error).toMatchObject({ code: 'RATE_LIMIT_ABORTED', cause: new Error('bye') });
      await clock.advance(1000);
      expect(await limiter.tryAcquire('k')).toEqual({ ok: true, remaining: 0 });
    });

    it('refuses at construction a bucket that could never grant: capacity below 1 (property)', () => {
      const clock = createManualClock();
      fc.assert(
        fc.property(
          fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          fc.double({ min: 0.001, max: 1e6, noNaN: true }),
          (capacity, refillPerSecond) => {
            expect(() => make({ capacity, refillPerSecond }, clock)).toThrow(
              /capacity must be a finite number >= 1/,
            );
          },
        ),
        { numRuns: 50 },
      );
      expect(() => make({ capacity: 0.5, refillPerSecond: 5 }, clock)).toThrow(RangeError);
    });

    it('grants a new key any request up to its capacity, rejects more with a RangeError (property)', async () => {
      const clock = createManualClock();
      await fc.assert(
        fc.asyncProperty(
          fc.double({ min: 1, max: 1e6, noNaN: true }),
          fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          async (capacity, share) => {
            const limiter = make({ capacity, refillPerSecond: 1 }, clock);
            const tokens = Math.max(Number.MIN_VALUE, capacity * share) || 1;
            expect((await limiter.tryAcquire('k', tokens)).ok).toBe(true);
            await expect(async () => limiter.tryAcquire('k', capacity * 2)).rejects.toThrow(
              RangeError,
            );
          },
        ),
        { numRuns: 25 },
      );
    });

    it('setRate gives one key its own rate and capacity; other keys keep the configured one', async () => {
      const { limiter, clock } = setup({ capacity: 2, refillPerSecond: 10 });
      await limiter.setRate('fast', { refillPerSecond: 100, capacity: 5 });
      expect(await limiter.tryAcquire('fast', 5)).toEqual({ ok: true, remaining: 0 });
      expect(await limiter.tryAcquire('fast')).toEqual({ ok: false, retryAfterMs: 10 });
      expect(await limiter.tryAcquire('other', 2)).toEqual({ ok: true, remaining: 0 });
      expect(await limiter.tryAcquire('other')).toEqual({ ok: false, retryAfterMs: 100 });
      await expect(async () => limiter.tryAcquire('other', 5)).rejects.toThrow(/capacity 2.*got 5/);
      await clock.advance(1000);
      expect(await limiter.tryAcquire('fast', 5)).toEqual({ ok: true, remaining: 0 });
      await limiter.resetRate('fast');
      // Back to the configured rate; the empty bucket refills at 10/s and holds 2 at most.
      expect(await limiter.tryAcquire('fast')).toEqual({ ok: false, retryAfterMs: 100 });
      await expect(async () => limiter.tryAcquire('fast', 5)).rejects.toThrow(/capacity 2.*got 5/);
      await clock.advance(10_000);
      expect(await limiter.tryAcquire('fast', 2)).toEqual({ ok: true, remaining: 0 });
    });

    it('setRate carries tokens over, refilled at the old rate and cut to the new capacity', async () => {
      const { limiter, clock } = setup({ capacity: 10, refillPerSecond: 1 });
      expect(await limiter.tryAcquire('k', 10)).toEqual({ ok: true, remaining: 0 });
      await clock.advance(3000);
      // Three tokens came at 1/s; the slower rate applies from now on.
      await limiter.setRate('k', { refillPerSecond: 0.5 });
      expect(await limiter.tryAcquire('k', 3)).toEqual({ ok: true, remaining: 0 });
      expect(await limiter.tryAcquire('k')).toEqual({ ok: false, retryAfterMs: 2000 });
      await clock.advance(60_000);
      await limiter.setRate('k', { refillPerSecond: 0.5, capacity: 4 });
      expect(await limiter.tryAcquire('k', 4)).toEqual({ ok: true, remaining: 0 });
      expect(await limiter.tryAcquire('k')).toEqual({ ok: false, retryAfterMs: 2000 });
    });

    it('setRate before a key is first used applies to it, and a key set twice keeps the last', async () => {
      const { limiter } = setup({ capacity: 10, refillPerSecond: 1 });
      await limiter.setRate('new', { refillPerSecond: 1, capacity: 1 });
      await limiter.setRate('new', { refillPerSecond: 4, capacity: 3 });
      expect(await limiter.tryAcquire('new', 3)).toEqual({ ok: true, remaining: 0 });
      expect(await limiter.tryAcquire('new')).toEqual({ ok: false, retryAfterMs: 250 });
    });

    it('setRate serves a waiting acquire at the new rate', async () => {
      const { limiter, clock } = setup({ capacity: 1, refillPerSecond: 0.001 });
      await limiter.acquire('k');
      let waited: number | undefined;
      const waiting = limiter.acquire('k').then((ms) => {
        waited = ms;
      });
      await until(() => clock.pending().length > 0);
      // Slow enough that Redis's own expiry of the bucket (in real time) never comes first.
      await limiter.setRate('k', { refillPerSecond: 0.01 });
      // The old rate's 1,000 s sleep is cut short: the waiter looks again and sleeps 100 s.
      await until(() => clock.pending().length > 0 && clock.pending()[0]! < 1_700_000_200_000);
      expect(clock.pending()).toEqual([1_700_000_100_000]);
      await clock.advance(100_000);
      await waiting;
      expect(waited).toBe(100_000);
      expect(await limiter.tryAcquire('k')).toEqual({ ok: false, retryAfterMs: 100_000 });
    });

    it('setRate rejects bad input, naming the value, and changes nothing then', async () => {
      const { limiter } = setup({ capacity: 2, refillPerSecond: 1 });
      const bad: unknown[] = [
        { refillPerSecond: 0 },
        { refillPerSecond: Number.NaN },
        { refillPerSecond: Number.POSITIVE_INFINITY },
        { refillPerSecond: 1, capacity: 0.5 },
        { refillPerSecond: 1, capacity: -1 },
        null,
        'fast',
      ];
      for (const rate of bad) {
        await expect(async () =>
          limiter.setRate('k', rate as { refillPerSecond: number }),
        ).rejects.toThrow(/rate/);
      }
      await expect(async () => limiter.setRate('', { refillPerSecond: 1 })).rejects.toThrow(
        /key must not be empty/,
      );
      await expect(async () =>
        limiter.setRate('k', { refillPerSecond: 1, capacity: 0.5 }),
      ).rejects.toThrow(/rate.capacity must be a finite number >= 1, got 0.5/);
      expect(await limiter.tryAcquire('k', 2)).toEqual({ ok: true, remaining: 0 });
      expect(await limiter.tryAcquire('k')).toEqual({ ok: false, retryAfterMs: 1000 });
    });

    it('gives a no-op feedback when not adaptive', async () => {
      const { limiter } = setup({ capacity: 2, refillPerSecond: 1 });
      const feedback = limiter.feedback('k');
      feedback.throttled({ retryable: true, reason: 'rate_limited' });
      feedback.succeeded();
      expect(await limiter.tryAcquire('k', 2)).toEqual({ ok: true, remaining: 0 });
    });
  });
}
