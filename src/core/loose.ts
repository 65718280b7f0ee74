/** @internal Fields of a value whose shape is not known yet. */
export type Loose = Record<string, unknown>;

/** @internal A non-null object (an array too): its fields can be read. */
export function isObject(value: unknown): value is Loose {
  return typeof value === 'object' && value !== null;
}

/** @internal A non-null object that is not an array: a JSON object, a job's data. */
export function isRecord(value: unknown): value is Loose {
  return isObject(value) && !Array.isArray(value);
}

/**
 * One header's value, case-insensitive, from a fetch `Headers` or a plain record (Node's
 * `IncomingMessage.headers`, axios's): a number as its text, a one-item list as its item.
 * `undefined` when absent, sent more than once, or not text. Never throws for a plain value.
 */
export function headerValue(headers: unknown, name: string): string | undefined {
  if (!isObject(headers)) return undefined;
  if (typeof headers.get === 'function') {
    const value = (headers.get as (n: string) => unknown).call(headers, name);
    return typeof value === 'string' ? value : undefined;
  }
  const lower = name.toLowerCase();
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() !== lower) continue;
    const value = headers[key];
    if (typeof value === 'string') return value;
    if (typeof value === 'number') return String(value);
    if (Array.isArray(value) && value.length === 1 && typeof value[0] === 'string') return value[0];
    return undefined;
  }
  return undefined;
}
