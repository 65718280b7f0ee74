import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, setLongTimeout, systemClock } from './clock.js';

/** Replaces `setTimeout` with a recorder: each armed timer waits for `fire()`. */
function recordTimers() {
  const armed: { fn: () => void; ms: number }[] = [];
  vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms: number) => {
    armed.push({ fn, ms });
    return armed.length as unknown as ReturnType<typeof setTimeout>;
  }) as typeof setTimeout);
  const fire = (): void => {
    const next = armed[armed.length - 1];
    if (next === undefined) throw new Error('no timer armed');
    next.fn();
  };
  return { armed, fire };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('setLongTimeout', () => {
  it('arms at most MAX_TIMER_MS at a time and fires once the whole delay has run (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2e11 }), (ms) => {
        const { armed, fire } = recordTimers();
        let fired = 0;
        setLongTimeout(() => fired++, ms);
        const steps = Math.max(1, Math.ceil(ms / MAX_TIMER_MS));
        for (let i = 1; i < steps; i++) {
          fire();
          expect(fired).toBe(0);
        }
        fire();
        expect(fired).toBe(1);
        expect(armed).toHaveLength(steps);
        expect(armed.every((t) => t.ms >= 0 && t.ms <= MAX_TIMER_MS)).toBe(true);
        expect(armed.reduce((sum, t) => sum + t.ms, 0)).toBe(ms);
        vi.restoreAllMocks();
      }),
    );
  });

  it('treats NaN and negative delays as 0, and cancels the step armed now', () => {
    const { armed } = recordTimers();
    setLongTimeout(() => {}, Number.NaN);
    setLongTimeout(() => {}, -5);
    expect(armed.map((t) => t.ms)).toEqual([0, 0]);
    vi.restoreAllMocks();
    const clear = vi.spyOn(globalThis, 'clearTimeout');
    const cancel = setLongTimeout(() => {}, 3 * MAX_TIMER_MS);
    cancel();
    expect(clear).toHaveBeenCalledTimes(1);
  });
});

describe('systemClock.sleep', () => {
  it('does not end early for a wait past 2^31 − 1 ms (Node fires such a timer after 1 ms)', async () => {
    const controller = new AbortController();
    let woke = false;
    const sleeping = systemClock.sleep(2 ** 31 + 1_000, controller.signal).then(
      () => {
        woke = true;
      },
      () => {},
    );
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(woke).toBe(false);
    controller.abort();
    await sleeping;
    expect(woke).toBe(false);
  });

  it('rejects with the signal reason on abort', async () => {
    const controller = new AbortController();
    const sleeping = systemClock.sleep(10 * MAX_TIMER_MS, controller.signal);
    controller.abort(new Error('stop'));
    await expect(sleeping).rejects.toThrow('stop');
  });
});
