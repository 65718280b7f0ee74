import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bucketLowerMs,
  bucketOf,
  bucketWidthMs,
  HISTOGRAM_BUCKETS,
  HISTOGRAM_MAX_MS,
  HISTOGRAM_RELATIVE_ERROR,
  quantileOf,
} from './histogram.js';

describe('log-linear histogram', () => {
  it('has 768 buckets that tile [0, 2^28) without gaps or overlaps', () => {
    expect(HISTOGRAM_BUCKETS).toBe(768);
    let next = 0;
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      expect(bucketLowerMs(i)).toBe(next);
      next += bucketWidthMs(i);
    }
    expect(next).toBe(HISTOGRAM_MAX_MS);
  });

  it('puts every value in the bucket that contains it, and the bucket is at most 1/32 wide', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: HISTOGRAM_MAX_MS - 1, noNaN: true }), (ms) => {
        const b = bucketOf(ms);
        expect(b).toBeGreaterThanOrEqual(0);
        expect(b).toBeLessThan(HISTOGRAM_BUCKETS);
        expect(bucketLowerMs(b)).toBeLessThanOrEqual(ms);
        expect(bucketLowerMs(b) + bucketWidthMs(b)).toBeGreaterThan(ms);
        if (ms >= 64) expect(bucketWidthMs(b) / bucketLowerMs(b)).toBeLessThanOrEqual(1 / 32);
      }),
    );
  });

  it('is exact at powers of two and their neighbours', () => {
    for (let k = 6; k < 28; k++) {
      const p = 2 ** k;
      expect(bucketLowerMs(bucketOf(p))).toBe(p);
      expect(bucketLowerMs(bucketOf(p - 1)) + bucketWidthMs(bucketOf(p - 1))).toBe(p);
    }
  });

  it('clamps negatives, NaN and huge values into the end buckets', () => {
    expect(bucketOf(-5)).toBe(0);
    expect(bucketOf(Number.NaN)).toBe(0);
    expect(bucketOf(Infinity)).toBe(HISTOGRAM_BUCKETS - 1);
    expect(bucketOf(1e15)).toBe(HISTOGRAM_BUCKETS - 1);
  });

  it('reads quantiles back within the documented error of the exact nearest-rank value', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 86_400_000, noNaN: true }), {
          minLength: 1,
          maxLength: 300,
        }),
        fc.constantFrom(0.5, 0.95, 0.99, 0.001, 1),
        (values, q) => {
          const counts = new Uint32Array(HISTOGRAM_BUCKETS);
          for (const v of values) counts[bucketOf(v)] = (counts[bucketOf(v)] ?? 0) + 1;
          const sorted = [...values].sort((a, b) => a - b);
          const exact = sorted[Math.max(1, Math.ceil(q * values.length)) - 1] as number;
          const got = quantileOf(counts, 0, values.length, q);
          const allowed = Math.max(1, exact * HISTOGRAM_RELATIVE_ERROR);
          expect(Math.abs(got - exact)).toBeLessThanOrEqual(allowed);
        },
      ),
    );
  });
});
