import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createBackgroundRetries } from './background-retries.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('createBackgroundRetries', () => {
  it('tries at once, then again with backoff while the task rejects, until it resolves', async () => {
    const retries = createBackgroundRetries(10);
    const tries: number[] = [];
    let failures = 3;
    expect(
      retries.add(
        'k',
        async () => {
          tries.push(performance.now());
          if (failures-- > 0) throw new Error('no answer');
        },
        60_000,
      ),
    ).toBe(true);
    expect(retries.size).toBe(1);
    await vi.runAllTimersAsync();
    const start = tries[0] ?? 0;
    expect(tries.map((t) => t - start)).toEqual([0, 100, 300, 700]);
    expect(retries.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives each try the time left, waits at most 5 s between tries, and stops at the deadline', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 120_000 }), async (withinMs) => {
        const retries = createBackgroundRetries(1);
        const start = performance.now();
        const tries: { at: number; timeoutMs: number }[] = [];
        retries.add(
          'k',
          async (timeoutMs) => {
            tries.push({ at: performance.now() - start, timeoutMs });
            throw new Error('down');
          },
          withinMs,
        );
        await vi.runAllTimersAsync();
        expect(retries.size).toBe(0);
        expect(vi.getTimerCount()).toBe(0);
        expect(tries[0]?.at).toBe(0);
        for (const [i, { at, timeoutMs }] of tries.entries()) {
          expect(at).toBeLessThan(withinMs);
          expect(timeoutMs).toBe(Math.ceil(withinMs - at));
          if (i > 0) {
            const gap = at - (tries[i - 1]?.at ?? 0);
            expect(gap).toBeGreaterThanOrEqual(1);
            expect(gap).toBeLessThanOrEqual(5000);
            expect(Number.isFinite(gap)).toBe(true);
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it('holds at most `limit` tasks and takes new ones as the old ones settle', async () => {
    const retries = createBackgroundRetries(2);
    const hang = () => new Promise<never>(() => {});
    expect(retries.add('a', hang, 1000)).toBe(true);
    expect(retries.add('b', async () => Promise.reject(new Error('x')), 1000)).toBe(true);
    expect(retries.add('c', hang, 1000)).toBe(false);
    expect(retries.size).toBe(2);
    await vi.advanceTimersByTimeAsync(500);
    expect(retries.add('c', hang, 1000)).toBe(false);
    await vi.advanceTimersByTimeAsync(500);
    // 'b' gave up at its deadline; 'a' never settles, and is dropped once past its own.
    expect(retries.size).toBe(1);
    expect(retries.add('c', hang, 1000)).toBe(true);
    expect(retries.add('d', hang, 1000)).toBe(true);
    expect(retries.size).toBe(2);
    expect(retries.add('e', hang, 1000)).toBe(false);
  });

  it('refuses a task when full without scanning the pending ones each time', () => {
    // 10,000 tries that never settle (a store outage), then a stream of new failures: each is
    // refused at a map lookup's cost. Scanning all pending tasks per refusal took ~0.5 ms each
    // (about 1 s for these 2,000); the bound leaves a wide margin for a loaded machine.
    vi.useRealTimers();
    const retries = createBackgroundRetries(10_000);
    const hang = () => new Promise<never>(() => {});
    for (let i = 0; i < 10_000; i++) retries.add(`k${i}`, hang, 60_000);
    const start = performance.now();
    for (let i = 0; i < 2_000; i++) expect(retries.add(`x${i}`, hang, 60_000)).toBe(false);
    expect(performance.now() - start).toBeLessThan(250);
  });

  it('drops a task that never settles once past its deadline, the earliest first', async () => {
    const retries = createBackgroundRetries(2);
    const hang = () => new Promise<never>(() => {});
    expect(retries.add('late', hang, 2000)).toBe(true);
    expect(retries.add('early', hang, 500)).toBe(true);
    expect(retries.add('c', hang, 1000)).toBe(false);
    await vi.advanceTimersByTimeAsync(500);
    expect(retries.add('c', hang, 1000)).toBe(true);
    expect(retries.add('d', hang, 1000)).toBe(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(retries.add('d', hang, 1000)).toBe(true);
    expect(retries.size).toBe(2);
  });

  it('flush tries a waiting task of the group at once', async () => {
    const retries = createBackgroundRetries(10);
    let tries = 0;
    retries.add(
      'k',
      async () => {
        if (++tries === 1) throw new Error('down');
      },
      60_000,
    );
    retries.add('other', () => Promise.reject(new Error('down')), 60_000);
    await vi.advanceTimersByTimeAsync(0);
    expect(tries).toBe(1);
    retries.flush('k');
    await vi.advanceTimersByTimeAsync(0);
    expect(tries).toBe(2);
    expect(retries.size).toBe(1);
    retries.flush('missing');
  });

  it('treats a task that throws synchronously as a failed try', async () => {
    const retries = createBackgroundRetries(10);
    let tries = 0;
    retries.add(
      'k',
      () => {
        tries++;
        throw new Error('sync');
      },
      250,
    );
    await vi.runAllTimersAsync();
    expect(tries).toBe(2);
    expect(retries.size).toBe(0);
  });

  it('takes a task that returns a plain value (a store method that is not async) as answered', async () => {
    const retries = createBackgroundRetries(10);
    const task = (() => true) as unknown as () => Promise<unknown>;
    expect(retries.add('k', task, 250)).toBe(true);
    await vi.runAllTimersAsync();
    expect(retries.size).toBe(0);
  });
});
