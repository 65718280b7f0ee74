import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../testing/index.js';
import { PermanentError, RetryError } from '../errors.js';
import { retry } from '../retry/retry.js';
import { toDeadLetter } from './dead-letter.js';

function httpError(status: number, extra: object = {}): Error {
  return Object.assign(new Error(`HTTP ${status}`), { status, ...extra });
}

describe('toDeadLetter', () => {
  it('turns an exhausted retry into an exhausted dead letter with every attempt', async () => {
    const clock = createManualClock(Date.parse('2026-03-01T10:00:00.000Z'));
    const run = retry(
      () => {
        throw httpError(503, { code: 'E503' });
      },
      { clock, maxAttempts: 3, backoff: { initialDelayMs: 1000, jitter: 'none' } },
    ).catch((e: unknown) => e);
    await clock.runAll();
    const error = await run;
    expect(error).toBeInstanceOf(RetryError);
    const letter = toDeadLetter(error, { payload: { to: '123' }, id: 'wamid.1', source: 'send' });
    expect(letter).toEqual({
      id: 'wamid.1',
      payload: { to: '123' },
      reason: 'service_unavailable',
      disposition: 'exhausted',
      attempts: [
        {
          message: 'HTTP 503',
          errorCode: 'E503',
          reason: 'service_unavailable',
          at: '2026-03-01T10:00:00.000Z',
        },
        {
          message: 'HTTP 503',
          errorCode: 'E503',
          reason: 'service_unavailable',
          at: '2026-03-01T10:00:01.000Z',
        },
        {
          message: 'HTTP 503',
          errorCode: 'E503',
          reason: 'service_unavailable',
          at: '2026-03-01T10:00:03.000Z',
        },
      ],
      firstAttemptAt: '2026-03-01T10:00:00.000Z',
      lastAttemptAt: '2026-03-01T10:00:03.000Z',
      source: 'send',
    });
  });

  it('keeps the transient failures retry saw before the permanent one', async () => {
    const clock = createManualClock(Date.parse('2026-03-01T10:00:00.000Z'));
    const statuses = [503, 422];
    let call = 0;
    const result = retry(
      () => {
        throw httpError(statuses[call++] as number);
      },
      { clock, backoff: { initialDelayMs: 1000, jitter: 'none' } },
    ).catch((e: unknown) => e);
    await clock.runAll();
    await clock.advance(5000);
    const letter = toDeadLetter(await result, { payload: 'p', clock });
    expect(letter).toMatchObject({
      reason: 'schema_mismatch',
      disposition: 'permanent',
      attempts: [
        { message: 'HTTP 503', reason: 'service_unavailable', at: '2026-03-01T10:00:00.000Z' },
        { message: 'HTTP 422', reason: 'schema_mismatch', at: '2026-03-01T10:00:01.000Z' },
      ],
      firstAttemptAt: '2026-03-01T10:00:00.000Z',
      lastAttemptAt: '2026-03-01T10:00:01.000Z',
    });
  });

  it('turns a permanent failure into a permanent dead letter, after any history', async () => {
    const clock = createManualClock(Date.parse('2026-03-01T10:00:00.000Z'));
    const error = await retry(
      () => {
        throw httpError(422);
      },
      { clock },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentError);
    const history = [
      { message: 'HTTP 500', reason: 'server_error' as const, at: '2026-03-01T09:00:00.000Z' },
    ];
    const letter = toDeadLetter(error, { payload: 'p', history, clock });
    expect(letter).toMatchObject({
      reason: 'schema_mismatch',
      disposition: 'permanent',
      attempts: [
        history[0],
        { message: 'HTTP 422', reason: 'schema_mismatch', at: '2026-03-01T10:00:00.000Z' },
      ],
      firstAttemptAt: '2026-03-01T09:00:00.000Z',
      lastAttemptAt: '2026-03-01T10:00:00.000Z',
    });
    expect(letter).not.toHaveProperty('id');
  });

  it('classifies any other error, with a custom classifier and the classification code', () => {
    const clock = createManualClock(0);
    const letter = toDeadLetter(new Error('boom'), {
      payload: 1,
      clock,
      classify: () => ({ retryable: false, reason: 'policy', errorCode: 131_047 }),
    });
    expect(letter).toMatchObject({
      reason: 'policy',
      disposition: 'permanent',
      attempts: [
        { message: 'boom', errorCode: 131_047, reason: 'policy', at: '1970-01-01T00:00:00.000Z' },
      ],
    });
    expect(toDeadLetter(new Error('odd'), { payload: 1, clock })).toMatchObject({
      reason: 'unknown',
      disposition: 'exhausted',
    });
    expect(toDeadLetter(new PermanentError(httpError(401)), { payload: 1, clock })).toMatchObject({
      reason: 'auth',
      disposition: 'permanent',
      attempts: [{ message: 'HTTP 401' }],
    });
  });
});
