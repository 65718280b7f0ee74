/**
 * Turns stored results into strings and back. The default, {@link jsonSerializer}, suits
 * plain data; plug in your own (e.g. superjson, MessagePack as base64) for richer values.
 *
 * @example
 * import superjson from 'superjson';
 * const serializer: Serializer = {
 *   serialize: (value) => superjson.stringify(value),
 *   deserialize: (text) => superjson.parse(text),
 * };
 */
export interface Serializer {
  /**
   * The string to store. Throw (a `TypeError` naming what is wrong) for a value that can't be
   * stored faithfully: nothing is written then.
   */
  serialize(value: unknown): string;
  /** The value back from a string that `serialize` produced. */
  deserialize(text: string): unknown;
}

/**
 * Why JSON would store `value` as something else, or `undefined` when it stores it
 * faithfully. `value` is the property as it sits in its holder, before any `toJSON`.
 */
function kind(value: unknown): string | undefined {
  switch (typeof value) {
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    case 'bigint':
      return `a bigint (${value}n)`;
    case 'number':
      return Number.isFinite(value) ? undefined : `the number ${value}`;
    case 'object':
      return value === null ? undefined : objectKind(value);
    default:
      return undefined;
  }
}

function objectKind(value: object): string | undefined {
  if (Array.isArray(value)) return undefined;
  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? 'an invalid Date' : undefined;
  }
  if (value instanceof Map) return 'a Map';
  if (value instanceof Set) return 'a Set';
  if (value instanceof Error) return `an Error (${value.name})`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor?.name ?? 'typed array'}`;
  if (value instanceof ArrayBuffer) return 'an ArrayBuffer';
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== ''
      ? `an instance of ${name}`
      : 'an instance of a class';
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return 'an object with a toJSON method';
  }
  if (Object.getOwnPropertySymbols(value).length > 0) return 'an object with symbol keys';
  return undefined;
}

/** A value JSON stores as is, with no walk needed: a string, boolean, finite number or null. */
function isPlainScalar(value: unknown): boolean {
  return (
    value === null ||
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    (typeof value === 'number' && Number.isFinite(value))
  );
}

/**
 * JSON, strictly: a value that JSON would silently change or drop is refused with a
 * `TypeError` naming where it sits (`result.items[1] is undefined`), instead of being stored
 * as something else: functions, symbols, bigints, NaN and ±Infinity, `undefined` inside an
 * object or array (JSON drops the property, or makes it `null`), Errors, Maps and Sets, typed
 * arrays, Buffers and ArrayBuffers, class instances and objects with `toJSON` (JSON keeps only
 * their own enumerable fields), objects with symbol keys, invalid Dates, and cycles. Plain
 * objects, arrays, strings, finite numbers, booleans and `null` are stored as they are. The
 * two mappings: a valid Date becomes its ISO string, as in `JSON.stringify`, and comes back as
 * that string; `-0` comes back as `0`. A top-level `undefined` (a function that returns nothing) round-trips as
 * `undefined`.
 */
export const jsonSerializer: Serializer = Object.freeze({
  serialize(value: unknown): string {
    if (value === undefined) return '';
    if (isPlainScalar(value)) return JSON.stringify(value);
    const path: string[] = [];
    const parents: unknown[] = [];
    let text: string | undefined;
    try {
      text = JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
        while (parents.length > 0 && parents[parents.length - 1] !== this) {
          parents.pop();
          path.pop();
        }
        const problem = kind((this as Record<string, unknown>)[key]);
        if (problem !== undefined) {
          const where = key === '' ? 'result' : `result${[...path, key].map(segment).join('')}`;
          throw new TypeError(`${where} is ${problem}, which JSON can't store`);
        }
        if (typeof v === 'object' && v !== null) {
          if (key !== '') path.push(key);
          parents.push(v);
        }
        return v;
      });
    } catch (error) {
      if (error instanceof TypeError && error.message.includes("which JSON can't store")) {
        throw error;
      }
      const reason = error instanceof Error ? error.message : String(error);
      throw new TypeError(`result can't be stored as JSON: ${reason}`, { cause: error });
    }
    if (text === undefined) throw new TypeError("result can't be stored as JSON");
    return text;
  },
  deserialize(text: string): unknown {
    return text === '' ? undefined : JSON.parse(text);
  },
});

function segment(key: string): string {
  return /^\d+$/.test(key)
    ? `[${key}]`
    : /^[A-Za-z_$][\w$]*$/.test(key)
      ? `.${key}`
      : `[${JSON.stringify(key)}]`;
}
