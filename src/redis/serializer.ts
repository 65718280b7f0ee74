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

function kind(value: unknown): string | undefined {
  switch (typeof value) {
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    case 'bigint':
      return `a bigint (${value}n)`;
    case 'number':
      return Number.isFinite(value) ? undefined : `the number ${value}`;
    case 'object':
      if (value instanceof Map) return 'a Map';
      if (value instanceof Set) return 'a Set';
      return undefined;
    default:
      return undefined;
  }
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
 * JSON, strictly: a value that JSON would silently change or drop (functions, symbols,
 * bigints, NaN and ±Infinity, Maps and Sets, cycles) is refused with a `TypeError` naming where
 * it sits, instead of being stored as something else. Dates become ISO strings, as in
 * `JSON.stringify`. `undefined` (a function that returns nothing) round-trips as `undefined`.
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
        const problem = kind(v);
        if (problem !== undefined) {
          const where = key === '' ? 'result' : `result${[...path, key].map(segment).join('')}`;
          throw new TypeError(`${where} is ${problem}, which JSON can't store`);
        }
        if (typeof v === 'object' && v !== null && !(v instanceof Date)) {
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
