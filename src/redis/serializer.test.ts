import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonSerializer } from './serializer.js';

describe('jsonSerializer', () => {
  it('round-trips any JSON value, and undefined', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const back = jsonSerializer.deserialize(jsonSerializer.serialize(value));
        expect(back).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
    expect(jsonSerializer.deserialize(jsonSerializer.serialize(undefined))).toBeUndefined();
    expect(jsonSerializer.serialize('')).toBe('""');
  });

  it('stores Dates as ISO strings, as JSON does', () => {
    const at = new Date('2026-11-23T13:00:00.000Z');
    expect(jsonSerializer.deserialize(jsonSerializer.serialize({ at }))).toEqual({
      at: '2026-11-23T13:00:00.000Z',
    });
  });

  it('names where a value JSON would change or drop sits', () => {
    expect(() => jsonSerializer.serialize({ a: [{ b: () => 1 }] })).toThrow(
      'result.a[0].b is a function',
    );
    expect(() => jsonSerializer.serialize({ 'x-y': { z: Number.POSITIVE_INFINITY } })).toThrow(
      'result["x-y"].z is the number Infinity',
    );
    expect(() => jsonSerializer.serialize({ a: {}, b: new Set([1]) })).toThrow('result.b is a Set');
    expect(() => jsonSerializer.serialize(() => 1)).toThrow(TypeError);
    expect(() => jsonSerializer.serialize(Number.NaN)).toThrow('result is the number NaN');
    expect(() => jsonSerializer.serialize(-Infinity)).toThrow('result is the number -Infinity');
  });
});
