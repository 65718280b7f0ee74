import { describe, expect, it } from 'vitest';
import { createManualClock, seededRandom } from './index.js';

describe('createManualClock', () => {
  it('fires sleeps in deadline order as time advances', async () => {
    const clock = createManualClock(100);
    const fired: string[] = [];
    void clock.sleep(50).then(() => fired.push(`b@${clock.now()}`));
    void clock.sleep(10).then(() => fired.push(`a@${clock.now()}`));
    void clock.sleep(500).then(() => fired.push(`c@${clock.now()}`));
    expect(clock.pending()).toEqual([110, 150, 600]);
    await clock.advance(60);
    expect(fired).toEqual(['a@110', 'b@150']);
    expect(clock.now()).toBe(160);
    await clock.runAll();
    expect(fired).toEqual(['a@110', 'b@150', 'c@600']);
    expect(clock.sleeps).toEqual([50, 10, 500]);
  });

  it('rejects a sleep when its signal aborts, and drops the timer', async () => {
    const clock = createManualClock();
    const controller = new AbortController();
    const slept = clock.sleep(1_000, controller.signal);
    controller.abort('cancelled');
    await expect(slept).rejects.toBe('cancelled');
    expect(clock.pending()).toEqual([]);
    await expect(clock.sleep(1, AbortSignal.abort('already'))).rejects.toBe('already');
  });
});

describe('seededRandom', () => {
  it('is reproducible and stays in [0, 1)', () => {
    const a = seededRandom(1);
    const b = seededRandom(1);
    for (let i = 0; i < 10_000; i++) {
      const x = a();
      expect(x).toBe(b());
      expect(x >= 0 && x < 1).toBe(true);
    }
    expect(seededRandom(2)()).not.toBe(seededRandom(1)());
  });
});
