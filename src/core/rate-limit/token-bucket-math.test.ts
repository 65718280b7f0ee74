import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BucketState, cubicRate, msUntil, refill, takeTokens } from './token-bucket-math.js';

const limits = fc.record({
  capacity: fc.integer({ min: 1, max: 1000 }),
  refillPerMs: fc.double({ min: 1e-5, max: 5, noNaN: true }),
});

describe('token bucket maths', () => {
  it('never grants more than capacity + rate·w in any window of w ms', () => {
    fc.assert(
      fc.property(
        limits,
        fc.array(
          fc.record({
            dtMs: fc.integer({ min: 0, max: 5000 }),
            ask: fc.double({ min: 0, max: 1, noNaN: true }),
          }),
          {
            minLength: 1,
            maxLength: 150,
          },
        ),
        ({ capacity, refillPerMs }, steps) => {
          let state: BucketState = { tokens: capacity, updatedAtMs: 0 };
          let now = 0;
          const grants: { at: number; tokens: number }[] = [];
          for (const { dtMs, ask } of steps) {
            now += dtMs;
            const requested = Math.max(1e-3, ask * capacity);
            const outcome = takeTokens(state, now, requested, capacity, refillPerMs);
            state = outcome.state;
            if (outcome.granted) grants.push({ at: now, tokens: requested });
            expect(state.tokens).toBeGreaterThanOrEqual(0);
            expect(state.tokens).toBeLessThanOrEqual(capacity);
          }
          for (let i = 0; i < grants.length; i++) {
            let sum = 0;
            for (let j = i; j < grants.length; j++) {
              sum += grants[j]!.tokens;
              const w = grants[j]!.at - grants[i]!.at;
              expect(sum).toBeLessThanOrEqual(capacity + refillPerMs * w + 1e-6 * capacity);
            }
          }
        },
      ),
    );
  });

  it('gives a steady caller at least 99 % of the rate', () => {
    fc.assert(
      fc.property(limits, fc.integer({ min: 1, max: 10 }), ({ capacity, refillPerMs }, want) => {
        // Retry-after is in whole milliseconds: a bucket needs room for one millisecond of
        // refill above the request, or the rounding spills over the cap.
        const requested = Math.min(want, Math.floor(capacity - refillPerMs));
        if (requested < 1) return;
        // The caller asks again exactly when told to, for 2,000 grants' worth of time.
        const durationMs = Math.ceil((2000 * requested) / refillPerMs);
        let state: BucketState = { tokens: 0, updatedAtMs: 0 };
        let now = 0;
        let total = 0;
        while (now <= durationMs) {
          const outcome = takeTokens(state, now, requested, capacity, refillPerMs);
          state = outcome.state;
          if (outcome.granted) {
            total += requested;
          } else {
            now += outcome.retryAfterMs;
          }
        }
        expect(total).toBeGreaterThanOrEqual(0.99 * refillPerMs * durationMs);
        expect(total).toBeLessThanOrEqual(capacity + refillPerMs * durationMs + 1e-6);
      }),
    );
  });

  it('refills nothing when the clock goes backwards and never beyond capacity', () => {
    fc.assert(
      fc.property(
        limits,
        fc.double({ min: 0, max: 1000, noNaN: true }),
        fc.integer({ min: -1e6, max: 1e9 }),
        ({ capacity, refillPerMs }, tokens, dtMs) => {
          const t = Math.min(tokens, capacity);
          const after = refill(t, 1e6, 1e6 + dtMs, capacity, refillPerMs);
          if (dtMs <= 0) expect(after).toBe(t);
          expect(after).toBeGreaterThanOrEqual(t);
          expect(after).toBeLessThanOrEqual(capacity);
          expect(Number.isFinite(after)).toBe(true);
        },
      ),
    );
  });

  it('retryAfterMs is the first whole millisecond at which the request fits', () => {
    fc.assert(
      fc.property(
        limits,
        fc.double({ min: 0, max: 1, noNaN: true }),
        ({ capacity, refillPerMs }, f) => {
          const state: BucketState = { tokens: 0, updatedAtMs: 0 };
          const requested = Math.max(1e-3, f * capacity);
          const first = takeTokens(state, 0, requested, capacity, refillPerMs);
          if (first.granted) return;
          const wait = first.retryAfterMs;
          expect(wait).toBe(msUntil(0, requested, refillPerMs));
          if (wait > 1)
            expect(takeTokens(state, wait - 1, requested, capacity, refillPerMs).granted).toBe(
              false,
            );
          // One millisecond of slack absorbs floating-point rounding in the division.
          expect(takeTokens(state, wait + 1, requested, capacity, refillPerMs).granted).toBe(true);
        },
      ),
    );
  });

  it('a refusal takes nothing', () => {
    const state: BucketState = { tokens: 0.5, updatedAtMs: 0 };
    const outcome = takeTokens(state, 0, 1, 10, 0.001);
    expect(outcome).toEqual({ granted: false, state, retryAfterMs: 500 });
  });

  it('cubic recovery starts at β·W, is back at W after recoveryMs, and stays within [floor, ceiling]', () => {
    expect(cubicRate(80, 0, 0.7, 10_000, 4, 80)).toBeCloseTo(56);
    expect(cubicRate(80, 10_000, 0.7, 10_000, 4, 100)).toBeCloseTo(80);
    expect(cubicRate(80, 10_000, 0.7, 10_000, 4, 80)).toBe(80);
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 1000, noNaN: true }),
        fc.double({ min: 0.05, max: 0.95, noNaN: true }),
        fc.integer({ min: 1, max: 60_000 }),
        fc.integer({ min: -10_000, max: 10_000_000 }),
        (w, beta, k, since) => {
          const floor = w * 0.05;
          const r = cubicRate(w, since, beta, k, floor, w * 2);
          expect(r).toBeGreaterThanOrEqual(floor);
          expect(r).toBeLessThanOrEqual(w * 2);
          expect(cubicRate(w, since + 1, beta, k, floor, w * 2)).toBeGreaterThanOrEqual(r);
        },
      ),
    );
  });
});
