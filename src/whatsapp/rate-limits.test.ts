import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMemoryTokenBucket } from '../memory/token-bucket.js';
import { createManualClock } from '../testing/index.js';
import { throughputLimits, WHATSAPP_RATE_LIMITS } from './rate-limits.js';

/** Meta's documented limits, in messages per second (/work/shared/reference/whatsapp.md). */
const META_LIMITS = [
  ['perPhoneNumber', 80],
  ['upgradedPhoneNumber', 1000],
  ['coexistencePhoneNumber', 20],
] as const;

/** Most grants in any closed one-second window [t, t + 1000 ms], times sorted ascending. */
function busiestSecond(times: readonly number[]): number {
  let most = 0;
  let end = 0;
  for (let start = 0; start < times.length; start++) {
    while (end < times.length && (times[end] as number) <= (times[start] as number) + 1000) end++;
    most = Math.max(most, end - start);
  }
  return most;
}

/** The times a bucket with `limits` grants requests of one token arriving after `gaps` (ms). */
async function grantTimes(
  limits: { capacity: number; refillPerSecond: number },
  gaps: readonly number[],
): Promise<number[]> {
  const clock = createManualClock(1_000_000);
  const bucket = createMemoryTokenBucket({ ...limits, clock });
  const times: number[] = [];
  for (const gap of gaps) {
    await clock.advance(gap);
    if (bucket.tryAcquire('15550001111').ok) times.push(clock.now());
  }
  return times;
}

/** Request gaps in milliseconds: bursts at the same instant, steady streams and pauses. */
const gaps = fc.array(
  fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: 3 }),
    fc.double({ min: 0, max: 1500, noNaN: true }),
  ),
  { minLength: 1, maxLength: 3000 },
);

describe('WHATSAPP_RATE_LIMITS', () => {
  for (const [preset, limit] of META_LIMITS) {
    it(`${preset}: no one-second window of grants exceeds Meta's ${limit}/s`, async () => {
      const limits = WHATSAPP_RATE_LIMITS[preset];
      expect(limits.capacity + limits.refillPerSecond).toBeLessThanOrEqual(limit);
      await fc.assert(
        fc.asyncProperty(gaps, async (g) => {
          expect(busiestSecond(await grantTimes(limits, g))).toBeLessThanOrEqual(limit);
        }),
        { numRuns: 50 },
      );
    });
  }

  it('gives up 10 % of the sustained rate and keeps 5 % of every second for bunching', async () => {
    // Asking every millisecond for 10 s: the bucket's best.
    const times = await grantTimes(WHATSAPP_RATE_LIMITS.perPhoneNumber, Array(10_000).fill(1));
    expect(busiestSecond(times)).toBe(76);
    const last = times.at(-1) as number;
    expect(times.filter((t) => t > last - 5000).length).toBe(5 * 72);
  });
});

describe('throughputLimits', () => {
  it('keeps every one-second window within the limit, for any limit', async () => {
    await fc.assert(
      fc.asyncProperty(fc.double({ min: 2, max: 2000, noNaN: true }), gaps, async (limit, g) => {
        const limits = throughputLimits(limit);
        expect(limits.capacity).toBeGreaterThanOrEqual(1);
        expect(limits.refillPerSecond).toBeGreaterThan(0);
        expect(limits.capacity + limits.refillPerSecond).toBeLessThanOrEqual(limit * 0.95 + 1e-9);
        expect(busiestSecond(await grantTimes(limits, g))).toBeLessThanOrEqual(limit);
      }),
      { numRuns: 100 },
    );
  });

  it('keeps at least 90 % of the limit from 20/s up', () => {
    fc.assert(
      fc.property(fc.double({ min: 20, max: 100_000, noNaN: true }), (limit) => {
        expect(throughputLimits(limit).refillPerSecond).toBeGreaterThanOrEqual(limit * 0.9 - 1e-9);
      }),
    );
  });

  it('names the option and the value it refuses', () => {
    expect(() => throughputLimits(1)).toThrow(
      new RangeError('limitPerSecond must be a finite number >= 2, got 1'),
    );
    expect(() => throughputLimits(Number.NaN)).toThrow(
      new TypeError('limitPerSecond must be a number, got NaN'),
    );
  });
});
