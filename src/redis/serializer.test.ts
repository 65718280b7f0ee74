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

  it('refuses nested undefined, Errors, typed arrays and class instances, naming the path', () => {
    expect(() => jsonSerializer.serialize({ a: 1, b: undefined })).toThrow(
      "result.b is undefined, which JSON can't store",
    );
    expect(() => jsonSerializer.serialize([1, undefined])).toThrow('result[1] is undefined');
    // biome-ignore lint/suspicious/noSparseArray: a hole is what is tested
    expect(() => jsonSerializer.serialize({ list: [1, , 3] })).toThrow(
      'result.list[1] is undefined',
    );
    expect(() => jsonSerializer.serialize({ error: new RangeError('x') })).toThrow(
      'result.error is an Error (RangeError)',
    );
    expect(() => jsonSerializer.serialize({ bytes: new Uint8Array([1]) })).toThrow(
      'result.bytes is a Uint8Array',
    );
    expect(() => jsonSerializer.serialize({ raw: Buffer.from('hi') })).toThrow(
      'result.raw is a Buffer',
    );
    expect(() => jsonSerializer.serialize({ raw: new ArrayBuffer(2) })).toThrow(
      'result.raw is an ArrayBuffer',
    );
    class Money {
      constructor(readonly cents: number) {}
    }
    expect(() => jsonSerializer.serialize({ total: new Money(5) })).toThrow(
      'result.total is an instance of Money',
    );
    expect(() => jsonSerializer.serialize(new Money(5))).toThrow('result is an instance of Money');
    expect(() => jsonSerializer.serialize({ v: { toJSON: () => 1 } })).toThrow(
      'result.v is an object with a toJSON method',
    );
    expect(() => jsonSerializer.serialize({ when: new Date(Number.NaN) })).toThrow(
      'result.when is an invalid Date',
    );
    expect(() => jsonSerializer.serialize({ [Symbol('s')]: 1 })).toThrow(
      'result is an object with symbol keys',
    );
    expect(() => jsonSerializer.serialize(/x/)).toThrow('result is an instance of RegExp');
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => jsonSerializer.serialize(cycle)).toThrow(TypeError);
  });

  it('stores any value exactly as given or refuses it with a TypeError', () => {
    const normalize = (v: unknown): unknown => {
      if (v instanceof Date) return v.toISOString();
      if (Object.is(v, -0)) return 0;
      if (Array.isArray(v)) return v.map(normalize);
      if (typeof v === 'object' && v !== null) {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
      }
      return v;
    };
    fc.assert(
      fc.property(
        fc.anything({
          withBoxedValues: true,
          withMap: true,
          withSet: true,
          withTypedArray: true,
          withDate: true,
          withSparseArray: true,
          withNullPrototype: true,
          withBigInt: true,
        }),
        (value) => {
          let text: string;
          try {
            text = jsonSerializer.serialize(value);
          } catch (error) {
            expect(error).toBeInstanceOf(TypeError);
            return;
          }
          expect(jsonSerializer.deserialize(text)).toStrictEqual(normalize(value));
        },
      ),
      { numRuns: 500 },
    );
  });
});
