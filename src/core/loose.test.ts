import { describe, expect, it } from 'vitest';
import { headerValue, isObject, isRecord } from './loose.js';

describe('headerValue', () => {
  it('reads fetch Headers and plain records alike, case-insensitive', () => {
    const fetchHeaders = new Headers({ 'Retry-After': '30' });
    expect(headerValue(fetchHeaders, 'retry-after')).toBe('30');
    expect(headerValue({ 'Retry-After': '30' }, 'retry-after')).toBe('30');
    expect(headerValue({ 'retry-after': 30 }, 'Retry-After')).toBe('30');
    expect(headerValue({ 'x-hub-signature-256': ['sha256=ab'] }, 'X-Hub-Signature-256')).toBe(
      'sha256=ab',
    );
  });

  it('is undefined when absent, repeated or not text', () => {
    expect(headerValue(undefined, 'retry-after')).toBeUndefined();
    expect(headerValue('retry-after: 3', 'retry-after')).toBeUndefined();
    expect(headerValue({}, 'retry-after')).toBeUndefined();
    expect(headerValue({ 'x-hub-signature-256': ['a', 'b'] }, 'x-hub-signature-256')).toBe(
      undefined,
    );
    expect(headerValue({ 'retry-after': { at: 3 } }, 'retry-after')).toBeUndefined();
    expect(headerValue({ get: () => null }, 'retry-after')).toBeUndefined();
  });
});

describe('isObject and isRecord', () => {
  it('tell objects, arrays and the rest apart', () => {
    expect([{}, [], null, 'x', 1].map(isObject)).toEqual([true, true, false, false, false]);
    expect([{}, [], null, 'x', 1].map(isRecord)).toEqual([true, false, false, false, false]);
  });
});
