import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Clock } from '../core/clock.js';
import type { RetrykitEvent } from '../core/events.js';
import { RateLimitAbortedError, RateLimitTimeoutError } from '../core/rate-limit-errors.js';
import { retry } from '../core/retry.js';
import { createManualClock } from '../testing/index.js';
import { createTokenBucket } from './token-bucket.js';

describe('createTokenBucket', () => {
  it('rejects bad options, naming the option and the value', () => {
    expect(() => createTokenBucket({ capacity: 0, refillPerSecond: 1 })).toThrow(
      /capacity must be a finite number >= 1, got 0/,
    );
    expect(() => createTokenBucket({ capacity: -5, refillPerSecond: 1 })).toThrow(/capacity.*-5/);
    expect(() => createTokenBucket({ capacity: 10, refillPerSecond: Number.NaN })).toThrow(
      /refillPerSecond must be a number, got NaN/,
    );
    expect(() => createTokenBucket({ capacity: 10, refillPerSecond: Infinity })).toThrow(
      /refillPerSecond.*Infinity/,
    );
    expect(() => createTokenBucket({ capacity: 10, refillPerSecond: 1, maxKeys: 0 })).toThrow(
      /maxKeys.*0/,
    );
    expect(() => createTokenBucket({ capacity: 10, refillPerSecond: 1, maxKeys: 2.5 })).toThrow(
      /maxKeys.*2.5/,
    );
    expect(() =>
      createTokenBucket({ capacity: 10, refillPerSecond: 1, adaptive: { decreaseFactor: 1.5 } }),
    ).toThrow(/adaptive.decreaseFactor.*1.5/);
  });

  it('rejects bad calls, naming the value', () => {
    const bucket = createTokenBucket({ capacity: 10, refillPerSecond: 1 });
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
    const bucket = createTokenBucket({ capacity: 2, refillPerSecond: 1, clock, maxKeys: 4 });
    for (let i = 0; i < 10; i++) bucket.tryAcquire(`k${i % 6}`);
    expect(reads).toBe(10);
  });

  it('returns frozen results, shared when equal', () => {
    const bucket = createTokenBucket({
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
    const bucket = createTokenBucket({ capacity: 10, refillPerSecond: 10, clock });
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
    const bucket = createTokenBucket({
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
    const bucket = createTokenBucket({ capacity: 1, refillPerSecond: 1, clock, adaptive: true });
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
    const bucket = createTokenBucket({ capacity: 5, refillPerSecond: 1, clock });
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
    const bucket = createTokenBucket({
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

  it('drops idle keys whose bucket is full again, without timers', async () => {
    const clock = createManualClock();
    const bucket = createTokenBucket({ capacity: 2, refillPerSecond: 1, clock });
    for (let i = 0; i < 100; i++) bucket.tryAcquire(`old${i}`);
    expect(bucket.size).toBe(100);
    await clock.advance(1000);
    for (let i = 0; i < 100; i++) bucket.tryAcquire(`new${i}`);
    expect(bucket.size).toBeLessThanOrEqual(110);
    expect(clock.pending()).toEqual([]);
  });

  it('keeps keys that are not full again', () => {
    const clock = createManualClock();
    const bucket = createTokenBucket({ capacity: 2, refillPerSecond: 1, clock });
    for (let i = 0; i < 50; i++) bucket.tryAcquire(`old${i}`, 2);
    for (let i = 0; i < 50; i++) bucket.tryAcquire(`new${i}`);
    expect(bucket.size).toBe(100);
    for (let i = 0; i < 50; i++) expect(bucket.tryAcquire(`old${i}`).ok).toBe(false);
  });

  it('caps the map at maxKeys, dropping a least recently used key', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 64 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 400 }),
        (maxKeys, keys) => {
          const clock = createManualClock();
          const bucket = createTokenBucket({ capacity: 1, refillPerSecond: 0.001, clock, maxKeys });
          const lastUse = new Map<number, number>();
          keys.forEach((k, i) => {
            bucket.tryAcquire(`k${k}`);
            lastUse.set(k, i);
            expect(bucket.size).toBeLessThanOrEqual(maxKeys);
          });
          // Every key among the maxKeys/2 most recently used is still held (and still empty).
          const recent = [...lastUse.entries()]
            .sort((a, b) => b[1] - a[1])
            .slice(0, Math.floor(maxKeys / 2));
          for (const [k] of recent) expect(bucket.tryAcquire(`k${k}`).ok).toBe(false);
        },
      ),
    );
  });

  it('ignores throttles when not adaptive', () => {
    const bucket = createTokenBucket({
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
    const bucket = createTokenBucket({ capacity: 80, refillPerSecond: 80, clock, adaptive: true });
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
    const bucket = createTokenBucket({
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
    const bucket = createTokenBucket({ capacity: 10, refillPerSecond: 10, clock, adaptive: true });
    bucket.feedback('k').throttled({ retryable: true, reason: 'rate_limited', retryAfterMs: 2000 });
    const result = bucket.tryAcquire('k');
    expect(result.ok).toBe(false);
    expect(!result.ok && result.retryAfterMs).toBeGreaterThanOrEqual(1900);
  });

  it('slows down when retry reports 429s, then recovers', async () => {
    const clock = createManualClock();
    const bucket = createTokenBucket({ capacity: 10, refillPerSecond: 10, clock, adaptive: true });
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
