import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createManualClock, type ManualClock, seededRandom } from '../../testing/index.js';
import type { Classification } from '../classify-types.js';
import { isRetrykitError, PermanentError, permanent, RetryError } from '../errors.js';
import type { RetrykitEvent } from '../events.js';
import { createRetryBudget } from './budget.js';
import { createRetry, retry } from './retry.js';

const http = (status: number, headers: Record<string, string> = {}) =>
  Object.assign(new Error(`HTTP ${status}`), { status, headers });

/** A function failing with `errors` in turn, then returning `value`; records call times. */
function flaky<T>(clock: ManualClock, errors: unknown[], value: T) {
  const calls: number[] = [];
  const fn = vi.fn(async () => {
    calls.push(clock.now());
    if (calls.length <= errors.length) throw errors[calls.length - 1];
    return value;
  });
  return { fn, calls };
}

let unhandled: unknown[];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(async () => {
  await new Promise((r) => setTimeout(r, 0));
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

describe('retry', () => {
  it('returns at once when the first attempt succeeds', async () => {
    const clock = createManualClock();
    const { fn } = flaky(clock, [], 'ok');
    await expect(retry(fn, { clock })).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('retries transient failures with the exact backoff delays', async () => {
    const clock = createManualClock(1_000);
    const { fn, calls } = flaky(clock, [http(503), http(500), http(429)], 'ok');
    const result = retry(fn, { clock, backoff: { jitter: 'none', initialDelayMs: 100 } });
    await clock.runAll();
    await expect(result).resolves.toBe('ok');
    expect(clock.sleeps).toEqual([100, 200, 400]);
    expect(calls).toEqual([1_000, 1_100, 1_300, 1_700]);
  });

  it('passes attempt, elapsed time and the previous error to the function', async () => {
    const clock = createManualClock();
    const seen: unknown[] = [];
    const first = http(503);
    const result = retry(
      (ctx) => {
        seen.push({
          attempt: ctx.attempt,
          elapsedMs: ctx.elapsedMs,
          previousError: ctx.previousError,
        });
        if (ctx.attempt === 0) throw first;
        return 'ok';
      },
      { clock, backoff: { jitter: 'none', initialDelayMs: 50 } },
    );
    await clock.runAll();
    await result;
    expect(seen).toEqual([
      { attempt: 0, elapsedMs: 0, previousError: undefined },
      { attempt: 1, elapsedMs: 50, previousError: first },
    ]);
  });

  it('makes exactly maxAttempts calls, then rejects with RetryError and the history', async () => {
    const clock = createManualClock();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 8 }), async (maxAttempts) => {
        const fn = vi.fn(async () => {
          throw http(503);
        });
        const result = retry(fn, { clock, maxAttempts, backoff: { initialDelayMs: 10 } }).catch(
          (e: unknown) => e,
        );
        await clock.runAll();
        const error = (await result) as RetryError;
        expect(fn).toHaveBeenCalledTimes(maxAttempts);
        expect(error).toBeInstanceOf(RetryError);
        expect(error.attempts).toBe(maxAttempts);
        expect(error.stopReason).toBe('max_attempts');
        expect(error.errors.map((e) => e.reason)).toEqual(
          Array(maxAttempts).fill('service_unavailable'),
        );
        expect(error.cause).toBe(error.errors.at(-1)?.error);
        expect(isRetrykitError(error)).toBe(true);
      }),
      { numRuns: 20 },
    );
  });

  it('stops at once on a permanent error and wraps it', async () => {
    const clock = createManualClock();
    const original = http(400);
    const fn = vi.fn(async () => {
      throw original;
    });
    const error = await retry(fn, { clock }).catch((e: unknown) => e);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).cause).toBe(original);
    expect((error as PermanentError).classification).toEqual({
      retryable: false,
      reason: 'client_error',
    });
    expect(clock.sleeps).toEqual([]);
  });

  it('keeps the transient failures before a permanent one on the PermanentError', async () => {
    const clock = createManualClock();
    const statuses = [503, 502, 400];
    let call = 0;
    const result = retry(
      async () => {
        throw http(statuses[call++] as number);
      },
      { clock, maxAttempts: 10, backoff: { initialDelayMs: 100, jitter: 'none' } },
    ).catch((e: unknown) => e);
    await clock.runAll();
    const error = (await result) as PermanentError;
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.attempts).toBe(3);
    expect(error.errors?.map((f) => [f.attempt, f.reason, f.time])).toEqual([
      [0, 'service_unavailable', 0],
      [1, 'server_error', 100],
      [2, 'client_error', 300],
    ]);
    expect(error.errors?.at(-1)?.error).toBe(error.cause);
  });

  it('rethrows a PermanentError thrown by user code as it is', async () => {
    const clock = createManualClock();
    const thrown = permanent(new Error('invalid phone number'));
    await expect(
      retry(
        () => {
          throw thrown;
        },
        { clock },
      ),
    ).rejects.toBe(thrown);
  });

  it('aborting during a sleep rejects at once with the signal reason', async () => {
    const clock = createManualClock();
    const controller = new AbortController();
    const fn = vi.fn(async () => {
      throw http(503);
    });
    const result = retry(fn, { clock, signal: controller.signal }).catch((e: unknown) => e);
    await clock.advance(0);
    expect(clock.pending()).toHaveLength(1);
    const reason = new Error('shutting down');
    controller.abort(reason);
    expect(await result).toBe(reason);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(clock.pending()).toEqual([]);
  });

  it('aborting during an attempt rejects at once, even if the function ignores the signal', async () => {
    const clock = createManualClock();
    const controller = new AbortController();
    let attemptSignal: AbortSignal | undefined;
    const result = retry(
      ({ signal }) => {
        attemptSignal = signal;
        return new Promise(() => {});
      },
      { clock, signal: controller.signal },
    ).catch((e: unknown) => e);
    controller.abort('stop');
    expect(await result).toBe('stop');
    expect(attemptSignal?.aborted).toBe(true);
  });

  it('does not call the function when the signal has already aborted', async () => {
    const fn = vi.fn();
    await expect(retry(fn, { signal: AbortSignal.abort('early') })).rejects.toBe('early');
    expect(fn).not.toHaveBeenCalled();
  });

  it('times out a hung attempt, aborts its signal, and retries it as a timeout', async () => {
    const clock = createManualClock();
    const signals: AbortSignal[] = [];
    const reasons: string[] = [];
    const result = retry(
      ({ signal, attempt }) => {
        signals.push(signal);
        return attempt < 2 ? new Promise(() => {}) : 'done';
      },
      {
        clock,
        attemptTimeoutMs: 1_000,
        backoff: { jitter: 'none', initialDelayMs: 10 },
        onRetry: (e) => reasons.push(e.classification.reason),
      },
    );
    await clock.runAll();
    await expect(result).resolves.toBe('done');
    expect(signals.map((s) => s.aborted)).toEqual([true, true, false]);
    expect(reasons).toEqual(['timeout', 'timeout']);
    expect(clock.now()).toBe(1_000 + 10 + 1_000 + 20);
  });

  it('gives up rather than sleep past maxElapsedMs', async () => {
    const clock = createManualClock();
    const fn = vi.fn(async () => {
      throw http(503);
    });
    const result = retry(fn, {
      clock,
      maxAttempts: 100,
      maxElapsedMs: 1_000,
      backoff: { jitter: 'none', initialDelayMs: 100 },
    }).catch((e: unknown) => e);
    await clock.runAll();
    const error = (await result) as RetryError;
    expect(error.stopReason).toBe('max_elapsed');
    expect(clock.sleeps).toEqual([100, 200, 400]);
    expect(clock.now()).toBe(700);
    expect(fn).toHaveBeenCalledTimes(4);
  });

  it('waits at least Retry-After (plus a little jitter), above maxDelayMs too', async () => {
    const clock = createManualClock();
    const { fn } = flaky(
      clock,
      [http(429, { 'Retry-After': '30' }), http(429, { 'retry-after': '3600' })],
      'ok',
    );
    const result = retry(fn, {
      clock,
      random: () => 0.5,
      backoff: { jitter: 'none', initialDelayMs: 100, maxDelayMs: 60_000 },
    });
    await clock.runAll();
    await result;
    // The server's hour is honoured though maxDelayMs is a minute: a one-minute sleep would
    // only earn another 429.
    expect(clock.sleeps).toEqual([30_000 + 500, 3_600_000 + 500]);
  });

  it('gives up at once when Retry-After would overrun maxElapsedMs', async () => {
    const clock = createManualClock();
    const fn = vi.fn(async () => {
      throw http(503, { 'retry-after': '120' });
    });
    const error = (await retry(fn, { clock, maxElapsedMs: 60_000 }).catch(
      (e: unknown) => e,
    )) as RetryError;
    expect(error.stopReason).toBe('retry_after_exceeds_elapsed');
    expect(error.reason).toBe('service_unavailable');
    expect(error.message).toMatch(/retry_after_exceeds_elapsed/);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('gives up at once, with default options, on a Retry-After in the year 9999', async () => {
    const clock = createManualClock(Date.UTC(2026, 0, 1));
    const fn = vi.fn(async () => {
      throw http(429, { 'retry-after': 'Fri, 31 Dec 9999 23:59:59 GMT' });
    });
    const events: RetrykitEvent[] = [];
    const result = retry(fn, { clock, onEvent: (e) => events.push(e) }).catch((e: unknown) => e);
    const error = (await result) as RetryError;
    expect(error).toBeInstanceOf(RetryError);
    expect(error.stopReason).toBe('retry_after_exceeds_elapsed');
    expect(error.reason).toBe('rate_limited');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(clock.sleeps).toEqual([]);
    expect(events.find((e) => e.type === 'give_up')).toMatchObject({
      stopReason: 'retry_after_exceeds_elapsed',
    });
  });

  it('gives up when Retry-After exceeds what is left of maxElapsedMs', async () => {
    const clock = createManualClock();
    const { fn } = flaky(clock, [http(503), http(429, { 'retry-after': '50' })], 'ok');
    const result = retry(fn, {
      clock,
      maxElapsedMs: 60_000,
      backoff: { jitter: 'none', initialDelayMs: 20_000 },
    }).catch((e: unknown) => e);
    await clock.runAll();
    const error = (await result) as RetryError;
    // 20 s spent, 40 s left: a 50 s wait can't end in time.
    expect(error.stopReason).toBe('retry_after_exceeds_elapsed');
    expect(fn).toHaveBeenCalledTimes(2);
    expect(clock.sleeps).toEqual([20_000]);
  });

  it('sleeps the server’s wait when it fits maxElapsedMs, never past it (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10 ** 12 }),
        fc.integer({ min: 0, max: 10 ** 12 }),
        fc.integer({ min: 0, max: 10 ** 7 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        async (retryAfterMs, maxElapsedMs, maxDelayMs, r) => {
          const clock = createManualClock();
          const throttle: Classification = {
            retryable: true,
            reason: 'rate_limited',
            retryAfterMs,
          };
          const { fn } = flaky(clock, [new Error('429')], 'ok');
          const result = retry(fn, {
            clock,
            random: () => r,
            maxElapsedMs,
            classify: () => throttle,
            backoff: { maxDelayMs, initialDelayMs: Math.min(100, maxDelayMs) },
          }).catch((e: unknown) => e);
          await clock.runAll();
          const outcome = await result;
          if (retryAfterMs > maxElapsedMs) {
            expect((outcome as RetryError).stopReason).toBe('retry_after_exceeds_elapsed');
            expect(clock.sleeps).toEqual([]);
          } else {
            expect(outcome).toBe('ok');
            const [slept] = clock.sleeps as [number];
            expect(slept).toBeGreaterThanOrEqual(retryAfterMs);
            expect(slept).toBeLessThanOrEqual(maxElapsedMs);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps the original error when classify throws: stops, with the throw as classifyError', async () => {
    const clock = createManualClock();
    const original = http(503);
    const bug = new TypeError('cannot read properties of undefined');
    const fn = vi.fn(async () => {
      throw original;
    });
    const error = (await retry(fn, {
      clock,
      classify: () => {
        throw bug;
      },
    }).catch((e: unknown) => e)) as PermanentError;
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.cause).toBe(original);
    expect(error.classifyError).toBe(bug);
    expect(error.classification).toEqual({ retryable: false, reason: 'unknown' });
    expect(error.message).toMatch(/HTTP 503.*classify threw cannot read properties/);
    expect(error.errors?.[0]?.error).toBe(original);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('keeps the original error when a classifier throws on a PermanentError too', async () => {
    const original = permanent(new Error('bad request'));
    const error = (await retry(
      async () => {
        throw original;
      },
      {
        classify: () => {
          throw new Error('boom');
        },
      },
    ).catch((e: unknown) => e)) as PermanentError;
    expect(error.cause).toBe(original);
    expect(error.classifyError).toEqual(new Error('boom'));
  });

  it.each([
    [
      'a Proxy that throws on every read',
      () =>
        new Proxy(
          {},
          {
            get() {
              throw new Error('trap');
            },
            getPrototypeOf() {
              throw new Error('trap');
            },
            has() {
              throw new Error('trap');
            },
            ownKeys() {
              throw new Error('trap');
            },
          },
        ),
    ],
    [
      'an error with a throwing code getter',
      () =>
        Object.defineProperty(new Error('odd'), 'code', {
          get() {
            throw new Error('getter');
          },
        }),
    ],
  ])('keeps %s as the cause, retrying it as unknown', async (_, make) => {
    const clock = createManualClock();
    const thrown = make();
    const fn = vi.fn(async () => {
      throw thrown;
    });
    const result = retry(fn, { clock, maxAttempts: 3 }).catch((e: unknown) => e);
    await clock.runAll();
    const error = (await result) as RetryError;
    expect(error).toBeInstanceOf(RetryError);
    expect(error.cause).toBe(thrown);
    expect(error.reason).toBe('unknown');
    expect(error.errors).toHaveLength(3);
    expect(error.errors.every((f) => f.error === thrown && f.reason === 'unknown')).toBe(true);
    expect(typeof error.message).toBe('string');
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it('applies backoffByReason and the classification’s own backoff and maxAttempts', async () => {
    const clock = createManualClock();
    const { fn } = flaky(clock, [http(503), http(503), http(500)], 'ok');
    const result = retry(fn, {
      clock,
      backoff: { jitter: 'none', initialDelayMs: 100 },
      backoffByReason: { service_unavailable: { multiplier: 3 } },
    });
    await clock.runAll();
    await result;
    expect(clock.sleeps).toEqual([100, 300, 400]);

    const paced: Classification = {
      retryable: true,
      reason: 'rate_limited',
      backoff: { initialDelayMs: 1000, multiplier: 4, jitter: 'none' },
      maxAttempts: 3,
    };
    const always = vi.fn(async () => {
      throw new Error('pair rate limit');
    });
    const clock2 = createManualClock();
    const r2 = retry(always, { clock: clock2, classify: () => paced, maxAttempts: 10 }).catch(
      (e: unknown) => e,
    );
    await clock2.runAll();
    expect(((await r2) as RetryError).attempts).toBe(3);
    expect(clock2.sleeps).toEqual([1000, 4000]);
  });

  it('rejects bad options naming the option and value', () => {
    expect(() => createRetry({ maxAttempts: 0 })).toThrow(/maxAttempts.*0/);
    expect(() => createRetry({ maxAttempts: 2.5 })).toThrow(/maxAttempts.*2\.5/);
    expect(() => createRetry({ maxElapsedMs: -1 })).toThrow(/maxElapsedMs.*-1/);
    expect(() => createRetry({ attemptTimeoutMs: Number.NaN })).toThrow(/attemptTimeoutMs.*NaN/);
    expect(() => createRetry({ backoff: { multiplier: 0 } })).toThrow(/backoff\.multiplier.*0/);
    expect(() => createRetry({ backoffByReason: { timeout: { initialDelayMs: -3 } } })).toThrow(
      /backoffByReason\.timeout\.initialDelayMs.*-3/,
    );
    expect(() => createRetry({ onRetry: 'log' as never })).toThrow(/onRetry.*"log"/);
  });

  it('lets per-call options override the shared ones', async () => {
    const clock = createManualClock();
    const run = createRetry({ clock, maxAttempts: 5, backoff: { initialDelayMs: 1 } });
    const fn = vi.fn(async () => {
      throw http(502);
    });
    const result = run(fn, { maxAttempts: 2 }).catch((e: unknown) => e);
    await clock.runAll();
    expect(((await result) as RetryError).attempts).toBe(2);
  });

  it('ignores hooks that throw', async () => {
    const clock = createManualClock();
    const { fn } = flaky(clock, [http(503)], 'ok');
    const result = retry(fn, {
      clock,
      onRetry: () => {
        throw new Error('broken logger');
      },
      onEvent: () => {
        throw new Error('broken metrics');
      },
    });
    await clock.runAll();
    await expect(result).resolves.toBe('ok');
  });

  it('reports throttles and successes to the feedback listener', async () => {
    const clock = createManualClock();
    const { fn } = flaky(clock, [http(429), http(503)], 'ok');
    const log: string[] = [];
    const result = retry(fn, {
      clock,
      feedback: {
        throttled: (c) => log.push(`throttled:${c.reason}`),
        succeeded: () => log.push('ok'),
      },
    });
    await clock.runAll();
    await result;
    expect(log).toEqual(['throttled:rate_limited', 'ok']);
  });

  it('emits events in order with their payloads', async () => {
    const clock = createManualClock();
    const events: RetrykitEvent[] = [];
    const { fn } = flaky(clock, [http(503)], 'ok');
    const result = retry(fn, {
      clock,
      onEvent: (e) => events.push(e),
      backoff: { jitter: 'none', initialDelayMs: 10 },
    });
    await clock.runAll();
    await result;
    expect(events.map((e) => e.type)).toEqual([
      'attempt_start',
      'attempt_failure',
      'retry_scheduled',
      'attempt_start',
      'attempt_success',
    ]);
    expect(events[2]).toMatchObject({ attempt: 1, delayMs: 10, reason: 'service_unavailable' });
    expect(events[4]).toMatchObject({ attempt: 1, elapsedMs: 10 });
  });
});

describe('retry budget', () => {
  it('refuses retries past its share and fails fast with budget_exhausted', async () => {
    const clock = createManualClock();
    const budget = createRetryBudget({
      clock,
      minRetriesPerSecond: 0,
      retryRatio: 0.2,
      windowMs: 10_000,
    });
    const run = createRetry({ clock, budget, maxAttempts: 2, backoff: { initialDelayMs: 1 } });
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const p = run(async () => {
          throw http(503);
        }).catch((e: RetryError) => e.stopReason);
        await clock.runAll();
        return p;
      }),
    );
    const retried = outcomes.filter((o) => o === 'max_attempts').length;
    const refused = outcomes.filter((o) => o === 'budget_exhausted').length;
    expect(retried + refused).toBe(50);
    expect(retried).toBeLessThanOrEqual(10);
    expect(retried).toBeGreaterThanOrEqual(9);
  });

  it('grants minRetriesPerSecond · ttl regardless of traffic, and ages deposits out', async () => {
    const clock = createManualClock();
    const budget = createRetryBudget({
      clock,
      minRetriesPerSecond: 1,
      retryRatio: 0.5,
      windowMs: 10_000,
    });
    expect(budget.balance()).toBe(10);
    for (let i = 0; i < 20; i++) budget.deposit();
    expect(budget.balance()).toBe(20);
    await clock.advance(10_000);
    expect(budget.balance()).toBe(10);
  });

  it('never grants more than its balance (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            dt: fc.integer({ min: 0, max: 3_000 }),
            deposits: fc.integer({ min: 0, max: 20 }),
            asks: fc.integer({ min: 0, max: 20 }),
          }),
        ),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (steps, percent) => {
          let now = 0;
          const budget = createRetryBudget({
            clock: { now: () => now },
            minRetriesPerSecond: 0,
            retryRatio: percent,
            windowMs: 10_000,
          });
          const history: { t: number; deposits: number; granted: number }[] = [];
          for (const step of steps) {
            now += step.dt;
            for (let i = 0; i < step.deposits; i++) budget.deposit();
            let granted = 0;
            for (let i = 0; i < step.asks; i++) if (budget.tryWithdraw()) granted++;
            history.push({ t: now, deposits: step.deposits, granted });
            const windowed = history.filter((h) => h.t > now - 9_000);
            const deposited = history.reduce((s, h) => s + h.deposits, 0);
            const grantedInWindow = windowed.reduce((s, h) => s + h.granted, 0);
            expect(grantedInWindow).toBeLessThanOrEqual(deposited * percent + 1e-9);
          }
        },
      ),
    );
  });

  it('rejects bad options', () => {
    expect(() => createRetryBudget({ windowMs: 0 })).toThrow(/windowMs.*0/);
    expect(() => createRetryBudget({ ttlMs: 1000 } as never)).toThrow(
      'ttlMs was renamed in retrykit 0.2: use windowMs',
    );
    expect(() => createRetryBudget({ percentCanRetry: 0.2 } as never)).toThrow(
      'percentCanRetry was renamed in retrykit 0.2: use retryRatio',
    );
    expect(() => createRetryBudget({ retryRatio: -0.1 })).toThrow(/retryRatio.*-0\.1/);
    expect(() => createRetryBudget({ minRetriesPerSecond: Number.NaN })).toThrow(
      /minRetriesPerSecond.*NaN/,
    );
  });
});

describe('retry with jitter', () => {
  it('sleeps reproducibly with a seeded random source', async () => {
    const run = async () => {
      const clock = createManualClock();
      const fn = vi.fn(async () => {
        throw http(503);
      });
      const p = retry(fn, { clock, random: seededRandom(3) }).catch(() => undefined);
      await clock.runAll();
      await p;
      return clock.sleeps;
    };
    const a = await run();
    expect(a).toHaveLength(4);
    expect(await run()).toEqual(a);
  });
});

describe('attempt signals', () => {
  it('gives every call its own signal, so listeners never pile up on a shared one', async () => {
    const run = createRetry();
    const signals = await Promise.all(Array.from({ length: 3 }, () => run(({ signal }) => signal)));
    expect(new Set(signals).size).toBe(3);
    expect(signals.every((s) => !s.aborted)).toBe(true);
  });
});

describe('the first attempt', () => {
  it('follows a plain value, a synchronous throw and a foreign thenable alike', async () => {
    const clock = createManualClock();
    const run = createRetry({ clock, backoff: { jitter: 'none', initialDelayMs: 10 } });
    /** A thenable that is not a native promise, settling as `ok` says. */
    const foreign = (ok: boolean, value: unknown): PromiseLike<string> => {
      const settle = (resolve?: (v: never) => unknown, reject?: (e: unknown) => unknown) => {
        queueMicrotask(() => (ok ? resolve?.(value as never) : reject?.(value)));
        return new Promise<never>(() => {});
      };
      // biome-ignore lint/suspicious/noThenProperty: a foreign thenable is what is under test.
      return { then: settle } as PromiseLike<string>;
    };
    await expect(run(() => 'plain')).resolves.toBe('plain');
    await expect(run(() => foreign(true, 'foreign'))).resolves.toBe('foreign');
    const calls: number[] = [];
    const synchronous = run(({ attempt }) => {
      calls.push(attempt);
      if (attempt === 0) throw http(503);
      return 'after a throw';
    });
    const rejecting = run(({ attempt }) =>
      attempt === 0 ? foreign(false, http(503)) : 'after a foreign rejection',
    );
    await clock.runAll();
    await expect(synchronous).resolves.toBe('after a throw');
    await expect(rejecting).resolves.toBe('after a foreign rejection');
    expect(calls).toEqual([0, 1]);
  });

  it('never throws synchronously: a clock or budget that throws rejects the call', async () => {
    const broken = new Error('broken');
    const fn = vi.fn(async () => 'ok');
    const clock = {
      now: () => {
        throw broken;
      },
      sleep: async () => {},
    };
    const budget = {
      deposit: () => {
        throw broken;
      },
      tryWithdraw: () => true,
      balance: () => 0,
    };
    for (const run of [createRetry({ clock }), createRetry({ budget })]) {
      let call: Promise<string> | undefined;
      expect(() => {
        call = run(fn);
      }).not.toThrow();
      await expect(call).rejects.toBe(broken);
    }
    expect(fn).not.toHaveBeenCalled();
  });

  it('makes the signal once, on first read', async () => {
    const run = createRetry();
    const [a, b] = await run((ctx) => [ctx.signal, ctx.signal] as const);
    expect(a).toBe(b);
    expect(a.aborted).toBe(false);
  });
});
