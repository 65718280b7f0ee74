import { describe, expect, it } from 'vitest';
import { backoffFromEnv } from './env.js';

describe('backoffFromEnv', () => {
  it('reads every variable', () => {
    expect(
      backoffFromEnv({
        RETRY_INITIAL_DELAY_MS: '500',
        RETRY_MULTIPLIER: '3',
        RETRY_MAX_DELAY_MS: '60000',
        RETRY_JITTER: 'proportional',
        RETRY_JITTER_RATIO: '0.1',
        RETRY_MAX_ATTEMPTS: '7',
        RETRY_MAX_ELAPSED_MS: '3600000',
      }),
    ).toEqual({
      backoff: {
        initialDelayMs: 500,
        multiplier: 3,
        maxDelayMs: 60_000,
        jitter: 'proportional',
        jitterRatio: 0.1,
      },
      maxAttempts: 7,
      maxElapsedMs: 3_600_000,
    });
  });

  it('leaves unset and empty variables out, so defaults apply', () => {
    expect(backoffFromEnv({ RETRY_MULTIPLIER: '', OTHER: '1' })).toEqual({ backoff: {} });
  });

  it('honours a prefix', () => {
    expect(backoffFromEnv({ WA_RETRY_MAX_ATTEMPTS: '3' }, 'WA_RETRY_')).toEqual({
      backoff: {},
      maxAttempts: 3,
    });
  });

  it.each([
    [{ RETRY_INITIAL_DELAY_MS: 'abc' }, /RETRY_INITIAL_DELAY_MS.*"abc"/],
    [{ RETRY_MULTIPLIER: '0.5' }, /RETRY_MULTIPLIER.*0\.5/],
    [{ RETRY_MAX_DELAY_MS: '-1' }, /RETRY_MAX_DELAY_MS.*-1/],
    [{ RETRY_JITTER: 'lots' }, /RETRY_JITTER.*"lots"/],
    [{ RETRY_JITTER_RATIO: '2' }, /RETRY_JITTER_RATIO.*2/],
    [{ RETRY_MAX_ATTEMPTS: '2.5' }, /RETRY_MAX_ATTEMPTS.*"2\.5"/],
    [{ RETRY_MAX_ATTEMPTS: '0' }, /RETRY_MAX_ATTEMPTS.*"0"/],
    [{ RETRY_MAX_ELAPSED_MS: 'Infinity' }, /RETRY_MAX_ELAPSED_MS.*"Infinity"/],
  ])('rejects %o naming the variable and value', (env, message) => {
    expect(() => backoffFromEnv(env)).toThrow(message);
  });
});
