import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Clock, MAX_TIMER_MS } from '../core/clock.js';
import type { RetrykitEvent } from '../core/events.js';
import {
  RateLimitAbortedError,
  RateLimitTimeoutError,
} from '../core/rate-limit/rate-limit-errors.js';
import { retry } from '../core/retry/retry.js';
import { createManualClock } from '../testing/index.js';
import { createMemoryTokenBucket } from './token-bucket.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('createMemoryTokenBucket', () => {
  it('rejects bad options, naming the option and the value', () => {
    expect(() => createMemoryTokenBucket({ capacity: 0, refillPerSecond: 1 })).toThrow(
      /capacity must be a finite number >= 1, got 0/,
    );
    expect(() => createMemoryTokenBucket({ capacity: -5, refillPerSecond: 1 })).toThrow(
      /capacity.*-5/,
    );
    expect(() => createMemoryTokenBucket({ capacity: 10, refillPerSecond: Number.NaN })).toThrow(
      /refillPerSecond must be a number, got NaN/,
    );
    expect(() => createMemoryTokenBucket({ capacity: 10, refillPerSecond: Infinity })).toThrow(
      /refillPerSecond.*Infinity/,
    );
    expect(() => createMemoryTokenBucket({ capacity: 10, refillPerSecond: 1, maxKeys: 0 })).toThrow(
      /maxKeys.*0/,
    );
    expect(() =>
      createMemoryTokenBucket({ capacity: 10, refillPerSecond: 1, maxKeys: 2.5 }),
    ).toThrow(/maxKeys.*2.5/);
    expect(() =>
      createMemoryTokenBucket({
        capacity: 10,
        refillPerSecond: 1,
        adaptive: { decreaseFactor: 1.5 },
      }),
    ).toThrow(/adaptive.decreaseFactor.*1.5/);
  });

  it('rejects bad calls, naming the value', () => {
    const bucket = createMemoryTokenBucket({ capacity: 10, refillPerSecond: 1 });
    expect(() => bucket.tryAcquire('')).toThrow(/key must not be empty/);
    expect(() => bucket.tryAcquire(42 as unknown as string)).toThrow(
      /key must be a string, got 42/,
    );
    expect(() => bucket.tryAcquire('k', 11)).toThrow(/at most the capacity 10.*got 11/);
    expect(() => bucket.tryAcquire('k', Number.NaN)).toThrow(/tokens must be a number, got NaN/);
    expect(() => bucket.tryAcquire('k', 0)).toThrow(/tokens must be a finite number > 0, got 0/);
    expect(() => bucket.tryAcquire('k', '2' as unknown as number)).toThrow(
      /tokens must be a number, got "2"/,
    );
  });

  it('reads the clock once per tryAcquire', () => {
    const manual = createManualClock(1_000);
    let reads = 0;
    const clock: Clock = {
      now: () => {
        reads++;
        return manual.now();
      },
      sleep: manual.sleep,
    };
    const bucket = createMemoryTokenBucket({ capacity: 2, refillPerSecond: 1, clock, maxKeys: 4 });
    for (let i = 0; i < 10; i++) bucket.tryAcquire(`k${i % 6}`);
    expect(reads).toBe(10);
  });

  it('returns frozen results, shared when equal', () => {
    const bucket = createMemoryTokenBucket({
      capacity: 5,
      refillPerSecond: 1,
      clock: createManualClock(),
    });
    const a = bucket.tryAcquire('a');
    const b = bucket.tryAcquire('b');
    expect(a).toEqual({ ok: true, remaining: 4 });
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
  });

  it('serves waiters first come, first served: a big request is not starved by small ones', async () => {
    const clock = createManualClock();
    const bucket = createMemoryTokenBucket({ capacity: 10, refillPerSecond: 10, clock });
    expect(bucket.tryAcquire('k', 10).ok).toBe(true);
    const order: string[] = [];
    const big = bucket.acquire('k', 8).then((ms) => order.push(`big@${ms}`));
    const smalls = [1, 2, 3].map((i) =>
      bucket.acquire('k', 1).then((ms) => order.push(`small${i}@${ms}`)),
    );
    // A caller who doesn't wait can't jump the line either.
    expect(bucket.tryAcquire('k')).toEqual({ ok: false, retryAfterMs: 1200 });
    await clock.advance(2000);
    await Promise.all([big, ...smalls]);
    expect(order).toEqual(['big@800', 'small1@900', 'small2@1000', 'small3@1100']);
  });

  it('maxWaitMs rejects at once when the line is too long, taking nothing', async () => {
    const clock = createManualClock();
    const events: RetrykitEvent[] = [];
    const bucket = createMemoryTokenBucket({
      capacity: 1,
      refillPerSecond: 1,
      clock,
      onEvent: (e) => events.push(e),
    });
    bucket.tryAcquire('k');
    const error = await bucket.acquire('k', 1, { maxWaitMs: 999 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitTimeoutError);
    expect(error).toMatchObject({
      code: 'RATE_LIMIT_TIMEOUT',
      key: 'k',
      maxWaitMs: 999,
      retryAfterMs: 1000,
    });
    expect(events).toContainEqual({
      type: 'rate_limit_wait',
      time: 0,
      key: 'k',
      waitMs: 1000,
      granted: false,
    });
    await clock.advance(1000);
    expect(bucket.tryAcquire('k').ok).toBe(true);
  });

  it('maxWaitMs rejects a waiter whose turn slipped past its deadline after a throttle', async () => {
    const clock = createManualClock();
    const bucket = createMemoryTokenBucket({
      capacity: 1,
      refillPerSecond: 1,
      clock,
      adaptive: true,
    });
    bucket.tryAcquire('k');
    const first = bucket.acquire('k', 1, { maxWaitMs: 1000 }).catch((e: unknown) => e);
    const second = bucket.acquire('k', 1, { maxWaitMs: 1400 }).catch((e: unknown) => e);
    const third = bucket.acquire('k', 1);
    await clock.advance(10);
    bucket.feedback('k').throttled({ retryable: true, reason: 'rate_limited' });
    await clock.advance(10);
    expect(await first).toMatchObject({ name: 'RateLimitTimeoutError', retryAfterMs: 1429 });
    expect(await second).toBeInstanceOf(RateLimitTimeoutError);
    await clock.advance(1500);
    // At 0.7 tokens/s a token takes 1,429 ms; the rate starts recovering meanwhile.
    const waited = await third;
    expect(waited).toBeGreaterThan(1400);
    expect(waited).toBeLessThanOrEqual(1439);
  });

  it('abort rejects with RateLimitAbortedError, takes nothing, and lets the next waiter through', async () => {
    const clock = createManualClock();
    const bucket = createMemoryTokenBucket({ capacity: 5, refillPerSecond: 1, clock });
    bucket.tryAcquire('k', 5);
    const controller = new AbortController();
    const big = bucket.acquire('k', 5, { signal: controller.signal }).catch((e: unknown) => e);
    const small = bucket.acquire('k', 1);
    await clock.advance(500);
    controller.abort(new Error('shutting down'));
    const error = await big;
    expect(error).toBeInstanceOf(RateLimitAbortedError);
    expect((error as RateLimitAbortedError).cause).toEqual(new Error('shutting down'));
    await clock.advance(500);
    expect(await small).toBe(1000);
    expect(bucket.tryAcquire('k')).toEqual({ ok: false, retryAfterMs: 1000 });
    await expect(bucket.acquire('k', 1, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(
      RateLimitAbortedError,
    );
  });

  it('emits rate_limit_wait with the time waited', async () => {
    const clock = createManualClock();
    const events: RetrykitEvent[] = [];
    const bucket = createMemoryTokenBucket({
      capacity: 1,
      refillPerSecond: 4,
      clock,
      onEvent: (e) => events.push(e),
    });
    await bucket.acquire('k');
    const p = bucket.acquire('k');
    await clock.advance(250);
    expect(await p).toBe(250);
    expect(events).toEqual([
      { type: 'rate_limit_wait', time: 250, key: 'k', waitMs: 250, granted: true },
    ]);
  });

  it('emits rate_limit_wait for each refused tryAcquire, with the wait it answers', () => {
    const clock = createManualClock(1_000);
    const events: RetrykitEvent[] = [];
    const bucket = createMemoryTokenBucket({
      capacity: 2,
      refillPerSecond: 4,
      clock,
      onEvent: (e) => events.push(e),
    });
    expect(bucket.tryAcquire('k').ok).toBe(true);
    expect(bucket.tryAcquire('k', 2)).toEqual({ ok: false, retryAfterMs: 250 });
    expect(events).toEqual([
      { type: 'rate_limit_wait', time: 1_000, key: 'k', waitMs: 250, granted: false },
    ]);
  });

  it('holds no key for a request it rejects as larger than any capacity', () => {
    const bucket = createMemoryTokenBucket({ capacity: 10, refillPerSecond: 1 });
    expect(() => bucket.tryAcquire('k', 11)).toThrow(RangeError);
    expect(() => bucket.tryAcquire('k', Number.NaN)).toThrow(TypeError);
    expect(bucket.size).toBe(0);
  });

  it('drops idle keys whose bucket is full again, without timers', async () => {
    const clock = createManualClock();
    const bucket = createMemoryTokenBucket({ capacity: 2, refillPerSecond: 1, clock });
    for (let i = 0; i < 100; i++) bucket.tryAcquire(`old${i}`);
    expect(bucket.size).toBe(100);
    await clock.advance(1000);
    for (let i = 0; i < 100; i++) bucket.tryAcquire(`new${i}`);
    expect(bucket.size).toBeLessThanOrEqual(110);
    expect(clock.pending()).toEqual([]);
  });

  it('keeps keys that are not full again', () => {
    const clock = createManualClock();
    const bucket = createMemoryTokenBucket({ capacity: 2, refillPerSecond: 1, clock });
    for (let i = 0; i < 50; i++) bucket.tryAcquire(`old${i}`, 2);
    for (let i = 0; i < 50; i++) bucket.tryAcquire(`new${i}`);
    expect(bucket.size).toBe(100);
    for (let i = 0; i < 50; i++) expect(bucket.tryAcquire(`old${i}`).ok).toBe(false);
  });

  it('caps the map at exactly maxKeys, dropping the least recently used key (property)', () => {
    fc.assert(
      fc.property(
        // About twice as many keys as the cap, so that keys are both evicted and touched again.
        fc
          .integer({ min: 1, max: 32 })
          .chain((m) =>
            fc.tuple(
              fc.constant(m),
              fc.array(fc.integer({ min: 0, max: 2 * m }), { maxLength: 300 }),
            ),
          ),
        ([maxKeys, keys]) => {
          const clock = createManualClock();
          // Each key's single token is spent on first use and never comes back in this test,
          // so a grant means "not held": new, or evicted since.
          const bucket = createMemoryTokenBucket({
            capacity: 1,
            refillPerSecond: 1e-9,
            clock,
            maxKeys,
          });
          const model: number[] = []; // least recently used first
          for (const k of keys) {
            const at = model.indexOf(k);
            expect(bucket.tryAcquire(`k${k}`).ok).toBe(at < 0);
            if (at >= 0) model.splice(at, 1);
            else if (model.length === maxKeys) model.shift();
            model.push(k);
            expect(bucket.size).toBe(model.length);
          }
        },
      ),
      { examples: [[[2, [0, 1, 0, 2, 0]]]] },
    );
  });

  it('never holds more than maxKeys while idle keys are also swept (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 16 }),
        fc.array(
          fc.oneof(
            fc.record({
              key: fc.integer({ min: 0, max: 40 }),
              tokens: fc.integer({ min: 1, max: 2 }),
            }),
            fc.record({ advanceMs: fc.integer({ min: 0, max: 3000 }) }),
          ),
          { maxLength: 200 },
        ),
        async (maxKeys, ops) => {
          const clock = createManualClock();
          const bucket = createMemoryTokenBucket({
            capacity: 2,
            refillPerSecond: 1,
            clock,
            maxKeys,
          });
          const used = new Set<number>();
          for (const op of ops) {
            if ('advanceMs' in op) {
              await clock.advance(op.advanceMs);
              continue;
            }
            bucket.tryAcquire(`k${op.key}`, op.tokens);
            used.add(op.key);
            expect(bucket.size).toBeLessThanOrEqual(Math.min(maxKeys, used.size));
            // The key just used is held: a second request for the whole bucket is refused.
            expect(bucket.tryAcquire(`k${op.key}`, 2).ok).toBe(false);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('never evicts a key with waiters; it moves it to the back instead', async () => {
    const clock = createManualClock();
    const bucket = createMemoryTokenBucket({ capacity: 1, refillPerSecond: 1, clock, maxKeys: 2 });
    bucket.tryAcquire('waiting');
    const waiter = bucket.acquire('waiting');
    bucket.tryAcquire('b');
    bucket.tryAcquire('c'); // evicts b, the oldest key without waiters
    expect(bucket.size).toBe(2);
    expect(bucket.tryAcquire('b').ok).toBe(true); // b came back full: it was dropped (c goes)
    await clock.advance(1000);
    await expect(waiter).resolves.toBe(1000);
  });

  it('keeps exactly the maxKeys most recent keys over a long run past the cap', () => {
    const bucket = createMemoryTokenBucket({
      capacity: 1,
      refillPerSecond: 1e-9,
      clock: createManualClock(),
      maxKeys: 1000,
    });
    for (let i = 0; i < 20_000; i++) bucket.tryAcquire(`k${i}`);
    expect(bucket.size).toBe(1000);
    // The 1,000 most recent keys are held, the others were evicted.
    expect(bucket.tryAcquire('k19000').ok).toBe(false);
    expect(bucket.tryAcquire('k18999').ok).toBe(true);
  });

  describe('the slot remembered for a key checked over and over', () => {
    /** A bucket whose keys never refill: a grant means the key was not held. */
    const neverRefills = (maxKeys?: number) =>
      createMemoryTokenBucket({
        capacity: 1,
        refillPerSecond: 1e-9,
        clock: createManualClock(),
        ...(maxKeys === undefined ? {} : { maxKeys }),
      });

    it('is forgotten when its key is evicted and the slot goes to another key', async () => {
      const bucket = neverRefills(1);
      expect(bucket.tryAcquire('a').ok).toBe(true);
      expect(bucket.tryAcquire('a').ok).toBe(false);
      expect(bucket.tryAcquire('a').ok).toBe(false);
      await expect(bucket.acquire('b', 1, { maxWaitMs: 0 })).resolves.toBe(0); // evicts a
      expect(bucket.tryAcquire('a').ok).toBe(true); // a came back full, not in b's slot
      expect(bucket.tryAcquire('b').ok).toBe(true); // and evicted b
    });

    it('is forgotten when its key is swept and the slot goes to another key', async () => {
      const clock = createManualClock();
      const bucket = createMemoryTokenBucket({ capacity: 1, refillPerSecond: 1, clock });
      expect(bucket.tryAcquire('a').ok).toBe(true);
      expect(bucket.tryAcquire('a').ok).toBe(false);
      expect(bucket.tryAcquire('a').ok).toBe(false);
      await clock.advance(1000); // a is full again: the next new key sweeps it
      await expect(bucket.acquire('b', 1, { maxWaitMs: 0 })).resolves.toBe(0);
      expect(bucket.size).toBe(1);
      expect(bucket.tryAcquire('a').ok).toBe(true);
      expect(bucket.tryAcquire('b').ok).toBe(false);
    });

    it('still makes its key the most recently used after another key was touched', async () => {
      const bucket = neverRefills(2);
      expect(bucket.tryAcquire('a').ok).toBe(true);
      expect(bucket.tryAcquire('a').ok).toBe(false);
      await expect(bucket.acquire('b', 1, { maxWaitMs: 0 })).resolves.toBe(0);
      expect(bucket.tryAcquire('a').ok).toBe(false); // a is now newer than b
      expect(bucket.tryAcquire('c').ok).toBe(true); // evicts b, the least recently used
      expect(bucket.tryAcquire('a').ok).toBe(false);
      expect(bucket.tryAcquire('b').ok).toBe(true);
    });

    it("follows its key's own rate being set and reset", async () => {
      const clock = createManualClock();
      const bucket = createMemoryTokenBucket({ capacity: 1, refillPerSecond: 1, clock });
      expect(bucket.tryAcquire('a').ok).toBe(true);
      expect(bucket.tryAcquire('a').ok).toBe(false);
      bucket.setRate('a', { capacity: 3, refillPerSecond: 1 });
      await clock.advance(3000);
      expect(bucket.tryAcquire('a', 3).ok).toBe(true);
      bucket.resetRate('a');
      await clock.advance(3000);
      expect(bucket.tryAcquire('a')).toEqual({ ok: true, remaining: 0 });
    });

    it('matches a least-recently-used model whatever mix of tryAcquire and acquire (property)', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
          fc.array(
            fc.record({
              key: fc.integer({ min: 0, max: 8 }),
              wait: fc.boolean(),
              times: fc.nat(3),
            }),
            { maxLength: 120 },
          ),
          async (maxKeys, ops) => {
            const bucket = neverRefills(maxKeys);
            const model: number[] = []; // least recently used first
            for (const { key, wait, times } of ops) {
              for (let t = 0; t <= times; t++) {
                const at = model.indexOf(key);
                const granted = wait
                  ? await bucket.acquire(`k${key}`, 1, { maxWaitMs: 0 }).then(
                      () => true,
                      () => false,
                    )
                  : bucket.tryAcquire(`k${key}`).ok;
                expect(granted).toBe(at < 0);
                if (at >= 0) model.splice(at, 1);
                else if (model.length === maxKeys) model.shift();
                model.push(key);
              }
            }
            expect(bucket.size).toBe(model.length);
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  it('waits for a refill a month away with one timer, not a busy loop (real clock)', async () => {
    const timeouts = vi.spyOn(globalThis, 'setTimeout');
    const bucket = createMemoryTokenBucket({ capacity: 1, refillPerSecond: 1 / (30 * 86_400) });
    expect(bucket.tryAcquire('k').ok).toBe(true);
    const controller = new AbortController();
    const waiting = bucket.acquire('k', 1, { signal: controller.signal }).catch((e: unknown) => e);
    const armed = () => timeouts.mock.calls.filter(([, ms]) => (ms ?? 0) > 1000).length;
    const before = timeouts.mock.calls.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    // One step of the month-long wait is armed, and nothing wakes in between.
    expect(armed()).toBe(1);
    expect(timeouts.mock.calls.length - before).toBe(1);
    controller.abort();
    expect(await waiting).toBeInstanceOf(RateLimitAbortedError);
  });

  describe('setRate', () => {
    it('wakes a waiter at once, and rejects waiters above the new capacity', async () => {
      const clock = createManualClock();
      const bucket = createMemoryTokenBucket({ capacity: 5, refillPerSecond: 0.001, clock });
      bucket.tryAcquire('k', 5);
      const small = bucket.acquire('k', 1);
      const big = bucket.acquire('k', 4).catch((e: unknown) => e);
      await clock.advance(0);
      bucket.setRate('k', { refillPerSecond: 10, capacity: 2 });
      expect(await big).toBeInstanceOf(RangeError);
      expect(String(await big)).toMatch(/capacity 2.*got 4/);
      await clock.advance(100);
      await expect(small).resolves.toBe(100);
      expect(bucket.effectiveRefillPerSecond('k')).toBe(10);
      expect(bucket.effectiveRefillPerSecond('other')).toBe(0.001);
    });

    it('outlives the key being dropped, until resetRate', () => {
      const clock = createManualClock();
      const bucket = createMemoryTokenBucket({
        capacity: 1,
        refillPerSecond: 1,
        clock,
        maxKeys: 1,
      });
      bucket.setRate('k', { refillPerSecond: 4, capacity: 3 });
      expect(bucket.tryAcquire('k', 3).ok).toBe(true);
      bucket.tryAcquire('other'); // evicts k
      expect(bucket.tryAcquire('k', 3)).toEqual({ ok: true, remaining: 0 });
      expect(bucket.effectiveRefillPerSecond('k')).toBe(4);
      bucket.resetRate('k');
      bucket.resetRate('never-set');
      expect(() => bucket.tryAcquire('k', 3)).toThrow(/capacity 1.*got 3/);
      expect(bucket.effectiveRefillPerSecond('k')).toBe(1);
    });

    it('holds at most maxRateOverrides keys with their own rate', () => {
      const bucket = createMemoryTokenBucket({
        capacity: 1,
        refillPerSecond: 1,
        maxRateOverrides: 2,
      });
      bucket.setRate('a', { refillPerSecond: 2 });
      bucket.setRate('b', { refillPerSecond: 2 });
      bucket.setRate('a', { refillPerSecond: 3 });
      expect(() => bucket.setRate('c', { refillPerSecond: 2 })).toThrow(/maxRateOverrides 2/);
      bucket.resetRate('b');
      bucket.setRate('c', { refillPerSecond: 2 });
      expect(() =>
        createMemoryTokenBucket({ capacity: 1, refillPerSecond: 1, maxRateOverrides: -1 }),
      ).toThrow(/maxRateOverrides.*-1/);
    });

    it('gives exactly maxRateOverrides keys their own rate, whatever the cap (property)', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 40 }), (maxRateOverrides) => {
          const bucket = createMemoryTokenBucket({
            capacity: 1,
            refillPerSecond: 1,
            maxRateOverrides,
          });
          for (let i = 0; i < maxRateOverrides; i++) {
            bucket.setRate(`k${i}`, { refillPerSecond: 2 });
            bucket.setRate(`k${i}`, { refillPerSecond: 3 });
          }
          expect(() => bucket.setRate('one-more', { refillPerSecond: 2 })).toThrow(RangeError);
          for (let i = 0; i < maxRateOverrides; i++) {
            expect(bucket.effectiveRefillPerSecond(`k${i}`)).toBe(3);
          }
          expect(bucket.effectiveRefillPerSecond('one-more')).toBe(1);
        }),
      );
    });

    it('lowers an adaptive key from its own rate, never above it', async () => {
      const clock = createManualClock();
      const bucket = createMemoryTokenBucket({
        capacity: 10,
        refillPerSecond: 100,
        clock,
        adaptive: true,
      });
      bucket.setRate('k', { refillPerSecond: 10 });
      bucket.feedback('k').throttled({ retryable: true, reason: 'rate_limited' });
      expect(bucket.effectiveRefillPerSecond('k')).toBeCloseTo(7);
      await clock.advance(600_000);
      expect(bucket.effectiveRefillPerSecond('k')).toBe(10);
    });
  });

  it('ignores throttles when not adaptive', () => {
    const bucket = createMemoryTokenBucket({
      capacity: 10,
      refillPerSecond: 10,
      clock: createManualClock(),
    });
    bucket.feedback('k').throttled({ retryable: true, reason: 'rate_limited' });
    expect(bucket.effectiveRefillPerSecond('k')).toBe(10);
    expect(bucket.tryAcquire('k', 10).ok).toBe(true);
  });
});

describe('adaptive mode', () => {
  it('drops the rate ×0.7 per throttle, counts a burst of throttles once, and never goes below the floor', async () => {
    const clock = createManualClock();
    const bucket = createMemoryTokenBucket({
      capacity: 80,
      refillPerSecond: 80,
      clock,
      adaptive: true,
    });
    const feedback = bucket.feedback('phone');
    const rateLimited = { retryable: true, reason: 'rate_limited' } as const;
    feedback.throttled(rateLimited);
    feedback.throttled(rateLimited);
    expect(bucket.effectiveRefillPerSecond('phone')).toBeCloseTo(56);
    expect(bucket.tryAcquire('phone')).toEqual({ ok: false, retryAfterMs: 18 });
    for (let i = 0; i < 30; i++) {
      await clock.advance(1000);
      feedback.throttled(rateLimited);
    }
    expect(bucket.effectiveRefillPerSecond('phone')).toBeCloseTo(4);
  });

  it('recovers along the cubic curve to the configured rate, never above', async () => {
    const clock = createManualClock();
    const bucket = createMemoryTokenBucket({
      capacity: 80,
      refillPerSecond: 80,
      clock,
      adaptive: { recoveryMs: 10_000 },
    });
    bucket.feedback('phone').throttled({ retryable: true, reason: 'rate_limited' });
    const rates: number[] = [];
    for (let t = 0; t <= 30; t++) {
      rates.push(bucket.effectiveRefillPerSecond('phone'));
      await clock.advance(1000);
    }
    expect(rates[0]).toBeCloseTo(56);
    expect(rates[10]).toBeCloseTo(80);
    expect(rates[5]).toBeGreaterThan(70);
    for (let i = 1; i < rates.length; i++) expect(rates[i]).toBeGreaterThanOrEqual(rates[i - 1]!);
    expect(Math.max(...rates)).toBe(80);
  });

  it('honours a Retry-After carried by the throttle', () => {
    const clock = createManualClock();
    const bucket = createMemoryTokenBucket({
      capacity: 10,
      refillPerSecond: 10,
      clock,
      adaptive: true,
    });
    bucket.feedback('k').throttled({ retryable: true, reason: 'rate_limited', retryAfterMs: 2000 });
    const result = bucket.tryAcquire('k');
    expect(result.ok).toBe(false);
    expect(!result.ok && result.retryAfterMs).toBeGreaterThanOrEqual(1900);
  });

  it('keeps a key empty for a Retry-After only up to maxThrottleMs (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 ** 15 }),
        fc.integer({ min: 0, max: 3_600_000 }),
        (retryAfterMs, maxThrottleMs) => {
          const clock = createManualClock();
          const bucket = createMemoryTokenBucket({
            capacity: 10,
            refillPerSecond: 10,
            clock,
            adaptive: { maxThrottleMs },
          });
          bucket.feedback('k').throttled({ retryable: true, reason: 'rate_limited', retryAfterMs });
          const result = bucket.tryAcquire('k');
          // The rate is 7/s after the throttle: one token takes ⌈1000 / 7⌉ ms once the hold ends.
          const bound = Math.min(retryAfterMs, maxThrottleMs) + 143;
          expect(result.ok).toBe(false);
          expect(!result.ok && result.retryAfterMs).toBeLessThanOrEqual(bound);
        },
      ),
    );
  });

  it('caps a 130429 with a Retry-After of years at the 5-minute default', () => {
    const clock = createManualClock();
    const bucket = createMemoryTokenBucket({
      capacity: 10,
      refillPerSecond: 80,
      clock,
      adaptive: true,
    });
    bucket.feedback('k').throttled({
      retryable: true,
      reason: 'rate_limited',
      errorCode: 130429,
      retryAfterMs: 10 * 365 * 86_400_000,
    });
    const result = bucket.tryAcquire('k');
    expect(!result.ok && result.retryAfterMs).toBeLessThanOrEqual(300_000 + 20);
    expect(() =>
      createMemoryTokenBucket({ capacity: 1, refillPerSecond: 1, adaptive: { maxThrottleMs: -1 } }),
    ).toThrow(/adaptive.maxThrottleMs.*-1/);
    expect(() =>
      createMemoryTokenBucket({
        capacity: 1,
        refillPerSecond: 1,
        adaptive: { maxThrottleMs: MAX_TIMER_MS + 1 },
      }),
    ).toThrow(RangeError);
  });

  it('slows down when retry reports 429s, then recovers', async () => {
    const clock = createManualClock();
    const bucket = createMemoryTokenBucket({
      capacity: 10,
      refillPerSecond: 10,
      clock,
      adaptive: true,
    });
    let calls = 0;
    let rateOnThirdCall = 0;
    const send = async () => {
      await bucket.acquire('phone');
      calls++;
      if (calls === 3) rateOnThirdCall = bucket.effectiveRefillPerSecond('phone');
      if (calls <= 2) throw Object.assign(new Error('Too Many Requests'), { status: 429 });
      return 'sent';
    };
    const result = retry(send, {
      clock,
      feedback: bucket.feedback('phone'),
      backoff: { initialDelayMs: 1500, jitter: 'none' },
    });
    await clock.advance(5000);
    expect(await result).toBe('sent');
    expect(calls).toBe(3);
    expect(rateOnThirdCall).toBeLessThan(8);
    await clock.advance(60_000);
    expect(bucket.effectiveRefillPerSecond('phone')).toBe(10);
  });
});
