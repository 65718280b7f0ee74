import { type BackoffOptions, JITTER_KINDS, type JitterKind, resolveBackoff } from './backoff.js';

/** What {@link backoffFromEnv} reads: backoff plus the two retry limits. */
export interface EnvRetryOptions {
  readonly backoff: BackoffOptions;
  readonly maxAttempts?: number;
  readonly maxElapsedMs?: number;
}

function ambientEnv(): Record<string, string | undefined> {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env ?? {};
}

/**
 * Reads retry settings from environment variables so they can be tuned without a deploy:
 * `RETRY_INITIAL_DELAY_MS`, `RETRY_MULTIPLIER`, `RETRY_MAX_DELAY_MS`, `RETRY_JITTER`,
 * `RETRY_JITTER_RATIO`, `RETRY_MAX_ATTEMPTS`, `RETRY_MAX_ELAPSED_MS` (with `prefix` in place
 * of `RETRY_`). Unset or empty variables are left out, so defaults apply. A bad value throws
 * an error naming the variable and the value.
 *
 * @example
 * const retryWith = createRetry({ ...backoffFromEnv(), classify });
 */
export function backoffFromEnv(
  env: Record<string, string | undefined> = ambientEnv(),
  prefix = 'RETRY_',
): EnvRetryOptions {
  const read = (name: string, kind: 'number' | 'integer'): number | undefined => {
    const raw = env[prefix + name];
    if (raw === undefined || raw.trim() === '') return undefined;
    const value = Number(raw.trim());
    if (!Number.isFinite(value) || (kind === 'integer' && !Number.isInteger(value))) {
      throw new TypeError(
        `${prefix}${name} must be ${kind === 'integer' ? 'an integer' : 'a number'}, got "${raw}"`,
      );
    }
    return value;
  };
  const backoff: { -readonly [K in keyof BackoffOptions]: BackoffOptions[K] } = {};
  const initialDelayMs = read('INITIAL_DELAY_MS', 'number');
  const multiplier = read('MULTIPLIER', 'number');
  const maxDelayMs = read('MAX_DELAY_MS', 'number');
  const jitterRatio = read('JITTER_RATIO', 'number');
  const jitterRaw = env[`${prefix}JITTER`]?.trim();
  if (initialDelayMs !== undefined) backoff.initialDelayMs = initialDelayMs;
  if (multiplier !== undefined) backoff.multiplier = multiplier;
  if (maxDelayMs !== undefined) backoff.maxDelayMs = maxDelayMs;
  if (jitterRatio !== undefined) backoff.jitterRatio = jitterRatio;
  if (jitterRaw !== undefined && jitterRaw !== '') {
    if (!(JITTER_KINDS as readonly string[]).includes(jitterRaw)) {
      throw new TypeError(
        `${prefix}JITTER must be one of ${JITTER_KINDS.join(', ')}, got "${jitterRaw}"`,
      );
    }
    backoff.jitter = jitterRaw as JitterKind;
  }
  try {
    resolveBackoff(backoff);
  } catch (error) {
    const message = (error as Error).message.replace(/^backoff\.(\w+)/, (_, option: string) => {
      const variable = option.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
      return `${prefix}${variable}`;
    });
    throw error instanceof RangeError ? new RangeError(message) : new TypeError(message);
  }
  const result: { -readonly [K in keyof EnvRetryOptions]: EnvRetryOptions[K] } = { backoff };
  const maxAttempts = read('MAX_ATTEMPTS', 'integer');
  const maxElapsedMs = read('MAX_ELAPSED_MS', 'number');
  if (maxAttempts !== undefined) {
    if (maxAttempts < 1)
      throw new RangeError(
        `${prefix}MAX_ATTEMPTS must be >= 1, got "${env[`${prefix}MAX_ATTEMPTS`]}"`,
      );
    result.maxAttempts = maxAttempts;
  }
  if (maxElapsedMs !== undefined) {
    if (maxElapsedMs < 0)
      throw new RangeError(
        `${prefix}MAX_ELAPSED_MS must be >= 0, got "${env[`${prefix}MAX_ELAPSED_MS`]}"`,
      );
    result.maxElapsedMs = maxElapsedMs;
  }
  return result;
}
