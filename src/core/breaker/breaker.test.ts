import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMemoryCircuitStore } from '../../memory/circuit-store.js';
import { createManualClock, type ManualClock } from '../../testing/index.js';
import type { Classification } from '../classify-types.js';
import { HeldError, PermanentError, RetryError, shouldHold } from '../errors.js';
import type { RetrykitEvent } from '../events.js';
import { createMetrics } from '../metrics/metrics.js';
import { createRetry, retry } from '../retry/retry.js';
import { createCircuitBreaker } from './breaker.js';
import { CircuitOpenError } from './breaker-errors.js';
import { type CircuitBreakerOptions, isCircuitFailure } from './breaker-options.js';

const http = (status: number) => Object.assign(new Error(`HTTP ${status}`), { status });
const SERVER: Classification = { retryable: true, reason: 'server_error' };

function setup(
  options: Partial<CircuitBreakerOptions> = {},
  clock: ManualClock = createManualClock(1_000),
) {
  const events: RetrykitEvent[] = [];
  const breaker = createCircuitBreaker({
    store: createMemoryCircuitStore(),
    clock,
    onEvent: (e) => events.push(e),
    ...options,
  });
  const transitions = () =>
    events.flatMap((e) => (e.type === 'breaker_transition' ? [`${e.key}:${e.from}>${e.to}`] : []));
  return { breaker, clock, events, transitions };
}

async function fail(
  breaker: ReturnType<typeof setup>['breaker'],
  key: string,
  error: unknown = http(503),
) {
  await expect(breaker.execute(key, () => Promise.reject(error))).rejects.toBe(error);
}

describe('createCircuitBreaker', () => {
  it('opens after consecutiveFailures and refuses fast with a CircuitOpenError', async () => {
    const { breaker, clock, transitions } = setup({
      consecutiveFailures: 3,
      breakDurationMs: 5_000,
    });
    for (let i = 0; i < 3; i++) await fail(breaker, 'n1');
    let called = false;
    const refused = await breaker
      .execute('n1', () => {
        called = true;
      })
      .catch((e: unknown) => e);
    expect(called).toBe(false);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(refused).toMatchObject({
      code: 'CIRCUIT_OPEN',
      key: 'n1',
      state: 'open',
      retryAfterMs: 5_000,
      openUntil: clock.now() + 5_000,
    });
    expect(shouldHold(refused)).toBe(true);
    expect(transitions()).toEqual(['n1:closed>open']);
    await expect(breaker.execute('n2', () => 'other key')).resolves.toBe('other key');
  });

  it('a success resets the consecutive count', async () => {
    const { breaker } = setup({ consecutiveFailures: 2, minimumCalls: Number.POSITIVE_INFINITY });
    await fail(breaker, 'k');
    await breaker.execute('k', () => 1);
    await fail(breaker, 'k');
    expect((await breaker.status('k')).state).toBe('closed');
    await fail(breaker, 'k');
    expect((await breaker.status('k')).state).toBe('open');
  });

  it('opens on the failure ratio only once the window holds minimumCalls', async () => {
    const { breaker } = setup({
      consecutiveFailures: Number.POSITIVE_INFINITY,
      minimumCalls: 4,
      failureRatio: 0.5,
    });
    await breaker.execute('k', () => 1);
    await fail(breaker, 'k');
    await fail(breaker, 'k');
    expect((await breaker.status('k')).state).toBe('closed');
    await breaker.execute('k', () => 1);
    expect((await breaker.status('k')).state).toBe('closed');
    await fail(breaker, 'k');
    expect((await breaker.status('k')).state).toBe('open');
  });

  it('forgets calls that slid out of the window', async () => {
    const { breaker, clock } = setup({
      consecutiveFailures: Number.POSITIVE_INFINITY,
      minimumCalls: 3,
      failureRatio: 1,
      windowMs: 1_000,
      windowSlots: 10,
    });
    await fail(breaker, 'k');
    await fail(breaker, 'k');
    await clock.advance(1_000);
    await fail(breaker, 'k');
    expect((await breaker.status('k')).state).toBe('closed');
    await fail(breaker, 'k');
    await fail(breaker, 'k');
    expect((await breaker.status('k')).state).toBe('open');
  });

  it('does not count throttles, a message’s own failures or aborts; counts 5xx, timeouts, network, auth and account-wide failures', async () => {
    const counted = (c: Classification) => isCircuitFailure(c);
    for (const reason of [
      'rate_limited',
      'client_error',
      'policy',
      'schema_mismatch',
      'aborted',
      'unknown',
    ] as const) {
      expect(counted({ retryable: false, reason })).toBe(false);
    }
    for (const reason of [
      'server_error',
      'service_unavailable',
      'timeout',
      'network',
      'auth',
    ] as const) {
      expect(counted({ retryable: true, reason })).toBe(true);
    }
    expect(counted({ retryable: false, reason: 'policy', scope: 'account' })).toBe(true);

    const { breaker } = setup({ consecutiveFailures: 1 });
    await fail(breaker, 'k', http(429));
    await fail(breaker, 'k', http(400));
    await fail(breaker, 'k', http(422));
    expect((await breaker.status('k')).state).toBe('closed');
    await fail(breaker, 'k', http(401));
    expect((await breaker.status('k')).state).toBe('open');
  });

  it('half-opens after the break, admits halfOpenMaxCalls probes and closes after halfOpenSuccesses', async () => {
    const { breaker, clock, transitions } = setup({
      consecutiveFailures: 1,
      breakDurationMs: 1_000,
      halfOpenMaxCalls: 2,
      halfOpenSuccesses: 2,
    });
    await fail(breaker, 'k');
    await clock.advance(999);
    expect((await breaker.tryAcquire('k')).ok).toBe(false);
    await clock.advance(1);
    const a = await breaker.tryAcquire('k');
    const b = await breaker.tryAcquire('k');
    const c = await breaker.tryAcquire('k');
    expect([a.ok, b.ok, c.ok]).toEqual([true, true, false]);
    if (!a.ok || !b.ok || c.ok) return;
    expect(a.permit.probe).toBe(true);
    expect(c.state).toBe('half_open');
    expect(await a.permit.success()).toMatchObject({ state: 'half_open' });
    const third = await breaker.tryAcquire('k');
    expect(third.ok).toBe(true);
    expect(await b.permit.success()).toMatchObject({ state: 'closed' });
    expect(transitions()).toEqual(['k:closed>open', 'k:open>half_open', 'k:half_open>closed']);
    // The third probe reports after the circuit closed: its result belongs to a past generation.
    if (third.ok) await third.permit.failure(http(503), SERVER);
    expect((await breaker.status('k')).state).toBe('closed');
  });

  it('a failed probe opens it again for a longer break, up to maxBreakDurationMs; closing starts over', async () => {
    const { breaker, clock, events } = setup({
      consecutiveFailures: 1,
      breakDurationMs: 1_000,
      breakMultiplier: 3,
      maxBreakDurationMs: 5_000,
    });
    const breaks: number[] = [];
    events.length = 0;
    await fail(breaker, 'k');
    for (let i = 0; i < 3; i++) {
      const last = [...events]
        .reverse()
        .find((e) => e.type === 'breaker_transition' && e.to === 'open');
      if (last?.type !== 'breaker_transition' || last.openUntil === undefined)
        throw new Error('not open');
      breaks.push(last.openUntil - last.time);
      await clock.advance(last.openUntil - clock.now());
      await fail(breaker, 'k');
    }
    expect(breaks).toEqual([1_000, 3_000, 5_000]);
    await clock.advance(5_000);
    await breaker.execute('k', () => 1);
    await fail(breaker, 'k');
    const last = [...events]
      .reverse()
      .find((e) => e.type === 'breaker_transition' && e.to === 'open');
    expect(last?.type === 'breaker_transition' && (last.openUntil ?? 0) - last.time).toBe(1_000);
  });

  it('a probe that never reports frees its place after probeTimeoutMs', async () => {
    const { breaker, clock } = setup({
      consecutiveFailures: 1,
      breakDurationMs: 100,
      probeTimeoutMs: 500,
    });
    await fail(breaker, 'k');
    await clock.advance(100);
    expect((await breaker.tryAcquire('k')).ok).toBe(true);
    const refused = await breaker.tryAcquire('k');
    // Refused with the break's length: the probe in flight usually reports well before its lease ends.
    expect(refused).toMatchObject({ ok: false, state: 'half_open', retryAfterMs: 100 });
    await clock.advance(500);
    expect((await breaker.tryAcquire('k')).ok).toBe(true);
  });

  it('drops a result from before the circuit last changed state', async () => {
    const { breaker, clock } = setup({ consecutiveFailures: 2, breakDurationMs: 100 });
    const stale = await breaker.tryAcquire('k');
    await fail(breaker, 'k');
    await fail(breaker, 'k');
    await clock.advance(100);
    await breaker.execute('k', () => 1);
    expect((await breaker.status('k')).state).toBe('closed');
    await fail(breaker, 'k');
    if (stale.ok) await stale.permit.failure(http(503), SERVER);
    expect((await breaker.status('k')).state).toBe('closed');
  });

  it('reset closes the circuit', async () => {
    const { breaker } = setup({ consecutiveFailures: 1 });
    await fail(breaker, 'k');
    await breaker.reset('k');
    await expect(breaker.execute('k', () => 'ok')).resolves.toBe('ok');
  });

  it('rejects with the signal’s reason without asking the store when already aborted', async () => {
    const { breaker } = setup({ consecutiveFailures: 1 });
    const reason = new Error('stop');
    await expect(breaker.execute('k', () => 1, { signal: AbortSignal.abort(reason) })).rejects.toBe(
      reason,
    );
  });

  it('validates its options, naming the option and the value', () => {
    const store = createMemoryCircuitStore();
    const bad: [Partial<CircuitBreakerOptions>, RegExp][] = [
      [{ failureRatio: 0 }, /failureRatio must be above 0, got 0/],
      [{ failureRatio: 1.5 }, /failureRatio must be a finite number between 0 and 1, got 1.5/],
      [{ minimumCalls: 0 }, /minimumCalls .* got 0/],
      [{ consecutiveFailures: 2.5 }, /consecutiveFailures must be an integer, got 2.5/],
      [{ windowMs: -1 }, /windowMs .* got -1/],
      [{ windowSlots: 101 }, /windowSlots .* got 101/],
      [{ breakDurationMs: Number.NaN }, /breakDurationMs must be a number, got NaN/],
      [{ breakDurationMs: 10_000, maxBreakDurationMs: 5_000 }, /maxBreakDurationMs .* got 5000/],
      [{ breakMultiplier: 0.5 }, /breakMultiplier .* got 0.5/],
      [{ halfOpenMaxCalls: 0 }, /halfOpenMaxCalls .* got 0/],
      [
        { halfOpenSuccesses: '1' as unknown as number },
        /halfOpenSuccesses must be a number, got "1"/,
      ],
      [{ probeTimeoutMs: 0 }, /probeTimeoutMs .* got 0/],
      [{ isFailure: 'yes' as never }, /isFailure must be a function, got "yes"/],
      [
        { minimumCalls: Number.POSITIVE_INFINITY, consecutiveFailures: Number.POSITIVE_INFINITY },
        /could never open/,
      ],
    ];
    for (const [options, message] of bad) {
      expect(() => createCircuitBreaker({ store, ...options })).toThrow(message);
    }
    expect(() => createCircuitBreaker({} as CircuitBreakerOptions)).toThrow(TypeError);
    expect(() => createMemoryCircuitStore({ maxKeys: 0 })).toThrow(/maxKeys .* got 0/);
  });
});

describe('memory circuit store', () => {
  it('holds at most maxKeys circuits, dropping idle closed ones first', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.tuple(fc.nat(60), fc.boolean()), { maxLength: 200 }),
        async (maxKeys, calls) => {
          const store = createMemoryCircuitStore({ maxKeys });
          const breaker = createCircuitBreaker({
            store,
            consecutiveFailures: 1,
            clock: createManualClock(),
          });
          for (const [key, ok] of calls) {
            await breaker
              .execute(`k${key}`, () => (ok ? 1 : Promise.reject(http(503))))
              .catch(() => 0);
            expect(store.size).toBeLessThanOrEqual(maxKeys);
          }
        },
      ),
    );
  });

  it('keeps an open circuit when an idle one can be dropped instead', async () => {
    const store = createMemoryCircuitStore({ maxKeys: 2 });
    const breaker = createCircuitBreaker({
      store,
      consecutiveFailures: 1,
      clock: createManualClock(),
    });
    await breaker.execute('open', () => Promise.reject(http(503))).catch(() => 0);
    await breaker.tryAcquire('idle');
    await breaker.tryAcquire('new');
    expect((await breaker.status('open')).state).toBe('open');
  });
});

describe('retry with a breaker', () => {
  it('stops at once when a failure opens the circuit, with stopReason circuit_open', async () => {
    const clock = createManualClock(0);
    const events: RetrykitEvent[] = [];
    const { breaker } = setup({ consecutiveFailures: 2, breakDurationMs: 60_000 }, clock);
    const send = createRetry({ breaker, clock, maxAttempts: 5, onEvent: (e) => events.push(e) });
    let calls = 0;
    const p = send(
      () => {
        calls++;
        throw http(503);
      },
      { breakerKey: 'n1' },
    ).catch((e: unknown) => e);
    await clock.runAll();
    const error = await p;
    expect(calls).toBe(2);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toMatchObject({
      key: 'n1',
      retryAfterMs: 60_000,
      openUntil: clock.now() + 60_000,
    });
    expect((error as CircuitOpenError).cause).toMatchObject({ status: 503 });
    expect(events.find((e) => e.type === 'give_up')).toMatchObject({
      stopReason: 'circuit_open',
      attempts: 2,
    });
    expect(clock.sleeps.length).toBe(1);

    const refused = await send(() => 'never', { breakerKey: 'n1' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    await expect(send(() => 'ok', { breakerKey: 'n2' })).resolves.toBe('ok');
  });

  it('a throttle neither counts nor stops retrying; a success closes a half-open circuit', async () => {
    const clock = createManualClock(0);
    const { breaker, transitions } = setup({ consecutiveFailures: 1, breakDurationMs: 10 }, clock);
    const errors = [http(429), http(429)];
    const p = retry(
      () => {
        const e = errors.shift();
        if (e !== undefined) throw e;
        return 'sent';
      },
      { breaker, breakerKey: 'k', clock },
    );
    await clock.runAll();
    await expect(p).resolves.toBe('sent');
    expect(transitions()).toEqual([]);
    await fail(breaker, 'k');
    await clock.advance(10);
    await expect(retry(() => 'probe', { breaker, breakerKey: 'k', clock })).resolves.toBe('probe');
    expect(transitions()).toEqual(['k:closed>open', 'k:open>half_open', 'k:half_open>closed']);
  });

  it('an attempt that timed out and settles later does not lose the next attempt’s outcome', async () => {
    const clock = createManualClock(0);
    const { breaker } = setup({ consecutiveFailures: 2, breakDurationMs: 60_000 }, clock);
    let releaseFirst: (value: string) => void = () => {};
    let calls = 0;
    const p = retry(
      () => {
        calls++;
        if (calls === 1) return new Promise<string>((resolve) => (releaseFirst = resolve));
        releaseFirst('late');
        return Promise.reject(http(503));
      },
      { breaker, breakerKey: 'k', clock, attemptTimeoutMs: 100, backoff: { jitter: 'none' } },
    ).catch((e: unknown) => e);
    await clock.runAll();
    expect(await p).toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(2);
  });

  it('a CircuitOpenError thrown by breaker.execute inside retry stops it too', async () => {
    const { breaker, clock } = setup({ consecutiveFailures: 1 });
    await fail(breaker, 'k');
    const error = await retry(() => breaker.execute('k', () => 1), { clock }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(clock.sleeps).toEqual([]);
  });

  it('holds an account-wide failure with a HeldError instead of a PermanentError, breaker or not', async () => {
    const classify = (): Classification => ({
      retryable: false,
      reason: 'auth',
      scope: 'account',
      errorCode: 190,
    });
    const events: RetrykitEvent[] = [];
    const error = await retry(
      () => {
        throw http(401);
      },
      { classify, onEvent: (e) => events.push(e) },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HeldError);
    expect(error).not.toBeInstanceOf(PermanentError);
    expect(error).not.toBeInstanceOf(RetryError);
    expect(error).toMatchObject({ code: 'HELD', attempts: 1, classification: { errorCode: 190 } });
    expect(shouldHold(error)).toBe(true);
    expect(events.find((e) => e.type === 'give_up')).toMatchObject({ stopReason: 'held' });
    const permanentOne = await retry(() => {
      throw http(400);
    }).catch((e: unknown) => e);
    expect(shouldHold(permanentOne)).toBe(false);
  });

  it('rejects a breaker that is not one, and an empty breakerKey', () => {
    expect(() => createRetry({ breaker: {} as never })).toThrow(/breaker must be a CircuitBreaker/);
    expect(() => createRetry({ breakerKey: '' })).toThrow(/breakerKey must not be empty/);
  });
});

describe('metrics of breaker transitions', () => {
  it('counts openings and closings and is unhealthy while a circuit is not closed', async () => {
    const clock = createManualClock(0);
    const metrics = createMetrics({ clock });
    const alerts: string[] = [];
    const withAlerts = createMetrics({
      clock,
      onAlert: (b) => alerts.push(b.check),
      windowMs: 1_000,
      slots: 1,
    });
    const { breaker } = setup(
      {
        consecutiveFailures: 1,
        breakDurationMs: 100,
        onEvent: (e) => {
          metrics.onEvent(e);
          withAlerts.onEvent(e);
        },
      },
      clock,
    );
    await fail(breaker, 'n1');
    expect(metrics.checkHealth().breaches).toEqual([
      { check: 'openCircuits', value: 1, threshold: 0, keys: ['n1'] },
    ]);
    expect(metrics.checkHealth({ openCircuits: 1 }).healthy).toBe(true);
    expect(metrics.snapshot().breakers).toEqual({
      opened: 1,
      closed: 0,
      notClosed: { n1: { state: 'open', since: 0 } },
    });
    await clock.advance(1_000);
    withAlerts.checkHealth();
    expect(alerts).toEqual(['openCircuits']);
    await breaker.execute('n1', () => 1);
    expect(metrics.checkHealth().healthy).toBe(true);
    expect(metrics.snapshot().breakers).toMatchObject({ opened: 1, closed: 1, notClosed: {} });
  });
});
