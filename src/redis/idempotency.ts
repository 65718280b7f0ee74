import { createBackgroundRetries } from '../core/background-retries.js';
import { type Clock, systemClock } from '../core/clock.js';
import { StoreUnavailableError } from '../core/errors.js';
import { type EventListener, emit } from '../core/events.js';
import {
  checkClaim,
  checkCompleteOptions,
  checkKey,
  checkToken,
  checkTtl,
  fencingToken,
} from '../core/idempotency/idempotency-args.js';
import type {
  ClaimOptions,
  ClaimResult,
  IdempotencyStore,
} from '../core/idempotency/idempotency-types.js';
import {
  assertFunction,
  assertKey,
  assertNoRenamedOptions,
  assertNumber,
} from '../core/validate.js';
import type { RedisClientLike } from './client.js';
import { replicaWaiter, type WaitForReplicas } from './replicas.js';
import { defineScript, hashTag, runCommand, runScript } from './script.js';
import claimSource from './scripts/idempotency-claim.lua';
import completeSource from './scripts/idempotency-complete.lua';
import markOnceSource from './scripts/idempotency-mark-once.lua';
import releaseSource from './scripts/idempotency-release.lua';
import { jsonSerializer, type Serializer } from './serializer.js';

const claimScript = defineScript('idempotency-claim', claimSource);
const completeScript = defineScript('idempotency-complete', completeSource);
const releaseScript = defineScript('idempotency-release', releaseSource);
const markOnceScript = defineScript('idempotency-mark-once', markOnceSource);

/** Options of {@link createRedisIdempotencyStore}. */
export interface RedisIdempotencyStoreOptions {
  /**
   * Namespace of every key. A claim of `key` lives at `{prefix:key}` and a `markOnce` mark at
   * `{prefix:key}:once`; the braces are a Redis Cluster hash tag.
   *
   * @example 'myapp:idem'
   */
  readonly prefix: string;
  /** How results are stored. @default jsonSerializer */
  readonly serializer?: Serializer;
  /**
   * Fail with `StoreUnavailableError` when Redis has not answered a command within this many
   * milliseconds; 0 waits as long as the client does.
   * @default 2_000
   */
  readonly commandTimeoutMs?: number;
  /** Receives `idempotency_hit` events. */
  readonly onEvent?: EventListener;
  /**
   * Time stamps of events only: leases and TTLs run on the Redis server's clock.
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Don't answer `claimed` (or `true` from `complete`) until `replicas` replicas have the write:
   * after it, `WAIT replicas timeoutMs` on the master that holds the key (on a Redis Cluster,
   * the master the client knows for the key's slot). Fewer within `timeoutMs` reject with
   * `StoreUnavailableError` (a claim is then released in the background, like any claim that
   * rejects). Redis replicates asynchronously: without this, a failover (a master killed, its
   * replica promoted) can lose claims and completions Redis had acknowledged, and the work
   * runs twice (docs/guarantees.md measures it). Costs one more round trip per claim and
   * completion, plus the replication lag. Needs an ioredis client (`Redis` or `Cluster`).
   * Off when not set.
   *
   * @example { replicas: 1, timeoutMs: 100 }
   */
  readonly waitForReplicas?: WaitForReplicas;
}

/** The defaults of {@link RedisIdempotencyStoreOptions}. */
export const REDIS_IDEMPOTENCY_DEFAULTS = Object.freeze({
  commandTimeoutMs: 2_000,
});

/**
 * Claims that failed (no answer in time, a dropped connection) and are being released in the
 * background, at most, per store. Past it, such a claim's lease is left to run out.
 */
const MAX_PENDING_RELEASES = 10_000;

/**
 * A fencing token as it sits in a record: `%`, `:` and `/` escaped, so that a caller's request
 * id can hold them and the record still parses. Store-made tokens (UUIDs) are unchanged.
 */
function escapeToken(token: string): string {
  return token.replace(/[%:/]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * An {@link IdempotencyStore} on Redis, shared by every process that uses the same `prefix`.
 * Each command is atomic: a plain `SET NX PX` where that does the job and the client has `set`,
 * else a Lua script through EVALSHA. `complete`, `release` and `markOnce` take one round trip;
 * `claim` takes one when the key is free and two when it is taken (the `SET NX PX` fails, then
 * the script reads the record). Leases and TTLs are Redis expiries (`PX`), so a crashed worker's
 * lease runs out on the server's clock. Every key of one call shares a hash tag, so it works on
 * Redis Cluster. Failures and timeouts reject with `StoreUnavailableError`, never with an
 * answer.
 *
 * A claim that rejects may still run on Redis later: ioredis queues commands while offline and
 * sends one again after a lost reply, and a paused server runs what it holds when it resumes.
 * A claim sent again carries the same token and is answered `claimed`. A claim that rejected
 * is released in the background, fenced by its token (and attempt): as soon as its late reply
 * comes, unless it says that another claim holds the key (a late "taken" from the `SET NX` may
 * be the re-sent copy of a claim whose first copy took it), or, when the client gave the
 * command up (it may have run before the connection dropped), at once and again with backoff
 * (100 ms doubling to 5 s, unref'd timers) while the client fails it, until Redis answers or
 * the lease would have run out anyway. A later `claim` of the key from this store first sends
 * a release that waits for its next try. At most 10,000 releases are pending per store; past
 * that a lease is left to run out.
 *
 * @example
 * import { Redis } from 'ioredis';
 * const store = createRedisIdempotencyStore(new Redis(), { prefix: 'myapp:idem' });
 */
export function createRedisIdempotencyStore(
  client: RedisClientLike,
  options: RedisIdempotencyStoreOptions,
): IdempotencyStore {
  if (
    typeof client !== 'object' ||
    client === null ||
    typeof client.evalsha !== 'function' ||
    typeof client.eval !== 'function'
  ) {
    throw new TypeError('client must be a Redis client with evalsha() and eval() (e.g. ioredis)');
  }
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('createRedisIdempotencyStore needs an options object with prefix');
  }
  assertNoRenamedOptions(options, { timeoutMs: 'commandTimeoutMs' });
  const prefix = assertKey('prefix', options.prefix);
  const serializer = options.serializer ?? jsonSerializer;
  assertFunction('serializer.serialize', serializer.serialize);
  assertFunction('serializer.deserialize', serializer.deserialize);
  const timeoutMs = assertNumber(
    'commandTimeoutMs',
    options.commandTimeoutMs ?? REDIS_IDEMPOTENCY_DEFAULTS.commandTimeoutMs,
    0,
  );
  if (options.onEvent !== undefined) assertFunction('onEvent', options.onEvent);
  const onEvent = options.onEvent;
  const clock = options.clock ?? systemClock;
  const waitReplicas = replicaWaiter(client, options.waitForReplicas, timeoutMs);

  const set = client.set?.bind(client);
  const run = (
    operation: string,
    script: typeof claimScript,
    key: string,
    args: readonly (string | number)[],
  ): Promise<unknown> => runScript(client, script, [key], args, { operation, timeoutMs });

  const hit = (key: string, status: 'completed' | 'in_progress' | 'duplicate'): void => {
    if (onEvent !== undefined) {
      emit(onEvent, { type: 'idempotency_hit', time: clock.now(), key, status });
    }
  };

  const releases = createBackgroundRetries(MAX_PENDING_RELEASES);
  const releaseLater = (recordKey: string, token: string, attempt: string, leaseMs: number) => {
    releases.add(
      recordKey,
      // One try at a time, waiting as long as the lease lasts: a try that has not been answered
      // is still queued on the client, and is tried again only when the client gives it up.
      (timeLeft) =>
        runScript(client, releaseScript, [recordKey], [token, attempt], {
          operation: 'release',
          timeoutMs: timeLeft,
        }),
      leaseMs,
    );
  };

  const unexpected = (operation: string, reply: unknown): StoreUnavailableError =>
    new StoreUnavailableError(
      operation,
      new Error(`unexpected reply from Redis: ${JSON.stringify(reply)}`),
    );

  return {
    async claim<R = unknown>(key: string, claimOptions: ClaimOptions): Promise<ClaimResult<R>> {
      const { leaseMs, fingerprint, requestId } = checkClaim(key, claimOptions);
      const token = requestId ?? fencingToken();
      const escaped = escapeToken(token);
      // A request id may be used again by a retry of the same work: the attempt id tells a
      // background release of this claim from one of that retry's.
      const attempt = requestId === undefined ? '' : fencingToken();
      const owner = attempt === '' ? escaped : `${escaped}/${attempt}`;
      const recordKey = hashTag(prefix, key);
      releases.flush(recordKey);
      // The command as the client runs it, past our timeout: its late reply tells whether the
      // claim took the key after all.
      let sent: Promise<unknown> | undefined;
      const send = (call: () => Promise<unknown>): Promise<unknown> =>
        runCommand({ operation: 'claim', timeoutMs }, () => {
          sent = call();
          return sent;
        });
      /** `claimed`, once replicas have it when `waitForReplicas` asks for them. */
      const claimed = async (): Promise<ClaimResult<R>> => {
        if (waitReplicas !== undefined) {
          try {
            await waitReplicas(recordKey, 'claim');
          } catch (error) {
            releaseLater(recordKey, escaped, attempt, leaseMs);
            throw error;
          }
        }
        return { status: 'claimed', token };
      };
      let reply: unknown;
      try {
        if (set !== undefined) {
          const first = await send(() =>
            set(recordKey, `p${owner}:${fingerprint ?? ''}`, 'PX', leaseMs, 'NX'),
          );
          if (first === 'OK') return claimed();
        }
        reply = await send(() =>
          runScript(
            client,
            claimScript,
            [recordKey],
            [owner, leaseMs, fingerprint ?? '', escaped],
            {
              operation: 'claim',
              timeoutMs: 0,
            },
          ),
        );
      } catch (error) {
        // Only the script's answers (arrays) say for sure that the claim did not take the key.
        // A late `null` from the SET may be ioredis re-sending it after a dropped reply: the
        // first copy took the key and the second found it taken. The release is fenced by
        // token and attempt, so releasing a key held by another does nothing.
        sent?.then(
          (late) => {
            if (!Array.isArray(late)) releaseLater(recordKey, escaped, attempt, leaseMs);
          },
          () => releaseLater(recordKey, escaped, attempt, leaseMs),
        );
        throw error;
      }
      if (reply === 1) return claimed();
      if (!Array.isArray(reply)) throw unexpected('claim', reply);
      switch (reply[0]) {
        case 'completed': {
          let result: R;
          try {
            result = serializer.deserialize(String(reply[1] ?? '')) as R;
          } catch (error) {
            throw new StoreUnavailableError('claim', error);
          }
          hit(key, 'completed');
          return { status: 'completed', result };
        }
        case 'in_progress':
          hit(key, 'in_progress');
          return { status: 'in_progress', retryAfterMs: Math.max(0, Number(reply[1])) };
        case 'mismatch':
          return { status: 'mismatch' };
        default:
          throw unexpected('claim', reply);
      }
    },

    async complete(key, token, result, completeOptions) {
      checkKey(key);
      checkToken(token);
      const ttlMs = checkCompleteOptions(completeOptions);
      const text = serializer.serialize(result);
      if (typeof text !== 'string') {
        throw new TypeError(`serializer.serialize must return a string, got ${typeof text}`);
      }
      const recordKey = hashTag(prefix, key);
      const reply = await run('complete', completeScript, recordKey, [
        escapeToken(token),
        ttlMs,
        text,
      ]);
      if (reply === 1 && waitReplicas !== undefined) await waitReplicas(recordKey, 'complete');
      return reply === 1;
    },

    async release(key, token) {
      checkKey(key);
      checkToken(token);
      const reply = await run('release', releaseScript, hashTag(prefix, key), [
        escapeToken(token),
        '',
      ]);
      return reply === 1;
    },

    async markOnce(key, ttlMs) {
      checkKey(key);
      const ttl = checkTtl(ttlMs);
      const markKey = `${hashTag(prefix, key)}:once`;
      const first =
        set === undefined
          ? (await run('markOnce', markOnceScript, markKey, [ttl])) === 1
          : (await runCommand({ operation: 'markOnce', timeoutMs }, () =>
              set(markKey, '1', 'PX', ttl, 'NX'),
            )) === 'OK';
      if (first) return true;
      hit(key, 'duplicate');
      return false;
    },
  };
}
