import { assertOneOf } from './validate.js';

/**
 * What a component does when its store (Redis, say) can't answer, as the `onStoreError` option
 * of `idempotent` and of the Redis token bucket.
 * - `'fail'`: reject with the store's `StoreUnavailableError`; nothing runs, nothing is granted.
 * - `'proceed'`: go on without the store (`idempotent` runs `fn` unguarded, a limiter grants),
 *   trading the guarantee for availability.
 */
export type StoreErrorPolicy = 'fail' | 'proceed';

const POLICIES = ['fail', 'proceed'] as const satisfies readonly StoreErrorPolicy[];

/** Values of `onStoreError` before 0.2, and what each became. */
const RENAMED: Readonly<Record<string, StoreErrorPolicy>> = Object.freeze({
  throw: 'fail',
  reject: 'fail',
  run: 'proceed',
  allow: 'proceed',
});

/**
 * Checks an `onStoreError` value. A value retrykit used before 0.2 (`'throw'`, `'run'`,
 * `'reject'`, `'allow'`) is refused with the name to use instead: no silent alias.
 */
export function assertStoreErrorPolicy(value: unknown): StoreErrorPolicy {
  const renamed =
    typeof value === 'string' && Object.hasOwn(RENAMED, value) ? RENAMED[value] : undefined;
  if (renamed !== undefined) {
    throw new TypeError(
      `onStoreError: '${String(value)}' was renamed in retrykit 0.2: use onStoreError: '${renamed}'`,
    );
  }
  return assertOneOf('onStoreError', value, POLICIES);
}
