import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../testing/index.js';
import {
  createRetryRecord,
  InvalidRecordError,
  parseRetryRecord,
  type RetryRecord,
  recordFailure,
  serializeRetryRecord,
} from './retry-record.js';

const record: RetryRecord<{ object: string }> = {
  message_id: 'wamid.HBgLMTIzNDU2Nzg5MFVVAAYP',
  retry_count: 3,
  last_attempt: '2024-10-15T14:30:00Z',
  original_payload: { object: 'whatsapp_business_account' },
  failures: [
    {
      message: 'HTTP 503',
      errorCode: 503,
      reason: 'service_unavailable',
      at: '2024-10-15T14:29:00Z',
    },
    { message: 'socket hang up', reason: 'network', at: '2024-10-15T14:30:00.123+02:00' },
  ],
};

function errorOf(text: string): InvalidRecordError {
  try {
    parseRetryRecord(text);
  } catch (error) {
    if (error instanceof InvalidRecordError) return error;
    throw error;
  }
  throw new Error('parsed');
}

describe('retry records', () => {
  it('round-trips through serialize and parse', () => {
    expect(parseRetryRecord(serializeRetryRecord(record))).toEqual(record);
  });

  it('reads the common webhook-retry layout without failures, dropping unknown fields', () => {
    const text = JSON.stringify({
      message_id: 'wamid.X',
      retry_count: 0,
      last_attempt: '2024-10-15T14:30:00Z',
      original_payload: null,
      extra: true,
    });
    expect(parseRetryRecord(text)).toEqual({
      message_id: 'wamid.X',
      retry_count: 0,
      last_attempt: '2024-10-15T14:30:00Z',
      original_payload: null,
      failures: [],
    });
  });

  it.each([
    [{ retry_count: -1 }, 'retry_count', 'retry_count must be a non-negative integer, got -1'],
    [{ retry_count: 1.5 }, 'retry_count', 'retry_count must be a non-negative integer, got 1.5'],
    [{ retry_count: '2' }, 'retry_count', 'retry_count must be a non-negative integer, got "2"'],
    [{ message_id: '' }, 'message_id', 'message_id must be a non-empty string, got ""'],
    [{ message_id: 7 }, 'message_id', 'message_id must be a non-empty string, got 7'],
    [
      { last_attempt: 'Tuesday' },
      'last_attempt',
      'last_attempt must be an ISO 8601 time, got "Tuesday"',
    ],
    [
      { last_attempt: '2024-13-45T99:00:00Z' },
      'last_attempt',
      'last_attempt must be an ISO 8601 time, got "2024-13-45T99:00:00Z"',
    ],
    [
      { original_payload: undefined },
      'original_payload',
      'original_payload must be present, got undefined',
    ],
    [{ failures: {} }, 'failures', 'failures must be an array, got {}'],
    [
      { failures: [{ message: 'x', reason: 'oops', at: '2024-10-15T14:30:00Z' }] },
      'failures[0].reason',
      undefined,
    ],
    [
      { failures: [record.failures[0], { message: 'x', reason: 'timeout', at: 5 }] },
      'failures[1].at',
      'failures[1].at must be an ISO 8601 time, got 5',
    ],
    [
      {
        failures: [{ message: 'x', reason: 'timeout', at: '2024-10-15T14:30:00Z', errorCode: {} }],
      },
      'failures[0].errorCode',
      'failures[0].errorCode must be a string or a finite number, got {}',
    ],
    [
      { failures: [{ message: 'x', reason: 'timeout', at: '2024-10-15T14:30:00Z', code: {} }] },
      'failures[0].code',
      'failures[0].code must be a string or a finite number, got {}',
    ],
    [
      {
        failures: [
          { message: 'x', reason: 'rate_limited', at: '2024-10-15T14:30:00Z', deferredMs: -1 },
        ],
      },
      'failures[0].deferredMs',
      'failures[0].deferredMs must be a finite number >= 0, got -1',
    ],
    [
      {
        failures: [
          { message: 'x', reason: 'auth', at: '2024-10-15T14:30:00Z', deferredMs: 1, held: 1 },
        ],
      },
      'failures[0].held',
      'failures[0].held must be true or absent, got 1',
    ],
  ])('rejects %j naming %s', (patch, field, message) => {
    const error = errorOf(JSON.stringify({ ...record, ...patch }));
    expect(error.field).toBe(field);
    expect(error.code).toBe('INVALID_RECORD');
    expect(error.name).toBe('InvalidRecordError');
    if (message !== undefined) expect(error.message).toBe(message);
  });

  it('keeps the deferredMs of a failure that spent no attempt', () => {
    const deferred = {
      message: 'HTTP 429',
      errorCode: 130429,
      reason: 'rate_limited',
      at: '2024-10-15T14:30:00Z',
      deferredMs: 4000,
    };
    const back = parseRetryRecord(JSON.stringify({ ...record, failures: [deferred] }));
    expect(back.failures).toEqual([deferred]);
  });

  it('keeps the held mark of a deferral that was a hold', () => {
    const held = {
      message: 'Circuit "1616" is open: try again in 30000 ms',
      reason: 'auth',
      at: '2024-10-15T14:30:00Z',
      deferredMs: 30_000,
      held: true,
    };
    const back = parseRetryRecord(JSON.stringify({ ...record, failures: [held] }));
    expect(back.failures).toEqual([held]);
  });

  it('reads a 0.1 record, whose failures carry the error code as `code`, as `errorCode`', () => {
    const written = `{
      "message_id": "wamid.HBgLMTIzNDU2Nzg5MFVVAAYP",
      "retry_count": 2,
      "last_attempt": "2024-10-15T14:30:00.000Z",
      "original_payload": { "object": "whatsapp_business_account", "entry": [] },
      "failures": [
        { "message": "HTTP 400", "code": 130429, "reason": "rate_limited", "at": "2024-10-15T14:29:00.000Z" },
        { "message": "socket hang up", "code": "ECONNRESET", "reason": "network", "at": "2024-10-15T14:30:00.000Z" }
      ]
    }`;
    const read = parseRetryRecord(written);
    expect(read.failures).toEqual([
      {
        message: 'HTTP 400',
        errorCode: 130429,
        reason: 'rate_limited',
        at: '2024-10-15T14:29:00.000Z',
      },
      {
        message: 'socket hang up',
        errorCode: 'ECONNRESET',
        reason: 'network',
        at: '2024-10-15T14:30:00.000Z',
      },
    ]);
    expect(JSON.parse(serializeRetryRecord(read)).failures[0]).not.toHaveProperty('code');
    const both = JSON.parse(written);
    both.failures[0] = { ...both.failures[0], code: 1, errorCode: 131056 };
    expect(parseRetryRecord(JSON.stringify(both)).failures[0]?.errorCode).toBe(131056);
  });

  it('rejects text that is not JSON or not an object', () => {
    expect(errorOf('{').field).toBe('record');
    expect(errorOf('[]').message).toBe('record must be an object, got []');
  });

  it('refuses to serialize a record that would not parse back', () => {
    expect(() => serializeRetryRecord({ ...record, retry_count: Number.NaN })).toThrow(
      'retry_count must be a non-negative integer, got NaN',
    );
  });

  it('accepts exactly the non-negative safe integers as retry_count', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.double(), fc.maxSafeInteger()), (n) => {
        const ok = Number.isSafeInteger(n) && n >= 0;
        const text = JSON.stringify({ ...record, retry_count: n });
        if (ok) expect(parseRetryRecord(text).retry_count).toBe(n + 0);
        else expect(() => parseRetryRecord(text)).toThrow(InvalidRecordError);
      }),
    );
  });
});

describe('createRetryRecord and recordFailure', () => {
  it('start at zero, then count each failure with its classified reason', async () => {
    const clock = createManualClock(Date.parse('2026-05-01T12:00:00.000Z'));
    const fresh = createRetryRecord('wamid.9', { text: 'hi' }, { clock });
    expect(fresh).toEqual({
      message_id: 'wamid.9',
      retry_count: 0,
      last_attempt: '2026-05-01T12:00:00.000Z',
      original_payload: { text: 'hi' },
      failures: [],
    });
    await clock.advance(1500);
    const error = Object.assign(new Error('HTTP 429'), { status: 429, code: 130_429 });
    const next = recordFailure(fresh, error, { clock });
    expect(next).toEqual({
      ...fresh,
      retry_count: 1,
      last_attempt: '2026-05-01T12:00:01.500Z',
      failures: [
        {
          message: 'HTTP 429',
          errorCode: 130_429,
          reason: 'rate_limited',
          at: '2026-05-01T12:00:01.500Z',
        },
      ],
    });
    expect(fresh.failures).toEqual([]);
    expect(parseRetryRecord(serializeRetryRecord(next))).toEqual(next);
    expect(() => createRetryRecord('', 1)).toThrow('message_id must be a non-empty string, got ""');
  });
});
