import fc from 'fast-check';
import { expect, it } from 'vitest';
import { type AdaptiveOptions, createMemoryTokenBucket } from '../src/index.js';
import { createRedisTokenBucket } from '../src/redis/index.js';
import { createManualClock } from '../src/testing/index.js';
import { connectRedis, describeRedis, uniquePrefix } from './support/redis.js';

const RATE_LIMITED = { retryable: true, reason: 'rate_limited' } as const;

type Step =
  | { readonly kind: 'take'; readonly dt: number; readonly tokens: number }
  | { readonly kind: 'throttle'; readonly dt: number; readonly retryAfterMs: number | undefined }
  | { readonly kind: 'rate'; readonly dt: number; readonly refillPerSecond: number | undefined };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('take' as const),
      dt: fc.integer({ min: 0, max: 5_000 }),
      tokens: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('throttle' as const),
      dt: fc.integer({ min: 0, max: 5_000 }),
      retryAfterMs: fc.option(fc.integer({ min: 0, max: 10 ** 9 }), { nil: undefined }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('rate' as const),
      dt: fc.integer({ min: 0, max: 5_000 }),
      refillPerSecond: fc.option(fc.integer({ min: 1, max: 200 }), { nil: undefined }),
    }),
  },
);

// A throttle window longer than the recovery would let a throttle land in the window of one
// that already wore off, which the memory limiter forgets and Redis remembers.
const adaptiveOptions: fc.Arbitrary<AdaptiveOptions> = fc
  .record({
    decreaseFactor: fc.double({ min: 0.05, max: 0.95, noNaN: true }),
    minRefillRatio: fc.double({ min: 0.01, max: 1, noNaN: true }),
    recoveryMs: fc.integer({ min: 1_000, max: 60_000 }),
    throttleWindowMs: fc.integer({ min: 0, max: 1_000 }),
    maxThrottleMs: fc.integer({ min: 0, max: 600_000 }),
  })
  .map((o) => o);

describeRedis('Redis token bucket, adaptive', () => {
  const redis = connectRedis();

  it('agrees with the memory bucket on any sequence of takes, throttles and rate changes (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 3, max: 50 }),
        fc.integer({ min: 1, max: 100 }),
        adaptiveOptions,
        fc.array(step, { minLength: 1, maxLength: 25 }),
        async (capacity, refillPerSecond, adaptive, steps) => {
          const clock = createManualClock(1_700_000_000_000);
          const limits = { capacity, refillPerSecond, clock, adaptive };
          const memory = createMemoryTokenBucket(limits);
          const shared = createRedisTokenBucket(redis, {
            ...limits,
            timeSource: 'client',
            dedupe: false,
            prefix: uniquePrefix('adaptive-model'),
          });
          for (const s of steps) {
            await clock.advance(s.dt);
            if (s.kind === 'take') {
              expect(await shared.tryAcquire('k', s.tokens)).toEqual(
                memory.tryAcquire('k', s.tokens),
              );
            } else if (s.kind === 'throttle') {
              const c =
                s.retryAfterMs === undefined
                  ? RATE_LIMITED
                  : { ...RATE_LIMITED, retryAfterMs: s.retryAfterMs };
              memory.feedback('k').throttled(c);
              shared.feedback('k').throttled(c);
            } else if (s.refillPerSecond === undefined) {
              memory.resetRate('k');
              await shared.resetRate('k');
            } else {
              memory.setRate('k', { refillPerSecond: s.refillPerSecond });
              await shared.setRate('k', { refillPerSecond: s.refillPerSecond });
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps a throttled key empty for the Retry-After up to maxThrottleMs, then at least the floor rate (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10 ** 12 }),
        adaptiveOptions,
        fc.integer({ min: 1, max: 100 }),
        async (retryAfterMs, adaptive, refillPerSecond) => {
          const clock = createManualClock(1_700_000_000_000);
          const bucket = createRedisTokenBucket(redis, {
            capacity: 10,
            refillPerSecond,
            clock,
            adaptive,
            timeSource: 'client',
            prefix: uniquePrefix('adaptive-hold'),
          });
          bucket.feedback('k').throttled({ ...RATE_LIMITED, retryAfterMs });
          const result = await bucket.tryAcquire('k');
          const hold = Math.min(retryAfterMs, adaptive.maxThrottleMs ?? 300_000);
          const floorPerMs = (refillPerSecond / 1000) * (adaptive.minRefillRatio ?? 0.05);
          expect(result.ok).toBe(false);
          if (result.ok) return;
          expect(result.retryAfterMs).toBeGreaterThanOrEqual(hold);
          expect(result.retryAfterMs).toBeLessThanOrEqual(hold + Math.ceil(1 / floorPerMs) + 1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("slows every instance at once: one instance's throttle is the other's refusal", async () => {
    const prefix = uniquePrefix('adaptive-shared');
    const options = { capacity: 80, refillPerSecond: 80, adaptive: true, prefix };
    const a = createRedisTokenBucket(connectRedis(), options);
    const b = createRedisTokenBucket(connectRedis(), options);
    expect((await b.tryAcquire('phone')).ok).toBe(true);
    a.feedback('phone').throttled({ ...RATE_LIMITED, errorCode: 130429, retryAfterMs: 2_000 });
    await a.tryAcquire('phone');
    const refused = await b.tryAcquire('phone');
    expect(refused.ok).toBe(false);
    // Empty for 2 s, then one token at the lowered 56/s.
    expect(!refused.ok && refused.retryAfterMs).toBeGreaterThan(1_900);
    expect(!refused.ok && refused.retryAfterMs).toBeLessThanOrEqual(2_000 + 18);
  });

  it('ignores feedback when not adaptive, and validates adaptive options', async () => {
    const clock = createManualClock(1_700_000_000_000);
    const prefix = uniquePrefix('adaptive-off');
    const bucket = createRedisTokenBucket(redis, {
      capacity: 5,
      refillPerSecond: 5,
      clock,
      timeSource: 'client',
      prefix,
    });
    bucket.feedback('k').throttled({ ...RATE_LIMITED, retryAfterMs: 60_000 });
    expect(await bucket.tryAcquire('k')).toEqual({ ok: true, remaining: 4 });
    expect(() =>
      createRedisTokenBucket(redis, {
        capacity: 1,
        refillPerSecond: 1,
        adaptive: { decreaseFactor: 1 },
      }),
    ).toThrow(/adaptive.decreaseFactor must be between 0 and 1 \(exclusive\), got 1/);
    expect(() =>
      createRedisTokenBucket(redis, { capacity: 1, refillPerSecond: 1, adaptive: 'yes' as never }),
    ).toThrow(/adaptive must be a boolean or an object, got "yes"/);
  });
});
