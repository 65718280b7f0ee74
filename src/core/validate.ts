/** Option validation shared by every feature: each error names the option and the value. */

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

/** Throws unless `value` is a finite number ≥ `min` (and ≤ `max` when given). */
export function assertNumber(name: string, value: unknown, min = 0, max = Infinity): number {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new TypeError(`${name} must be a number, got ${show(value)}`);
  }
  if (!Number.isFinite(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `between ${min} and ${max}`;
    throw new RangeError(`${name} must be a finite number ${range}, got ${show(value)}`);
  }
  return value;
}

/** Throws unless `value` is an integer ≥ `min` (and ≤ `max` when given). */
export function assertInteger(
  name: string,
  value: unknown,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  assertNumber(name, value, min, max);
  if (!Number.isInteger(value)) {
    throw new RangeError(`${name} must be an integer, got ${show(value)}`);
  }
  return value as number;
}

/** Throws unless `value` is a non-empty string. */
export function assertKey(name: string, value: unknown): string {
  if (typeof value !== 'string')
    throw new TypeError(`${name} must be a string, got ${show(value)}`);
  if (value.length === 0) throw new RangeError(`${name} must not be empty`);
  return value;
}

/** Throws unless `value` is a function (or `undefined` when `optional`). */
export function assertFunction(name: string, value: unknown): void {
  if (typeof value !== 'function')
    throw new TypeError(`${name} must be a function, got ${show(value)}`);
}

/** Throws unless `value` is one of `allowed`. */
export function assertOneOf<T extends string>(
  name: string,
  value: unknown,
  allowed: readonly T[],
): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new TypeError(
      `${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${show(value)}`,
    );
  }
  return value as T;
}

export { show as showValue };

/**
 * Refuses an option retrykit renamed (0.2), naming the new one, so that a caller still passing
 * the old name sees what to change instead of having it ignored.
 */
export function assertNoRenamedOptions(
  options: object,
  renamed: Readonly<Record<string, string>>,
): void {
  for (const old in renamed) {
    if (Object.hasOwn(options, old)) {
      throw new TypeError(`${old} was renamed in retrykit 0.2: use ${renamed[old]}`);
    }
  }
}
