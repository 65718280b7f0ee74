import type { MinimalJob } from 'bullmq';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RetrykitEvent } from '../core/events.js';
import { computeDelay, JITTER_KINDS } from '../core/retry/backoff.js';
import { createManualClock, seededRandom } from '../testing/index.js';
import { BACKOFF_STRATEGY_DEFAULTS, createBackoffStrategy, deferralPlannerOf } from './backoff.js';

function httpError(status: number, headers: Record<string, string> = {}): Error {
  return Object.assign(new Error(`HTTP ${status}`), { status, headers });
}

describe('createBackoffStrategy', () => {
  it('follows computeDelay for the attempt, 1-based as BullMQ counts', () => {
    const events: RetrykitEvent[] = [];
    const strategy = createBackoffStrategy({
      backoff: { initialDelayMs: 100, multiplier: 2, jitter: 'none' },
      onEvent: (e) => events.push(e),
    });
    expect([1, 2, 3, 4].map((n) => strategy(n, 'retrykit', httpError(503)))).toEqual([
      100, 200, 400, 800,
    ]);
    expect(events[0]).toMatchObject({
      type: 'job_retry_scheduled',
      queue: '',
      attempt: 1,
      delayMs: 100,
      reason: 'service_unavailable',
    });
  });

  it('returns -1 ("fail now") for a permanent failure or past a reason attempt cap', () => {
    const strategy = createBackoffStrategy({
      classify: (e) =>
        e instanceof TypeError
          ? { retryable: true, reason: 'network', maxAttempts: 2 }
          : { retryable: false, reason: 'schema_mismatch' },
    });
    expect(strategy(1, 'retrykit', new Error('bad payload'))).toBe(-1);
    expect(strategy(1, 'retrykit', new TypeError('fetch failed'))).toBeGreaterThanOrEqual(0);
    expect(strategy(2, 'retrykit', new TypeError('fetch failed'))).toBe(-1);
    expect(createBackoffStrategy()(1, 'retrykit', httpError(400))).toBe(-1);
  });

  it('honours Retry-After, never retrying sooner than the server asked', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3600 }), fc.integer({ min: 1, max: 10 }), (s, n) => {
        const strategy = createBackoffStrategy({
          backoff: { initialDelayMs: 10, maxDelayMs: 86_400_000 },
          random: seededRandom(s),
        });
        const delay = strategy(n, 'retrykit', httpError(429, { 'retry-after': String(s) }));
        expect(delay).toBeGreaterThanOrEqual(s * 1000);
        // The longer of the server's wait (plus at most 1 s of spread) and the backoff.
        expect(delay).toBeLessThanOrEqual(Math.max(s * 1000 + 1000, 10 * 2 ** (n - 1)));
      }),
    );
  });

  it('matches computeDelay under any options and jitter, and stays in bounds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.double({ min: 1, max: 5, noNaN: true }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.constantFrom('none', 'full', 'equal', 'decorrelated', 'proportional' as const),
        fc.integer(),
        (attemptsMade, initialDelayMs, multiplier, maxDelayMs, jitter, seed) => {
          const backoff = { initialDelayMs, multiplier, maxDelayMs, jitter };
          const strategy = createBackoffStrategy({ backoff, random: seededRandom(seed) });
          const delay = strategy(attemptsMade, 'retrykit', httpError(500));
          const previous =
            attemptsMade > 1
              ? computeDelay(attemptsMade - 2, { ...backoff, jitter: 'none' })
              : undefined;
          const expected = computeDelay(attemptsMade - 1, backoff, {
            previousDelayMs: previous,
            random: seededRandom(seed),
          });
          expect(delay).toBe(Math.round(expected));
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(Math.round(maxDelayMs));
        },
      ),
    );
  });

  it('uses per-reason overrides and validates its options', () => {
    const strategy = createBackoffStrategy({
      backoff: { initialDelayMs: 100, jitter: 'none' },
      backoffByReason: { service_unavailable: { multiplier: 3 } },
    });
    expect(strategy(3, 'retrykit', httpError(503))).toBe(900);
    expect(strategy(3, 'retrykit', httpError(500))).toBe(400);
    expect(() => createBackoffStrategy({ backoff: { multiplier: 0 } })).toThrow(
      'backoff.multiplier must be a finite number >= 1, got 0',
    );
    expect(() => createBackoffStrategy({ classify: 'x' as never })).toThrow(
      'classify must be a function, got "x"',
    );
  });
});

describe('createBackoffStrategy: the elapsed budget', () => {
  const FAR_FUTURE = 'Fri, 31 Dec 9999 23:59:59 GMT';
  const jobAddedAt = (timestamp: number) => ({ timestamp }) as MinimalJob;

  it('fails the job (-1) when the server asks to wait past the budget, a year-9999 Retry-After too', () => {
    const clock = createManualClock(Date.now());
    const events: RetrykitEvent[] = [];
    const strategy = createBackoffStrategy({ clock, onEvent: (e) => events.push(e) });
    const job = jobAddedAt(clock.now());
    expect(strategy(1, 'retrykit', httpError(429, { 'retry-after': FAR_FUTURE }), job)).toBe(-1);
    const budgeted = createBackoffStrategy({ clock, maxElapsedMs: 60_000 });
    expect(budgeted(1, 'retrykit', httpError(429, { 'retry-after': '61' }), job)).toBe(-1);
    expect(events).toEqual([]);
  });

  it('honours a Retry-After above maxDelayMs when it ends within the budget, as retry does', () => {
    const clock = createManualClock(Date.now());
    const strategy = createBackoffStrategy({
      clock,
      backoff: { initialDelayMs: 100, maxDelayMs: 1000, jitter: 'none' },
      random: () => 0,
    });
    const job = jobAddedAt(clock.now());
    expect(strategy(1, 'retrykit', httpError(429, { 'retry-after': '60' }), job)).toBe(60_000);
  });

  it('counts the budget from when the job was added, and never schedules past it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 200_000 }),
        fc.integer({ min: 0, max: 200_000 }),
        fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
        fc.constantFrom(...JITTER_KINDS),
        fc.integer(),
        (attemptsMade, maxElapsedMs, elapsedMs, retryAfterS, jitter, seed) => {
          const clock = createManualClock(1_700_000_000_000);
          const strategy = createBackoffStrategy({
            clock,
            maxElapsedMs,
            backoff: { initialDelayMs: 1000, maxDelayMs: 120_000, jitter },
            random: seededRandom(seed),
          });
          const headers: Record<string, string> =
            retryAfterS === undefined ? {} : { 'retry-after': String(retryAfterS) };
          const job = jobAddedAt(clock.now() - elapsedMs);
          const delay = strategy(attemptsMade, 'retrykit', httpError(503, headers), job);
          const left = maxElapsedMs - elapsedMs;
          if (delay === -1) {
            // Given up only when the server's wait, or the backoff's floor, is past the budget.
            expect(retryAfterS === undefined ? left < 120_000 : retryAfterS * 1000 > left).toBe(
              true,
            );
          } else {
            expect(Number.isInteger(delay)).toBe(true);
            expect(delay).toBeGreaterThanOrEqual(0);
            expect(delay).toBeLessThanOrEqual(left);
            if (retryAfterS !== undefined) expect(delay).toBeGreaterThanOrEqual(retryAfterS * 1000);
          }
        },
      ),
    );
  });

  it('validates maxElapsedMs', () => {
    expect(() => createBackoffStrategy({ maxElapsedMs: -1 })).toThrow(
      'maxElapsedMs must be a finite number >= 0, got -1',
    );
    expect(() => createBackoffStrategy({ maxElapsedMs: Number.NaN })).toThrow(
      'maxElapsedMs must be a number, got NaN',
    );
  });
});

describe('createBackoffStrategy: the delay of a hold', () => {
  const { maxHoldBackoffMs } = BACKOFF_STRATEGY_DEFAULTS;

  it('waits at least the circuit’s wait, at most 5 minutes of backoff past it, never past the budget', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 60 }),
        fc.option(fc.integer({ min: 1, max: 3_600_000 }), { nil: undefined }),
        fc.integer({ min: 0, max: 90_000_000 }),
        fc.integer({ min: 0, max: 200_000_000 }),
        fc.integer(),
        (holds, wait, elapsed, maxElapsedMs, seed) => {
          const clock = createManualClock(1_000_000_000);
          const strategy = createBackoffStrategy({
            clock,
            random: seededRandom(seed),
            maxElapsedMs,
          });
          const planner = deferralPlannerOf(strategy);
          if (planner === undefined) throw new Error('no planner');
          const job = { timestamp: clock.now() - elapsed } as MinimalJob;
          const c = {
            retryable: true,
            reason: 'auth',
            scope: 'account',
            ...(wait === undefined ? {} : { retryAfterMs: wait }),
          } as const;
          const decision = planner.hold(holds, c, job);
          const leftMs = maxElapsedMs - elapsed;
          if (typeof decision !== 'number') {
            if (decision === 'retry_after_exceeds_elapsed')
              expect(wait ?? 0).toBeGreaterThan(leftMs);
            else expect(decision).toBe('max_elapsed');
            return;
          }
          expect(Number.isInteger(decision)).toBe(true);
          expect(decision).toBeLessThanOrEqual(leftMs);
          expect(decision).toBeGreaterThanOrEqual(wait ?? 0);
          const spread = wait === undefined ? 0 : Math.min(wait * 0.1, 1000);
          expect(decision).toBeLessThanOrEqual(
            Math.max(maxHoldBackoffMs, (wait ?? 0) + spread) + 1,
          );
        },
      ),
    );
  });

  it('grows with each hold when the failure gave no wait, and holds do not count toward maxDeferrals', () => {
    const clock = createManualClock(0);
    const strategy = createBackoffStrategy({
      clock,
      maxDeferrals: 0,
      backoff: { initialDelayMs: 1000, multiplier: 2, jitter: 'none' },
    });
    const planner = deferralPlannerOf(strategy);
    const job = { timestamp: 0 } as MinimalJob;
    const c = { retryable: true, reason: 'auth', scope: 'account' } as const;
    expect([0, 1, 2, 8, 9, 30].map((n) => planner?.hold(n, c, job))).toEqual([
      1000,
      2000,
      4000,
      256_000,
      maxHoldBackoffMs,
      maxHoldBackoffMs,
    ]);
    expect(planner?.plan(0, { retryable: true, reason: 'rate_limited' }, job)).toBe(
      'max_deferrals',
    );
  });
});
