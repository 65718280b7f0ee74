import {
  checkAttempt,
  checkAttemptOptions,
  checkBeginOptions,
  checkClaimOptions,
  checkReport,
  checkReschedule,
  DELIVERY_STORE_DEFAULTS,
} from '../core/delivery/delivery-args.js';
import type {
  ApplyStatusResult,
  ClaimedDelivery,
  DeliveryAttempt,
  DeliveryRecord,
  DeliveryStore,
} from '../core/delivery/delivery-types.js';
import { StoreUnavailableError } from '../core/errors.js';
import {
  assertFunction,
  assertKey,
  assertNoRenamedOptions,
  assertNumber,
  showValue,
} from '../core/validate.js';
import type { RedisClientLike } from './client.js';
import { defineScript, hashTag, runScript } from './script.js';
import attemptSource from './scripts/delivery-attempt.lua';
import beginSource from './scripts/delivery-begin.lua';
import claimSource from './scripts/delivery-claim.lua';
import commonSource from './scripts/delivery-common.lua';
import getSource from './scripts/delivery-get.lua';
import rescheduleSource from './scripts/delivery-reschedule.lua';
import statusSource from './scripts/delivery-status.lua';
import { jsonSerializer, type Serializer } from './serializer.js';

// The scripts that write share delivery-common.lua's helpers (and its first two arguments).
const scripts = {
  begin: defineScript('delivery-begin', `${commonSource}\n${beginSource}`),
  attempt: defineScript('delivery-attempt', `${commonSource}\n${attemptSource}`),
  status: defineScript('delivery-status', `${commonSource}\n${statusSource}`),
  claim: defineScript('delivery-claim', `${commonSource}\n${claimSource}`),
  reschedule: defineScript('delivery-reschedule', `${commonSource}\n${rescheduleSource}`),
  get: defineScript('delivery-get', getSource),
};

/** Options of {@link createRedisDeliveryStore}. */
export interface RedisDeliveryStoreOptions {
  /**
   * Namespace of the store's keys. Every key carries the hash tag `{<prefix>:deliveries}`, so
   * a record and the external-id index of its attempts live on one Redis Cluster slot.
   *
   * @example 'myapp:deliveries'
   */
  readonly prefix: string;
  /**
   * How long a record (and its external-id index) is kept after its last write, in
   * milliseconds, as a Redis expiry (the server's clock).
   * @default 604_800_000 (7 days)
   */
  readonly recordTtlMs?: number;
  /**
   * How payloads are stored. (A status report's errors are stored with `JSON.stringify`:
   * fields that are `undefined` are dropped.)
   * @default jsonSerializer
   */
  readonly serializer?: Serializer;
  /**
   * Fail with `StoreUnavailableError` when Redis has not answered a command within this many
   * milliseconds; 0 waits as long as the client does.
   * @default 2_000
   */
  readonly commandTimeoutMs?: number;
}

/** The defaults of {@link RedisDeliveryStoreOptions}. */
export const REDIS_DELIVERY_STORE_DEFAULTS = Object.freeze({
  recordTtlMs: DELIVERY_STORE_DEFAULTS.recordTtlMs,
  commandTimeoutMs: 2_000,
});

/** An attempt as the scripts keep it: times as decimal strings (cjson rounds numbers). */
interface StoredAttempt {
  readonly attemptId: string;
  readonly externalId?: string;
  readonly at: string;
  readonly status?: string;
  readonly rank?: number;
  readonly statusAt?: string;
  readonly statusTimes?: Record<string, string> | unknown[];
  readonly errors?: string;
}

interface StoredState {
  readonly createdAt: number;
  readonly sender?: string;
  /** The lease token. */
  readonly rev?: number;
  /** The due time, in epoch milliseconds as a decimal string; absent when not due. */
  readonly due?: string;
  /** An empty array comes back from Lua's cjson as `{}`. */
  readonly attempts: readonly StoredAttempt[] | Record<string, never>;
}

/**
 * A {@link DeliveryStore} on Redis, shared by every process that uses the same `prefix` (a
 * sender and a webhook handler in different processes). Each call is one atomic Lua script:
 * a record and the index of its attempts' external ids change together or not at all.
 * `createdAt` is the Redis server's `TIME`; expiry is a Redis `PEXPIRE`, renewed on every
 * write. Failures and timeouts reject with `StoreUnavailableError`, never with an answer.
 *
 * @example
 * import { Redis } from 'ioredis';
 * const deliveries = createRedisDeliveryStore(new Redis(), { prefix: 'myapp:deliveries' });
 */
export function createRedisDeliveryStore<P = unknown, E = unknown>(
  client: RedisClientLike,
  options: RedisDeliveryStoreOptions,
): DeliveryStore<P, E> {
  if (
    typeof client !== 'object' ||
    client === null ||
    typeof client.evalsha !== 'function' ||
    typeof client.eval !== 'function'
  ) {
    throw new TypeError('client must be a Redis client with evalsha() and eval() (e.g. ioredis)');
  }
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      `createRedisDeliveryStore needs an options object with prefix, got ${showValue(options)}`,
    );
  }
  assertNoRenamedOptions(options, { timeoutMs: 'commandTimeoutMs', ttlMs: 'recordTtlMs' });
  const prefix = assertKey('prefix', options.prefix);
  if (/[{}]/.test(prefix)) {
    throw new TypeError(`prefix must not contain '{' or '}', got ${JSON.stringify(prefix)}`);
  }
  const ttlMs = Math.ceil(
    assertNumber(
      'recordTtlMs',
      options.recordTtlMs ?? REDIS_DELIVERY_STORE_DEFAULTS.recordTtlMs,
      1,
    ),
  );
  const timeoutMs = assertNumber(
    'commandTimeoutMs',
    options.commandTimeoutMs ?? REDIS_DELIVERY_STORE_DEFAULTS.commandTimeoutMs,
    0,
  );
  const serializer = options.serializer ?? jsonSerializer;
  assertFunction('serializer.serialize', serializer.serialize);
  assertFunction('serializer.deserialize', serializer.deserialize);
  const base = hashTag(prefix, 'deliveries');
  const recordPrefix = `${base}:r:`;
  const indexPrefix = `${base}:x:`;
  /** The first arguments of every script that writes (delivery-common.lua). */
  const common = [base, ttlMs] as const;

  const run = (
    operation: string,
    script: (typeof scripts)[keyof typeof scripts],
    key: string,
    args: readonly (string | number)[],
  ): Promise<unknown> =>
    runScript(client, script, [key], args, { operation: `delivery.${operation}`, timeoutMs });

  const serialize = (value: unknown): string => {
    const text = serializer.serialize(value);
    if (typeof text !== 'string') {
      throw new TypeError(`serializer.serialize must return a string, got ${typeof text}`);
    }
    return text;
  };

  const parseWithToken = (operation: string, key: string, payload: unknown, state: unknown) => {
    try {
      const s = JSON.parse(String(state)) as StoredState;
      const attempts = Array.isArray(s.attempts) ? s.attempts : [];
      const record = freeze<P, E>({
        key,
        payload: serializer.deserialize(String(payload)) as P,
        createdAt: s.createdAt,
        sender: typeof s.sender === 'string' ? s.sender : undefined,
        attempts: attempts.map((a) => toAttempt<E>(a)),
        dueAt: s.due === undefined ? undefined : Number(s.due),
      });
      return { record, token: String(s.rev ?? 0) };
    } catch (error) {
      throw new StoreUnavailableError(operation, error);
    }
  };
  const parse = (operation: string, key: string, payload: unknown, state: unknown) =>
    parseWithToken(operation, key, payload, state).record;

  /** A due-time change as the scripts take it. */
  const dueArg = (dueInMs: number | null | undefined): string | number =>
    dueInMs === undefined ? '' : dueInMs === null ? 'close' : dueInMs;

  const unexpected = (operation: string, reply: unknown): StoreUnavailableError =>
    new StoreUnavailableError(
      `delivery.${operation}`,
      new Error(`unexpected reply from Redis: ${JSON.stringify(reply)}`),
    );

  return {
    async begin(key, payload, options) {
      assertKey('key', key);
      const { alias, sender, dueInMs } = checkBeginOptions(options);
      const reply = await run('begin', scripts.begin, recordPrefix + key, [
        ...common,
        key,
        serialize(payload),
        alias ?? '',
        dueArg(dueInMs),
        sender ?? '',
      ]);
      if (!Array.isArray(reply) || reply.length !== 3) throw unexpected('begin', reply);
      return { created: reply[0] === 1, record: parse('delivery.begin', key, reply[1], reply[2]) };
    },

    async recordAttempt(key, input, options) {
      const attempt = checkAttempt(key, input);
      const { ifAttempts, dueInMs } = checkAttemptOptions(options);
      const reply = await run('recordAttempt', scripts.attempt, recordPrefix + key, [
        ...common,
        key,
        attempt.attemptId,
        attempt.externalId ?? '',
        attempt.at,
        ifAttempts ?? '',
        dueArg(dueInMs),
      ]);
      if (reply === 0) return { outcome: 'missing' };
      if (
        !Array.isArray(reply) ||
        reply.length !== 3 ||
        (reply[0] !== 'recorded' && reply[0] !== 'conflict')
      ) {
        throw unexpected('recordAttempt', reply);
      }
      return {
        outcome: reply[0],
        record: parse('delivery.recordAttempt', key, reply[1], reply[2]),
      };
    },

    async applyStatus(externalId, input): Promise<ApplyStatusResult<P, E>> {
      const report = checkReport(externalId, input);
      const reply = await run('applyStatus', scripts.status, indexPrefix + externalId, [
        ...common,
        report.status,
        report.rank,
        report.timestampMs,
        JSON.stringify(report.errors ?? []),
        externalId,
        report.alias ?? '',
        report.schedule ?? '',
      ]);
      if (!Array.isArray(reply)) throw unexpected('applyStatus', reply);
      if (reply[0] === 'unknown') return { outcome: 'unknown' };
      if ((reply[0] !== 'applied' && reply[0] !== 'stale') || reply.length !== 6) {
        throw unexpected('applyStatus', reply);
      }
      const key = String(reply[1]);
      return {
        outcome: reply[0],
        key,
        attemptId: String(reply[2]),
        record: parse('delivery.applyStatus', key, reply[3], reply[4]),
        attached: reply[5] === 1,
      };
    },

    async claimDue(options) {
      const { limit, leaseMs } = checkClaimOptions(options);
      const reply = await run('claimDue', scripts.claim, `${base}:due`, [
        ...common,
        limit,
        leaseMs,
      ]);
      if (!Array.isArray(reply) || reply.length % 3 !== 0) throw unexpected('claimDue', reply);
      const claimed: ClaimedDelivery<P, E>[] = [];
      for (let i = 0; i < reply.length; i += 3) {
        const key = String(reply[i]);
        claimed.push(parseWithToken('delivery.claimDue', key, reply[i + 1], reply[i + 2]));
      }
      return claimed;
    },

    async reschedule(key, token, delay) {
      const dueInMs = checkReschedule(key, token, delay);
      const reply = await run('reschedule', scripts.reschedule, recordPrefix + key, [
        ...common,
        key,
        token,
        dueArg(dueInMs),
      ]);
      if (reply !== 0 && reply !== 1) throw unexpected('reschedule', reply);
      return reply === 1;
    },

    async findKey(externalId) {
      assertKey('externalId', externalId);
      const reply = await run('findKey', scripts.get, indexPrefix + externalId, [recordPrefix]);
      if (reply === 0) return undefined;
      if (!Array.isArray(reply) || reply.length !== 3) throw unexpected('findKey', reply);
      return String(reply[0]);
    },

    async get(key) {
      assertKey('key', key);
      const reply = await run('get', scripts.get, recordPrefix + key, ['']);
      if (reply === 0) return undefined;
      if (!Array.isArray(reply) || reply.length !== 3) throw unexpected('get', reply);
      return parse('delivery.get', key, reply[1], reply[2]);
    },
  };
}

function toAttempt<E>(a: StoredAttempt): DeliveryAttempt<E> {
  const statusTimes: Record<string, number> = {};
  if (!Array.isArray(a.statusTimes)) {
    for (const [status, at] of Object.entries(a.statusTimes ?? {}))
      statusTimes[status] = Number(at);
  }
  return {
    attemptId: a.attemptId,
    externalId: a.externalId,
    at: Number(a.at),
    status: a.status,
    rank: a.rank ?? 0,
    statusAt: a.statusAt === undefined ? undefined : Number(a.statusAt),
    statusTimes,
    errors: a.errors === undefined ? [] : (JSON.parse(a.errors) as E[]),
  };
}

function freeze<P, E>(r: DeliveryRecord<P, E>): DeliveryRecord<P, E> {
  return Object.freeze({
    ...r,
    attempts: Object.freeze(
      r.attempts.map((a) =>
        Object.freeze({
          ...a,
          statusTimes: Object.freeze({ ...a.statusTimes }),
          errors: Object.freeze([...a.errors]),
        }),
      ),
    ),
  });
}
