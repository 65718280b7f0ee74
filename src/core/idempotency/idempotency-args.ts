import { assertKey, assertNumber, showValue } from '../validate.js';
import type { ClaimOptions } from './idempotency-types.js';

// Argument checks shared by the store adapters: memory, Redis and PostgreSQL reject the same
// bad input with the same message.

/** The longest lease or TTL a store accepts, in milliseconds (about 285,000 years). */
const MAX_MS = Number.MAX_SAFE_INTEGER;

/** Throws unless `key` is a non-empty string. */
export function checkKey(key: unknown): string {
  return assertKey('key', key);
}

/** Validates `claim` options; returns the lease rounded up to whole milliseconds. */
export function checkClaim(
  key: unknown,
  options: ClaimOptions | undefined,
): { leaseMs: number; fingerprint: string | undefined; requestId: string | undefined } {
  checkKey(key);
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`claim options must be an object with leaseMs, got ${showValue(options)}`);
  }
  const leaseMs = Math.ceil(assertNumber('leaseMs', options.leaseMs, 1, MAX_MS));
  const fingerprint =
    options.fingerprint === undefined ? undefined : assertKey('fingerprint', options.fingerprint);
  const requestId =
    options.requestId === undefined ? undefined : assertKey('requestId', options.requestId);
  return { leaseMs, fingerprint, requestId };
}

/** Validates a fencing token. */
export function checkToken(token: unknown): string {
  return assertKey('token', token);
}

/** Validates a TTL in milliseconds and rounds it up to whole milliseconds. */
export function checkTtl(ttlMs: unknown, name = 'ttlMs'): number {
  return Math.ceil(assertNumber(name, ttlMs, 1, MAX_MS));
}

/** Validates `complete` options. */
export function checkCompleteOptions(options: unknown): number {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      `complete options must be an object with resultTtlMs, got ${showValue(options)}`,
    );
  }
  return checkTtl((options as { resultTtlMs?: unknown }).resultTtlMs, 'resultTtlMs');
}

interface CryptoLike {
  randomUUID?: () => string;
  getRandomValues?: (array: Uint8Array) => Uint8Array;
}

/**
 * A fresh fencing token: a random UUID (122 random bits) from the Web Crypto API, so a worker
 * can't guess another's token. Runtime-neutral: `globalThis.crypto` exists in Node ≥ 19, Deno,
 * Bun, browsers and edge runtimes.
 */
export function fencingToken(): string {
  const crypto = (globalThis as { crypto?: CryptoLike }).crypto;
  if (crypto?.randomUUID) return crypto.randomUUID();
  if (crypto?.getRandomValues) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }
  throw new Error(
    'retrykit needs globalThis.crypto (Web Crypto) to make fencing tokens; on Node 18 run with --experimental-global-webcrypto',
  );
}
