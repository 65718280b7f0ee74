import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { createMemoryIdempotencyStore } from '../../memory/idempotency.js';
import { createManualClock, seededRandom } from '../../testing/index.js';
import { PermanentError, StoreUnavailableError } from '../errors.js';
import type { RetrykitEvent } from '../events.js';
import type { IdempotencyStore } from './idempotency-types.js';
import {
  IDEMPOTENCY_DEFAULTS,
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  idempotent,
} from './idempotent.js';

function setup(start = 0) {
  const clock = createManualClock(start);
  const store = createMemoryIdempotencyStore({ maxEntries: 1000, clock });
  return { clock, store };
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A store whose every call fails as an unreachable Redis does. */
const downStore: IdempotencyStore = {
  claim: () => Promise.reject(new StoreUnavailableError('claim', new Error('ECONNREFUSED'))),
  complete: () => Promise.reject(new StoreUnavailableError('complete', new Error('ECONNREFUSED'))),
  release: () => Promise.reject(new StoreUnavailableError('release', new Error('ECONNREFUSED'))),
  markOnce: () => Promise.reject(new StoreUnavailableError('markOnce', new Error('ECONNREFUSED'))),
};

describe('idempotent', () => {
  it('runs fn once and hands its stored result to later calls', async () => {
    const clock = createManualClock();
    const events: RetrykitEvent[] = [];
    const store = createMemoryIdempotencyStore({
      maxEntries: 1000,
      clock,
      onEvent: (e) => events.push(e),
    });
    const fn = vi.fn(async () => ({ wamid: 'wamid.1' }));
    const options = { clock };
    expect(await idempotent(store, 'send:1', fn, options)).toEqual({ wamid: 'wamid.1' });
    expect(await idempotent(store, 'send:1', fn, options)).toEqual({ wamid: 'wamid.1' });
    expect(fn).toHaveBeenCalledTimes(1);
    expect(fn).toHaveBeenCalledWith(expect.objectContaining({ key: 'send:1' }));
    // The store reports the hit; idempotent() adds none of its own.
    expect(events).toEqual([
      { type: 'idempotency_hit', time: 0, key: 'send:1', status: 'completed' },
    ]);
  });

  it('runs fn exactly once for 50 concurrent calls and gives all 50 its result', async () => {
    const { clock, store } = setup();
    const gate = deferred<string>();
    const fn = vi.fn(() => gate.promise);
    const calls = Array.from({ length: 50 }, () =>
      idempotent(store, 'k', fn, { clock, random: seededRandom(1) }),
    );
    await clock.advance(300);
    gate.resolve('the result');
    await clock.runAll();
    expect(await Promise.all(calls)).toEqual(Array(50).fill('the result'));
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('releases the key when fn throws, so the next call runs it again', async () => {
    const { clock, store } = setup();
    const fn = vi
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      .mockResolvedValueOnce('second time lucky');
    await expect(idempotent(store, 'k', fn, { clock })).rejects.toThrow('socket hang up');
    expect(await idempotent(store, 'k', fn, { clock })).toBe('second time lucky');
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('releases a permanent failure too unless rememberFailures is set', async () => {
    const { clock, store } = setup();
    const fn = vi.fn(async () => {
      throw new PermanentError(new Error('opted out'));
    });
    await expect(idempotent(store, 'k', fn, { clock })).rejects.toThrow('opted out');
    await expect(idempotent(store, 'k', fn, { clock })).rejects.toThrow('opted out');
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('remembers a permanent failure and rethrows an equivalent error without running fn', async () => {
    const { clock, store } = setup();
    const original = Object.assign(new Error('(#131050) user opted out of marketing'), {
      name: 'WhatsAppApiError',
      code: 131050,
    });
    const fn = vi.fn(async () => {
      throw new PermanentError(original, {
        classification: { retryable: false, reason: 'policy' },
      });
    });
    const options = { clock, rememberFailures: true };
    const first = await idempotent(store, 'k', fn, options).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(PermanentError);
    const replayed = await idempotent(store, 'k', fn, options).catch((e: unknown) => e);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(replayed).toBeInstanceOf(PermanentError);
    expect(replayed).toMatchObject({
      code: 'PERMANENT',
      message: expect.stringMatching(/earlier call .*"k".*user opted out/),
      classification: { retryable: false, reason: 'policy' },
      cause: { name: 'WhatsAppApiError', code: 131050, message: original.message },
    });
  });

  it('remembers a failure the classifier calls non-retryable, but never a transient one', async () => {
    const { clock, store } = setup();
    const badRequest = Object.assign(new Error('bad request'), { status: 400 });
    const unavailable = Object.assign(new Error('unavailable'), { status: 503 });
    const fn400 = vi.fn(async () => Promise.reject(badRequest));
    const fn503 = vi.fn(async () => Promise.reject(unavailable));
    const options = { clock, rememberFailures: true };
    await expect(idempotent(store, 'a', fn400, options)).rejects.toBe(badRequest);
    await expect(idempotent(store, 'a', fn400, options)).rejects.toMatchObject({
      classification: { retryable: false, reason: 'client_error' },
    });
    expect(fn400).toHaveBeenCalledTimes(1);
    await expect(idempotent(store, 'b', fn503, options)).rejects.toBe(unavailable);
    await expect(idempotent(store, 'b', fn503, options)).rejects.toBe(unavailable);
    expect(fn503).toHaveBeenCalledTimes(2);
  });

  it('fails a duplicate with IdempotencyInProgressError after waitForResultMs', async () => {
    const { clock, store } = setup();
    const holder = await store.claim('k', { leaseMs: 60_000 });
    expect(holder.status).toBe('claimed');
    const fn = vi.fn(async () => 'never');
    const call = idempotent(store, 'k', fn, { clock, waitForResultMs: 2000 }).catch((e) => e);
    await clock.runAll();
    const error = await call;
    expect(error).toBeInstanceOf(IdempotencyInProgressError);
    expect(error).toMatchObject({
      code: 'IDEMPOTENCY_IN_PROGRESS',
      key: 'k',
      waitedMs: 2000,
      retryAfterMs: 58_000,
    });
    expect(clock.now()).toBe(2000);
    expect(fn).not.toHaveBeenCalled();
  });

  it('fails at once with waitForResultMs: 0', async () => {
    const { clock, store } = setup();
    await store.claim('k', { leaseMs: 1000 });
    await expect(
      idempotent(store, 'k', async () => 1, { clock, waitForResultMs: 0 }),
    ).rejects.toBeInstanceOf(IdempotencyInProgressError);
    expect(clock.sleeps).toEqual([]);
  });

  it('takes the key over when the holder crashed and its lease ran out', async () => {
    const { clock, store } = setup();
    const dead = await store.claim('k', { leaseMs: 1500 });
    const fn = vi.fn(async () => 'rescued');
    const call = idempotent(store, 'k', fn, { clock, waitForResultMs: 10_000 });
    await clock.runAll();
    expect(await call).toBe('rescued');
    expect(clock.now()).toBeGreaterThanOrEqual(1500);
    expect(clock.now()).toBeLessThan(2600);
    if (dead.status === 'claimed') {
      expect(await store.complete('k', dead.token, 'late', { resultTtlMs: 1000 })).toBe(false);
    }
  });

  it('with a requestId, takes over its own orphaned claim at once instead of waiting', async () => {
    const { clock, store } = setup();
    // A claim that timed out on the caller but ran on the store: nobody will complete it.
    await store.claim('k', { leaseMs: 60_000, requestId: 'job-7' });
    const fn = vi.fn(async () => 'sent');
    expect(await idempotent(store, 'k', fn, { clock, requestId: 'job-7' })).toBe('sent');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(clock.sleeps).toEqual([]);
    const other = vi.fn(async () => 'again');
    expect(await idempotent(store, 'k', other, { clock, requestId: 'job-8' })).toBe('sent');
    expect(other).not.toHaveBeenCalled();
  });

  it('with a requestId, still waits for a claim held under another id', async () => {
    const { clock, store } = setup();
    await store.claim('k', { leaseMs: 60_000, requestId: 'job-1' });
    const fn = vi.fn(async () => 'dup');
    await expect(
      idempotent(store, 'k', fn, { clock, requestId: 'job-2', waitForResultMs: 0 }),
    ).rejects.toBeInstanceOf(IdempotencyInProgressError);
    expect(fn).not.toHaveBeenCalled();
  });

  it('stops waiting when the signal aborts, without running fn', async () => {
    const { clock, store } = setup();
    await store.claim('k', { leaseMs: 60_000 });
    const controller = new AbortController();
    const fn = vi.fn(async () => 1);
    const call = idempotent(store, 'k', fn, { clock, signal: controller.signal }).catch((e) => e);
    await clock.advance(100);
    controller.abort(new Error('client went away'));
    expect(await call).toMatchObject({ message: 'client went away' });
    expect(fn).not.toHaveBeenCalled();
  });

  it('fails with IdempotencyKeyReuseError when the fingerprint differs', async () => {
    const { clock, store } = setup();
    await idempotent(store, 'k', async () => 1, { clock, fingerprint: 'sha256:aa' });
    const error = await idempotent(store, 'k', async () => 2, {
      clock,
      fingerprint: 'sha256:bb',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyKeyReuseError);
    expect(error).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSE', key: 'k' });
  });

  it('rethrows StoreUnavailableError without running fn, unless onStoreError is proceed', async () => {
    const fn = vi.fn(async () => 'ran unguarded');
    await expect(idempotent(downStore, 'k', fn)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(fn).not.toHaveBeenCalled();
    expect(await idempotent(downStore, 'k', fn, { onStoreError: 'proceed' })).toBe('ran unguarded');
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('returns the result but reports lease_lost when fn outlived its lease', async () => {
    const { clock, store } = setup();
    const onNotRecorded = vi.fn();
    const call = idempotent(
      store,
      'k',
      async () => {
        await clock.sleep(2000);
        return 'slow';
      },
      { clock, leaseMs: 1000, onNotRecorded },
    );
    await clock.advance(1500);
    const thief = await store.claim('k', { leaseMs: 10_000 });
    expect(thief.status).toBe('claimed');
    await clock.advance(500);
    expect(await call).toBe('slow');
    expect(onNotRecorded).toHaveBeenCalledWith({ key: 'k', reason: 'lease_lost', heldMs: 2000 });
  });

  it('returns the result but reports store_unavailable when the store fails on complete', async () => {
    const { store } = setup();
    const flaky: IdempotencyStore = {
      ...store,
      claim: store.claim.bind(store),
      complete: () => Promise.reject(new StoreUnavailableError('complete', new Error('timeout'))),
    };
    const onNotRecorded = vi.fn();
    expect(await idempotent(flaky, 'k', async () => 'sent', { onNotRecorded })).toBe('sent');
    expect(onNotRecorded).toHaveBeenCalledWith(
      expect.objectContaining({ key: 'k', reason: 'store_unavailable' }),
    );
  });

  it('waits exactly waitForResultMs, in steps of at least 1 ms but the last', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 60_000 }),
        fc.integer({ min: 50, max: 5000 }),
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.integer(),
        async (waitForResultMs, initialDelayMs, multiplier, seed) => {
          const { clock, store } = setup();
          await store.claim('k', { leaseMs: 10 * waitForResultMs });
          const call = idempotent(store, 'k', async () => 1, {
            clock,
            waitForResultMs,
            pollBackoff: { initialDelayMs, multiplier, maxDelayMs: 10_000 },
            random: seededRandom(seed),
          }).catch((e) => e);
          await clock.runAll();
          expect(await call).toBeInstanceOf(IdempotencyInProgressError);
          expect(clock.now()).toBe(waitForResultMs);
          for (const ms of clock.sleeps.slice(0, -1)) expect(ms).toBeGreaterThanOrEqual(1);
          expect(clock.sleeps.at(-1)).toBeGreaterThan(0);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('polls at least 1 ms apart even with a zero backoff', async () => {
    const { clock, store } = setup();
    await store.claim('k', { leaseMs: 60_000 });
    const call = idempotent(store, 'k', async () => 1, {
      clock,
      waitForResultMs: 20,
      pollBackoff: { initialDelayMs: 0 },
    }).catch((e) => e);
    await clock.runAll();
    expect(await call).toBeInstanceOf(IdempotencyInProgressError);
    expect(clock.sleeps).toEqual(Array(20).fill(1));
  });

  it('rejects bad arguments naming the option and the value', async () => {
    const { store } = setup();
    const fn = vi.fn(async () => 1);
    await expect(idempotent(store, '', fn)).rejects.toThrow(/key must not be empty/);
    await expect(idempotent(store, 'k', 'fn' as never)).rejects.toThrow(/fn must be a function/);
    await expect(idempotent(store, 'k', fn, { leaseMs: -1 })).rejects.toThrow(/leaseMs.*-1/);
    await expect(idempotent(store, 'k', fn, { resultTtlMs: Number.NaN })).rejects.toThrow(
      /resultTtlMs.*NaN/,
    );
    await expect(idempotent(store, 'k', fn, { resultTtlMs: -86_400_000 })).rejects.toThrow(
      /resultTtlMs.*-86400000/,
    );
    await expect(idempotent(store, 'k', fn, { waitForResultMs: -1 })).rejects.toThrow(
      /waitForResultMs.*-1/,
    );
    await expect(idempotent(store, 'k', fn, { onStoreError: 'ignore' as never })).rejects.toThrow(
      /onStoreError.*'fail', 'proceed'.*"ignore"/,
    );
    for (const [old, now] of [
      ['throw', 'fail'],
      ['run', 'proceed'],
    ] as const) {
      const call = idempotent(store, 'k', fn, { onStoreError: old as never });
      await expect(call).rejects.toThrow(TypeError);
      await expect(call).rejects.toThrow(`onStoreError: '${old}' was renamed`);
      await expect(call).rejects.toThrow(`use onStoreError: '${now}'`);
    }
    await expect(idempotent(store, 'k', fn, { ttlMs: 1000 } as never)).rejects.toThrow(
      'ttlMs was renamed in retrykit 0.2: use resultTtlMs',
    );
    expect(fn).not.toHaveBeenCalled();
    await expect(idempotent(null as never, 'k', fn)).rejects.toThrow(/store must be/);
    await expect(idempotent(store, 'k', fn, { requestId: '' })).rejects.toThrow(
      /requestId must not be empty/,
    );
    await expect(idempotent(store, 'k', fn, { requestId: 42 as never })).rejects.toThrow(
      /requestId must be a string, got 42/,
    );
    await expect(idempotent(store, 'k', fn, { rememberFailures: 'yes' as never })).rejects.toThrow(
      /rememberFailures must be a boolean, got "yes"/,
    );
    expect(store.size).toBe(0);
  });

  it('has frozen defaults whose webhook TTL outlives Meta’s 7-day redelivery', () => {
    expect(Object.isFrozen(IDEMPOTENCY_DEFAULTS)).toBe(true);
    expect(Object.isFrozen(IDEMPOTENCY_DEFAULTS.pollBackoff)).toBe(true);
    expect(IDEMPOTENCY_DEFAULTS.webhookResultTtlMs).toBeGreaterThan(7 * 86_400_000);
    expect(IDEMPOTENCY_DEFAULTS.resultTtlMs).toBeGreaterThanOrEqual(86_400_000);
  });
});
