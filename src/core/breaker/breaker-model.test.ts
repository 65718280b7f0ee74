import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMemoryCircuitStore } from '../../memory/circuit-store.js';
import { createManualClock } from '../../testing/index.js';
import type { Classification } from '../classify-types.js';
import type { BreakerTransitionEvent, RetrykitEvent } from '../events.js';
import { type CircuitPermit, createCircuitBreaker } from './breaker.js';
import type { CircuitBreakerOptions } from './breaker-options.js';
import type { CircuitPolicy, CircuitState } from './breaker-types.js';

/**
 * The state machine written the plain way: every counted call kept in a list with its window
 * slot, probes as a list of admission times, generations as a counter. The breaker over the
 * memory store must agree with it on every admission, refusal wait, state and transition.
 */
class Model {
  state: CircuitState = 'closed';
  gen = 0;
  openUntil = 0;
  opens = 0;
  consecutive = 0;
  successes = 0;
  calls: { slot: number; failed: boolean }[] = [];
  probes: number[] = [];
  transitions: [CircuitState, CircuitState][] = [];

  constructor(readonly p: CircuitPolicy) {}

  #slot(now: number): number {
    return Math.floor(now / (this.p.windowMs / this.p.windowSlots));
  }

  #go(to: CircuitState, now: number): void {
    this.transitions.push([this.state, to]);
    this.state = to;
    this.gen++;
    this.calls = [];
    this.probes = [];
    this.consecutive = 0;
    this.successes = 0;
    if (to === 'open') {
      this.opens++;
      const ms = this.p.breakDurationMs * this.p.breakMultiplier ** (this.opens - 1);
      this.openUntil = now + Math.floor(Math.min(ms, this.p.maxBreakDurationMs));
    }
    if (to === 'closed') this.opens = 0;
  }

  admit(now: number): { ok: true; gen: number; probe: boolean } | { ok: false; wait: number } {
    if (this.state === 'open') {
      if (now < this.openUntil) return { ok: false, wait: this.openUntil - now };
      this.#go('half_open', now);
    }
    if (this.state === 'half_open') {
      this.probes = this.probes.filter((t) => now - t < this.p.probeTimeoutMs);
      if (this.probes.length === this.p.halfOpenMaxCalls) {
        const oldest = this.probes.reduce((a, b) => Math.min(a, b));
        return {
          ok: false,
          wait: Math.min(this.p.breakDurationMs, Math.max(0, oldest + this.p.probeTimeoutMs - now)),
        };
      }
      this.probes.push(now);
      return { ok: true, gen: this.gen, probe: true };
    }
    return { ok: true, gen: this.gen, probe: false };
  }

  record(gen: number, probe: boolean, outcome: 'success' | 'failure' | 'ignored', now: number) {
    if (gen !== this.gen) return;
    if (this.state === 'half_open') {
      if (!probe) return;
      this.probes.shift();
      if (outcome === 'failure') this.#go('open', now);
      if (outcome === 'success' && ++this.successes === this.p.halfOpenSuccesses) {
        this.#go('closed', now);
      }
      return;
    }
    if (this.state !== 'closed' || outcome === 'ignored') return;
    const slot = this.#slot(now);
    this.calls.push({ slot, failed: outcome === 'failure' });
    if (outcome === 'success') {
      this.consecutive = 0;
      return;
    }
    this.consecutive++;
    const inWindow = this.calls.filter((c) => c.slot > slot - this.p.windowSlots);
    const failures = inWindow.filter((c) => c.failed).length;
    if (
      this.consecutive >= this.p.consecutiveFailures ||
      (inWindow.length >= this.p.minimumCalls && failures / inWindow.length >= this.p.failureRatio)
    ) {
      this.#go('open', now);
    }
  }
}

const OUTCOME: Record<'success' | 'failure' | 'ignored', Classification | undefined> = {
  success: undefined,
  failure: { retryable: true, reason: 'server_error' },
  ignored: { retryable: true, reason: 'rate_limited' },
};

const options = fc.record({
  failureRatio: fc.constantFrom(0.25, 0.5, 0.75, 1),
  minimumCalls: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constant(Number.POSITIVE_INFINITY)),
  consecutiveFailures: fc.integer({ min: 1, max: 6 }),
  windowMs: fc.integer({ min: 10, max: 1_000 }),
  windowSlots: fc.integer({ min: 1, max: 6 }),
  breakDurationMs: fc.integer({ min: 1, max: 300 }),
  breakMultiplier: fc.constantFrom(1, 1.5, 2, 3),
  maxFactor: fc.integer({ min: 1, max: 8 }),
  halfOpenMaxCalls: fc.integer({ min: 1, max: 3 }),
  halfOpenSuccesses: fc.integer({ min: 1, max: 3 }),
  probeTimeoutMs: fc.integer({ min: 1, max: 2_000 }),
});

const step = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(400) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('start' as const) }), weight: 3 },
  {
    arbitrary: fc.record({
      kind: fc.constant('finish' as const),
      pick: fc.nat(),
      outcome: fc.constantFrom('success' as const, 'failure' as const, 'ignored' as const),
    }),
    weight: 4,
  },
);

describe('circuit breaker against a model', () => {
  it('admits, refuses, opens, half-opens and closes exactly as the model does', async () => {
    await fc.assert(
      fc.asyncProperty(
        options,
        fc.array(step, { maxLength: 120 }),
        async ({ maxFactor, ...o }, steps) => {
          const clock = createManualClock(1_000_000);
          const events: RetrykitEvent[] = [];
          const settings: CircuitBreakerOptions = {
            ...o,
            maxBreakDurationMs: o.breakDurationMs * maxFactor,
            store: createMemoryCircuitStore(),
            clock,
            onEvent: (e) => events.push(e),
          };
          const breaker = createCircuitBreaker(settings);
          const model = new Model(breaker.policy);
          const inFlight: { permit: CircuitPermit; gen: number; probe: boolean }[] = [];
          for (const s of steps) {
            const now = clock.now();
            if (s.kind === 'advance') {
              await clock.advance(s.ms);
            } else if (s.kind === 'start') {
              const expected = model.admit(now);
              const got = await breaker.tryAcquire('k');
              expect(got.ok).toBe(expected.ok);
              if (got.ok && expected.ok) {
                expect(got.permit.probe).toBe(expected.probe);
                inFlight.push({ permit: got.permit, gen: expected.gen, probe: expected.probe });
              } else if (!got.ok && !expected.ok) {
                expect(got.retryAfterMs).toBe(expected.wait);
                expect(got.openUntil).toBe(now + expected.wait);
              }
            } else if (inFlight.length > 0) {
              const [call] = inFlight.splice(s.pick % inFlight.length, 1);
              if (call === undefined) continue;
              model.record(call.gen, call.probe, s.outcome, now);
              const c = OUTCOME[s.outcome];
              if (c === undefined) await call.permit.success();
              else await call.permit.failure(new Error(s.outcome), c);
            }
            expect((await breaker.status('k')).state).toBe(model.state);
            const transitions = events
              .filter((e): e is BreakerTransitionEvent => e.type === 'breaker_transition')
              .map((e) => [e.from, e.to]);
            expect(transitions).toEqual(model.transitions);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never lets a call through during a break, and each break lies within its bounds', async () => {
    await fc.assert(
      fc.asyncProperty(
        options,
        fc.array(step, { maxLength: 80 }),
        async ({ maxFactor, ...o }, steps) => {
          const clock = createManualClock(0);
          const opened: BreakerTransitionEvent[] = [];
          const breaker = createCircuitBreaker({
            ...o,
            maxBreakDurationMs: o.breakDurationMs * maxFactor,
            store: createMemoryCircuitStore(),
            clock,
            onEvent: (e) => {
              if (e.type === 'breaker_transition' && e.to === 'open') opened.push(e);
            },
          });
          const permits: CircuitPermit[] = [];
          for (const s of steps) {
            if (s.kind === 'advance') await clock.advance(s.ms);
            else if (s.kind === 'start') {
              const last = opened.at(-1);
              const got = await breaker.tryAcquire('k');
              if (last?.openUntil !== undefined && clock.now() < last.openUntil) {
                expect(got.ok).toBe(false);
              }
              if (got.ok) permits.push(got.permit);
            } else if (permits.length > 0) {
              const [permit] = permits.splice(s.pick % permits.length, 1);
              if (permit === undefined) continue;
              const c = OUTCOME[s.outcome];
              if (c === undefined) await permit.success();
              else await permit.failure(new Error(s.outcome), c);
            }
          }
          for (const e of opened) {
            const ms = (e.openUntil ?? Number.NaN) - e.time;
            expect(ms).toBeGreaterThanOrEqual(o.breakDurationMs);
            expect(ms).toBeLessThanOrEqual(o.breakDurationMs * maxFactor);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
