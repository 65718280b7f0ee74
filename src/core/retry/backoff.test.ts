import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../testing/index.js';
import { MAX_TIMER_MS } from '../clock.js';
import {
  BACKOFF_DEFAULTS,
  type BackoffOptions,
  backoffSchedule,
  computeDelay,
  type JitterKind,
} from './backoff.js';

const KINDS: JitterKind[] = ['none', 'full', 'equal', 'decorrelated', 'proportional'];

const options = fc.record({
  initialDelayMs: fc.oneof(fc.constant(0), fc.double({ min: 1e-3, max: 1e7, noNaN: true })),
  multiplier: fc.double({ min: 1, max: 10, noNaN: true }),
  maxDelayMs: fc.oneof(fc.constant(0), fc.double({ min: 1e-3, max: 1e12, noNaN: true })),
  jitterRatio: fc.double({ min: 0, max: 1, noNaN: true }),
});
const attempt = fc.oneof(
  fc.integer({ min: 0, max: 64 }),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  fc.constant(Number.MAX_SAFE_INTEGER),
);
const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

/** The capped exponential delay, computed independently of the implementation. */
function plain(o: Required<Omit<BackoffOptions, 'jitter'>>, n: number): number {
  const cap = Math.min(o.maxDelayMs, MAX_TIMER_MS);
  if (o.initialDelayMs === 0) return 0;
  return Math.min(cap, o.initialDelayMs * o.multiplier ** n);
}

describe('computeDelay', () => {
  it('follows initial · multiplier^attempt without jitter', () => {
    const o = { initialDelayMs: 1000, multiplier: 2, jitter: 'none' } as const;
    expect([0, 1, 2, 3, 4].map((n) => computeDelay(n, o))).toEqual([1000, 2000, 4000, 8000, 16000]);
  });

  it('uses full jitter, 1 s, ×2 and a 24 h cap by default', () => {
    expect(BACKOFF_DEFAULTS).toMatchObject({
      initialDelayMs: 1000,
      multiplier: 2,
      maxDelayMs: 86_400_000,
      jitter: 'full',
    });
    expect(computeDelay(0, undefined, { random: () => 0.5 })).toBe(500);
    expect(computeDelay(40, undefined, { random: () => 0.999 })).toBeCloseTo(86_400_000 * 0.999);
  });

  it.each(KINDS)('%s: always finite, ≥ 0, ≤ maxDelayMs and ≤ 2^31 − 1', (jitter) => {
    fc.assert(
      fc.property(
        options,
        attempt,
        unit,
        fc.option(fc.double({ min: 0, max: 1e13, noNaN: true })),
        (o, n, r, prev) => {
          const d = computeDelay(
            n,
            { ...o, jitter },
            { random: () => r, previousDelayMs: prev ?? undefined },
          );
          expect(Number.isFinite(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(o.maxDelayMs);
          expect(d).toBeLessThanOrEqual(MAX_TIMER_MS);
        },
      ),
    );
  });

  it('full jitter lies in [0, v]', () => {
    fc.assert(
      fc.property(options, attempt, unit, (o, n, r) => {
        const d = computeDelay(n, { ...o, jitter: 'full' }, { random: () => r });
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(plain(o, n));
      }),
    );
  });

  it('equal jitter lies in [v/2, v]', () => {
    fc.assert(
      fc.property(options, attempt, unit, (o, n, r) => {
        const v = plain(o, n);
        const d = computeDelay(n, { ...o, jitter: 'equal' }, { random: () => r });
        expect(d).toBeGreaterThanOrEqual(v / 2);
        expect(d).toBeLessThanOrEqual(v);
      }),
    );
  });

  it('proportional jitter lies in [v, min(cap, (1 + ratio)·v)]', () => {
    fc.assert(
      fc.property(options, attempt, unit, (o, n, r) => {
        const v = plain(o, n);
        const cap = Math.min(o.maxDelayMs, MAX_TIMER_MS);
        const d = computeDelay(n, { ...o, jitter: 'proportional' }, { random: () => r });
        expect(d).toBeGreaterThanOrEqual(v);
        expect(d).toBeLessThanOrEqual(Math.min(cap, v * (1 + o.jitterRatio)) * (1 + 1e-12));
      }),
    );
  });

  it('proportional jitter defaults to 0–25 %', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 }), unit, (n, r) => {
        const v = 1000 * 2 ** n;
        const d = computeDelay(n, { jitter: 'proportional' }, { random: () => r });
        expect(d).toBeGreaterThanOrEqual(v);
        expect(d).toBeLessThanOrEqual(v * 1.25);
      }),
    );
  });

  it('decorrelated jitter lies in [initial, min(cap, 3·prev)]', () => {
    fc.assert(
      fc.property(
        options,
        attempt,
        unit,
        fc.double({ min: 0, max: 1e13, noNaN: true }),
        (o, n, r, prev) => {
          const cap = Math.min(o.maxDelayMs, MAX_TIMER_MS);
          const low = Math.min(o.initialDelayMs, cap);
          const d = computeDelay(
            n,
            { ...o, jitter: 'decorrelated' },
            { random: () => r, previousDelayMs: prev },
          );
          expect(d).toBeGreaterThanOrEqual(low * (1 - 1e-12));
          expect(d).toBeLessThanOrEqual(Math.min(cap, 3 * Math.max(prev, low)) * (1 + 1e-12));
        },
      ),
    );
  });

  it('no jitter is non-decreasing in the attempt until the cap', () => {
    fc.assert(
      fc.property(options, fc.integer({ min: 0, max: 2000 }), (o, n) => {
        const a = computeDelay(n, { ...o, jitter: 'none' });
        const b = computeDelay(n + 1, { ...o, jitter: 'none' });
        expect(b).toBeGreaterThanOrEqual(a);
        expect(a).toBeLessThanOrEqual(Math.min(o.maxDelayMs, MAX_TIMER_MS));
      }),
    );
  });

  it('clamps a custom jitter into [0, cap], NaN included', () => {
    expect(computeDelay(0, { jitter: () => Number.NaN })).toBe(0);
    expect(computeDelay(0, { jitter: () => -5 })).toBe(0);
    expect(computeDelay(0, { jitter: () => Number.POSITIVE_INFINITY, maxDelayMs: 5000 })).toBe(
      5000,
    );
    expect(computeDelay(2, { jitter: (v, ctx) => v + ctx.attempt })).toBe(4002);
  });

  it.each([
    [{ initialDelayMs: -1 }, /initialDelayMs.*-1/],
    [{ initialDelayMs: Number.NaN }, /initialDelayMs.*NaN/],
    [{ multiplier: 0.5 }, /multiplier.*0\.5/],
    [{ maxDelayMs: Number.POSITIVE_INFINITY }, /maxDelayMs.*Infinity/],
    [{ jitterRatio: 1.5 }, /jitterRatio.*1\.5/],
    [{ jitter: 'random' as JitterKind }, /jitter.*"random"/],
  ])('rejects %o naming the option and value', (bad, message) => {
    expect(() => computeDelay(0, bad)).toThrow(message);
  });

  it('rejects a negative or fractional attempt', () => {
    expect(() => computeDelay(-1)).toThrow(RangeError);
    expect(() => computeDelay(1.5)).toThrow(/attempt.*1\.5/);
  });
});

describe('backoffSchedule', () => {
  it('lists the first delays, feeding decorrelated jitter its previous delay', () => {
    expect(backoffSchedule({ jitter: 'none', initialDelayMs: 100, maxDelayMs: 1000 }, 6)).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    const delays = backoffSchedule(
      { jitter: 'decorrelated', initialDelayMs: 100 },
      20,
      seededRandom(7),
    );
    for (let i = 1; i < delays.length; i++) {
      expect(delays[i]).toBeLessThanOrEqual(3 * Math.max(delays[i - 1]!, 100) + 1e-9);
      expect(delays[i]).toBeGreaterThanOrEqual(100);
    }
  });

  it('is reproducible with a seeded random source', () => {
    expect(backoffSchedule({}, 8, seededRandom(42))).toEqual(
      backoffSchedule({}, 8, seededRandom(42)),
    );
  });
});
