import { describe, expect, it } from 'vitest';
import { HISTORY_FIELD, historyOf } from './processor.js';

describe('historyOf', () => {
  it('reads failures kept on a job by retrykit 0.1, whose error code was `code`, as `errorCode`', () => {
    const data = JSON.parse(`{
      "to": "15551234567",
      "${HISTORY_FIELD}": [
        { "message": "(#130429) Rate limit hit", "code": 130429, "reason": "rate_limited", "at": "2025-06-01T10:00:00.000Z" },
        { "message": "HTTP 503", "reason": "service_unavailable", "at": "2025-06-01T10:00:04.000Z" }
      ]
    }`);
    expect(historyOf(data)).toEqual([
      {
        message: '(#130429) Rate limit hit',
        errorCode: 130429,
        reason: 'rate_limited',
        at: '2025-06-01T10:00:00.000Z',
      },
      { message: 'HTTP 503', reason: 'service_unavailable', at: '2025-06-01T10:00:04.000Z' },
    ]);
  });
});
