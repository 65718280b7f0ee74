import { createHash } from 'node:crypto';
import { setLongTimeout } from '../core/clock.js';
import { StoreUnavailableError } from '../core/errors.js';
import type { RedisClientLike } from './client.js';

/** A Lua script with its SHA1, ready for EVALSHA. */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

/** Wraps a script's source (a bundled `.lua` file) with its SHA1. */
export function defineScript(name: string, source: string): LuaScript {
  return Object.freeze({ name, source, sha: createHash('sha1').update(source).digest('hex') });
}

/** Options of {@link runScript}. */
export interface RunScriptOptions {
  /** Name of the operation, for {@link StoreUnavailableError}. */
  readonly operation: string;
  /**
   * Fail with {@link StoreUnavailableError} if Redis has not answered within this many
   * milliseconds, so that a hung server doesn't hang callers. 0 disables the limit.
   */
  readonly timeoutMs: number;
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * Runs `script` with EVALSHA, falling back to EVAL when the server doesn't have it cached
 * (NOSCRIPT: first use, or after a restart or `SCRIPT FLUSH`). Any other failure, and a
 * timeout, rejects with {@link StoreUnavailableError}. Scripts report expected outcomes as
 * return values, never as errors.
 */
export function runScript(
  client: RedisClientLike,
  script: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
  options: RunScriptOptions,
): Promise<unknown> {
  return runCommand(options, () =>
    client
      .evalsha(script.sha, keys.length, ...keys, ...args)
      .catch((error: unknown) =>
        isNoScript(error)
          ? client.eval(script.source, keys.length, ...keys, ...args)
          : Promise.reject(error),
      ),
  );
}

/**
 * Runs one Redis call under the same rules as {@link runScript}: a timeout, and any failure
 * mapped to {@link StoreUnavailableError}. One promise and at most one timer per call: this
 * sits on the hot path of every limiter and store operation.
 */
export function runCommand(
  options: RunScriptOptions,
  call: () => Promise<unknown>,
): Promise<unknown> {
  const { operation, timeoutMs } = options;
  let pending: Promise<unknown>;
  try {
    pending = call();
  } catch (error) {
    return Promise.reject(unavailable(operation, error));
  }
  return new Promise((resolve, reject) => {
    let cancel: (() => void) | undefined;
    if (timeoutMs > 0) {
      cancel = setLongTimeout(
        () => {
          reject(
            new StoreUnavailableError(
              operation,
              new Error(`Redis did not answer within ${timeoutMs} ms`),
            ),
          );
        },
        timeoutMs,
        true,
      );
    }
    pending.then(
      (value) => {
        cancel?.();
        resolve(value);
      },
      (error: unknown) => {
        cancel?.();
        reject(unavailable(operation, error));
      },
    );
  });
}

function unavailable(operation: string, error: unknown): StoreUnavailableError {
  return error instanceof StoreUnavailableError
    ? error
    : new StoreUnavailableError(operation, error);
}

/**
 * The cluster-safe base key of one item: every key of the item shares the hash tag
 * `{prefix:id}`, so a script touching them runs on one slot of a Redis Cluster.
 */
export function hashTag(prefix: string, id: string): string {
  return `{${prefix}:${id}}`;
}
