import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CircuitBreakerOptions,
  type CircuitBreakerStore,
  type CircuitPermit,
  createCircuitBreaker,
  createMemoryCircuitStore,
  type RetrykitEvent,
} from '../../src/index.js';
import { createManualClock, type ManualClock } from '../../src/testing/index.js';

/**
 * Makes two stores on one shared state, standing for two processes (for Redis: two client
 * connections on one prefix; for memory: the same store), both driven by `clock`.
 */
export type MakeCircuitStores = (
  clock: ManualClock,
) => readonly [CircuitBreakerStore, CircuitBreakerStore];

const unavailable = () => Object.assign(new Error('HTTP 503'), { status: 503 });
const SERVER = { retryable: true, reason: 'server_error' } as const;
const THROTTLE = { retryable: true, reason: 'rate_limited' } as const;

/** Runs the cases every `CircuitBreakerStore` must pass. */
export function circuitStoreContract(name: string, make: MakeCircuitStores): void {
  describe(`CircuitBreakerStore contract: ${name}`, () => {
    const setup = (options: Partial<CircuitBreakerOptions> = {}) => {
      const clock = createManualClock(1_700_000_000_000);
      const [storeA, storeB] = make(clock);
      const events: { process: string; event: RetrykitEvent }[] = [];
      const breaker = (store: CircuitBreakerStore, process: string) =>
        createCircuitBreaker({
          store,
          clock,
          onEvent: (event) => events.push({ process, event }),
          ...options,
        });
      const transitions = () =>
        events.flatMap(({ process, event: e }) =>
          e.type === 'breaker_transition' ? [`${process} ${e.key} ${e.from}>${e.to}`] : [],
        );
      return { clock, a: breaker(storeA, 'A'), b: breaker(storeB, 'B'), transitions };
    };
    const fail = (breaker: ReturnType<typeof setup>['a'], key: string) =>
      breaker.execute(key, () => Promise.reject(unavailable())).catch(() => undefined);

    it('opens on consecutive failures, refuses with the rest of the break, then probes and closes', async () => {
      const { a, clock, transitions } = setup({ consecutiveFailures: 3, breakDurationMs: 2_000 });
      for (let i = 0; i < 3; i++) await fail(a, 'n');
      expect(await a.tryAcquire('n')).toEqual({
        ok: false,
        state: 'open',
        retryAfterMs: 2_000,
        openUntil: clock.now() + 2_000,
      });
      await clock.advance(1_500);
      expect(await a.tryAcquire('n')).toMatchObject({ ok: false, retryAfterMs: 500 });
      await clock.advance(500);
      await expect(a.execute('n', () => 'probe')).resolves.toBe('probe');
      expect(transitions()).toEqual([
        'A n closed>open',
        'A n open>half_open',
        'A n half_open>closed',
      ]);
      expect((await a.status('n')).state).toBe('closed');
    });

    it('opens on the failure ratio once minimumCalls are in the window, and forgets what slid out', async () => {
      const { a, clock } = setup({
        consecutiveFailures: Number.POSITIVE_INFINITY,
        minimumCalls: 4,
        failureRatio: 0.75,
        windowMs: 1_000,
        windowSlots: 4,
      });
      await fail(a, 'n');
      await fail(a, 'n');
      await a.execute('n', () => 1);
      await clock.advance(1_000);
      await fail(a, 'n');
      await fail(a, 'n');
      await a.execute('n', () => 1);
      expect((await a.status('n')).state).toBe('closed');
      await fail(a, 'n');
      await fail(a, 'n');
      expect((await a.status('n')).state).toBe('open');
    });

    it('does not count ignored outcomes', async () => {
      const { a } = setup({ consecutiveFailures: 2 });
      for (let i = 0; i < 5; i++) {
        const p = await a.tryAcquire('n');
        if (p.ok) await p.permit.failure(new Error('429'), THROTTLE);
      }
      expect((await a.status('n')).state).toBe('closed');
    });

    it('opens for every process at once; only the process that changed it reports the change', async () => {
      const { a, b, clock, transitions } = setup({
        consecutiveFailures: 2,
        breakDurationMs: 1_000,
      });
      await fail(a, 'n');
      await fail(b, 'n');
      const refusedA = await a.tryAcquire('n');
      expect(refusedA).toMatchObject({ ok: false, state: 'open', retryAfterMs: 1_000 });
      expect(await b.tryAcquire('n')).toEqual(refusedA);
      expect(transitions()).toEqual(['B n closed>open']);
      await clock.advance(1_000);
      expect((await b.status('n')).state).toBe('open');
      await expect(a.execute('n', () => 'probe')).resolves.toBe('probe');
      expect((await b.status('n')).state).toBe('closed');
      await expect(b.execute('n', () => 'sent')).resolves.toBe('sent');
    });

    it('counts half-open probe places across processes; a failed probe reopens for a longer break', async () => {
      const { a, b, clock } = setup({
        consecutiveFailures: 1,
        breakDurationMs: 1_000,
        breakMultiplier: 2,
        halfOpenMaxCalls: 2,
        halfOpenSuccesses: 2,
      });
      await fail(a, 'n');
      await clock.advance(1_000);
      const p1 = await a.tryAcquire('n');
      const p2 = await b.tryAcquire('n');
      expect([p1.ok, p2.ok]).toEqual([true, true]);
      expect(await a.tryAcquire('n')).toMatchObject({ ok: false, state: 'half_open' });
      if (!p1.ok || !p2.ok) return;
      expect(p1.permit.probe && p2.permit.probe).toBe(true);
      await p1.permit.success();
      expect((await a.status('n')).state).toBe('half_open');
      await p2.permit.failure(unavailable(), SERVER);
      expect(await b.tryAcquire('n')).toMatchObject({
        ok: false,
        state: 'open',
        retryAfterMs: 2_000,
      });
    });

    it('frees the place of a probe that never reports after probeTimeoutMs', async () => {
      const { a, b, clock } = setup({
        consecutiveFailures: 1,
        breakDurationMs: 1_000,
        probeTimeoutMs: 400,
      });
      await fail(a, 'n');
      await clock.advance(1_000);
      expect((await a.tryAcquire('n')).ok).toBe(true);
      expect(await b.tryAcquire('n')).toMatchObject({ ok: false, retryAfterMs: 400 });
      await clock.advance(400);
      expect((await b.tryAcquire('n')).ok).toBe(true);
    });

    it('drops the outcome of a call admitted before the circuit changed state', async () => {
      const { a, b, clock } = setup({ consecutiveFailures: 2, breakDurationMs: 100 });
      const stale = await a.tryAcquire('n');
      await fail(b, 'n');
      await fail(b, 'n');
      await clock.advance(100);
      await b.execute('n', () => 1);
      await fail(b, 'n');
      if (stale.ok) await stale.permit.failure(unavailable(), SERVER);
      expect((await a.status('n')).state).toBe('closed');
    });

    it('keeps keys apart, and reset closes one', async () => {
      const { a, b } = setup({ consecutiveFailures: 1 });
      await fail(a, 'x');
      expect((await b.status('x')).state).toBe('open');
      expect((await b.status('y')).state).toBe('closed');
      await b.reset('x');
      await expect(a.execute('x', () => 'ok')).resolves.toBe('ok');
    });

    it('agrees with the memory store on random call sequences', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            failureRatio: fc.constantFrom(0.25, 0.5, 1),
            minimumCalls: fc.integer({ min: 1, max: 5 }),
            consecutiveFailures: fc.integer({ min: 1, max: 5 }),
            windowMs: fc.integer({ min: 10, max: 500 }),
            windowSlots: fc.integer({ min: 1, max: 5 }),
            breakDurationMs: fc.integer({ min: 1, max: 200 }),
            breakMultiplier: fc.constantFrom(1, 1.5, 2),
            halfOpenMaxCalls: fc.integer({ min: 1, max: 3 }),
            halfOpenSuccesses: fc.integer({ min: 1, max: 2 }),
            probeTimeoutMs: fc.integer({ min: 1, max: 500 }),
          }),
          fc.array(
            fc.oneof(
              fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(300) }),
              fc.record({ kind: fc.constant('start' as const), store: fc.boolean() }),
              fc.record({
                kind: fc.constant('finish' as const),
                pick: fc.nat(),
                outcome: fc.constantFrom('success', 'failure', 'ignored'),
              }),
            ),
            { maxLength: 40 },
          ),
          async (policy, steps) => {
            const clock = createManualClock(1_700_000_000_000);
            const [storeA, storeB] = make(clock);
            const key = `k${Math.random().toString(36).slice(2)}`;
            const options = { ...policy, maxBreakDurationMs: policy.breakDurationMs * 4, clock };
            const a = createCircuitBreaker({ ...options, store: storeA });
            const b = createCircuitBreaker({ ...options, store: storeB });
            const reference = createCircuitBreaker({
              ...options,
              store: createMemoryCircuitStore(),
            });
            const inFlight: [CircuitPermit, CircuitPermit][] = [];
            for (const s of steps) {
              if (s.kind === 'advance') await clock.advance(s.ms);
              else if (s.kind === 'start') {
                const got = await (s.store ? a : b).tryAcquire(key);
                const expected = await reference.tryAcquire(key);
                expect(got.ok).toBe(expected.ok);
                if (got.ok && expected.ok) inFlight.push([got.permit, expected.permit]);
                else expect(got).toEqual(expected);
              } else if (inFlight.length > 0) {
                const [pair] = inFlight.splice(s.pick % inFlight.length, 1);
                if (pair === undefined) continue;
                for (const permit of pair) {
                  if (s.outcome === 'success') await permit.success();
                  else
                    await permit.failure(
                      unavailable(),
                      s.outcome === 'failure' ? SERVER : THROTTLE,
                    );
                }
              }
              const [got, expected] = [await a.status(key), await reference.status(key)];
              expect(got.state).toBe(expected.state);
              expect(got.openUntil).toBe(expected.openUntil);
            }
          },
        ),
        { numRuns: 40 },
      );
    });
  });
}
