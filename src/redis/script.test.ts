import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StoreUnavailableError } from '../core/errors.js';
import { runCommand } from './script.js';

const never = (): Promise<unknown> => new Promise(() => {});

describe('runCommand timeouts', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fails a call that never answers once timeoutMs has passed, not before', async () => {
    let failedAt: number | undefined;
    const start = Date.now();
    const call = runCommand({ operation: 'probe', timeoutMs: 1000 }, never).catch((error) => {
      failedAt = Date.now();
      return error;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(failedAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(failedAt).toBe(start + 1000);
    const error = await call;
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(String((error as Error).cause)).toMatch(/did not answer within 1000 ms/);
  });

  it('keeps no timer once every call has settled', async () => {
    const answers = Array.from({ length: 5 }, (_, i) =>
      runCommand({ operation: 'probe', timeoutMs: 1000 }, () => Promise.resolve(i)),
    );
    expect(vi.getTimerCount()).toBe(5);
    expect(await Promise.all(answers)).toEqual([0, 1, 2, 3, 4]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('maps a failure to StoreUnavailableError naming the operation, with or without a timeout', async () => {
    for (const timeoutMs of [0, 1000]) {
      const error = await runCommand({ operation: 'claim', timeoutMs }, () =>
        Promise.reject(new Error('ECONNREFUSED')),
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as Error).message).toMatch(/claim/);
      expect(String((error as Error).cause)).toMatch(/ECONNREFUSED/);
    }
    const thrown = await runCommand({ operation: 'markOnce', timeoutMs: 1000 }, () => {
      throw new Error('socket closed');
    }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(StoreUnavailableError);
  });
});
