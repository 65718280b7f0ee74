import { describe, expect, it } from 'vitest';
import { PermanentError, RetryError } from '../errors.js';
import { attemptOf, errorCodeOf } from './failure.js';

class PlatformError extends Error {
  readonly errorCode = 130429;
}

describe('errorCodeOf', () => {
  it('prefers the classification, then errorCode, then code', () => {
    expect(
      errorCodeOf(new Error('x'), { retryable: true, reason: 'rate_limited', errorCode: 4 }),
    ).toBe(4);
    expect(errorCodeOf(Object.assign(new PlatformError('x'), { code: 'ERR' }))).toBe(130429);
    expect(errorCodeOf(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('ECONNRESET');
  });

  it("skips a retrykit error's family code and reads what it wraps", () => {
    expect(errorCodeOf(new PermanentError(new PlatformError('limit')))).toBe(130429);
    const reset = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    expect(errorCodeOf(new RetryError('max_attempts', [], reset))).toBe('ECONNRESET');
    expect(errorCodeOf(new PermanentError('plain'))).toBeUndefined();
  });

  it('builds a dead-letter attempt with the code when there is one', () => {
    expect(
      attemptOf(new PlatformError('limit'), { retryable: true, reason: 'rate_limited' }, 't'),
    ).toEqual({
      message: 'limit',
      errorCode: 130429,
      reason: 'rate_limited',
      at: 't',
    });
  });
});
