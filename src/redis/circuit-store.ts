import type {
  CircuitAdmission,
  CircuitBreakerStore,
  CircuitOutcome,
  CircuitPolicy,
  CircuitState,
  CircuitStatus,
  CircuitTicket,
} from '../core/breaker/breaker-types.js';
import { StoreUnavailableError } from '../core/errors.js';
import { assertStoreErrorPolicy, type StoreErrorPolicy } from '../core/store-error.js';
import { assertInteger, assertKey, assertOneOf, showValue } from '../core/validate.js';
import type { RedisClientLike } from './client.js';
import { defineScript, hashTag, runScript } from './script.js';
import source from './scripts/circuit-breaker.lua';

const SCRIPT = defineScript('circuit-breaker', source);

/** Options of {@link createRedisCircuitStore}. */
export interface RedisCircuitStoreOptions {
  /**
   * Prefix of every key; a circuit lives at `{prefix:key}` (one hash tag per circuit, so it
   * works on Redis Cluster).
   * @default 'retrykit:circuit'
   */
  readonly prefix?: string;
  /**
   * Whose clock the state machine reads. `'redis'`: the server's `TIME`, one clock for every
   * worker however skewed their own are. `'client'`: the breaker's `clock.now()`, for managed
   * Redis that forbids `TIME` in scripts (and for tests with a manual clock); keep the clients
   * in sync with NTP.
   * @default 'redis'
   */
  readonly timeSource?: 'redis' | 'client';
  /**
   * Milliseconds to wait for Redis before treating it as unavailable (see `onStoreError`).
   * 0 waits for ever.
   * @default 2_000
   */
  readonly commandTimeoutMs?: number;
  /**
   * What to do when Redis can't answer. `'fail'`: the call is refused with the
   * `StoreUnavailableError` (a `retry` around it retries it as a transient failure).
   * `'proceed'`: let the call through as if the circuit were closed, and drop its outcome:
   * no breaker for as long as Redis is away, rather than no sends.
   * @default 'fail'
   */
  readonly onStoreError?: StoreErrorPolicy;
}

/** The defaults of {@link RedisCircuitStoreOptions}. */
export const REDIS_CIRCUIT_STORE_DEFAULTS = Object.freeze({
  prefix: 'retrykit:circuit',
  timeSource: 'redis',
  commandTimeoutMs: 2_000,
  onStoreError: 'fail',
});

const STATES: readonly CircuitState[] = ['closed', 'open', 'half_open'];
const OUTCOME_ARG: Readonly<Record<CircuitOutcome, string>> = {
  success: 's',
  failure: 'f',
  ignored: 'i',
};

/** The script's reply, checked. */
interface Reply {
  readonly admitted: boolean;
  readonly state: CircuitState;
  readonly epoch: number;
  readonly openUntil: number;
  readonly now: number;
  readonly from: CircuitState | undefined;
  readonly retryAfterMs: number;
  readonly probe: boolean;
}

function parse(operation: string, reply: unknown): Reply {
  if (Array.isArray(reply) && reply.length === 8) {
    const [admitted, state, epoch, openUntil, now, from, retryAfterMs, probe] = reply as unknown[];
    if (
      STATES.includes(state as CircuitState) &&
      typeof epoch === 'number' &&
      typeof openUntil === 'number' &&
      typeof now === 'number' &&
      typeof retryAfterMs === 'number'
    ) {
      return {
        admitted: admitted === 1,
        state: state as CircuitState,
        epoch,
        openUntil,
        now,
        from: STATES.includes(from as CircuitState) ? (from as CircuitState) : undefined,
        retryAfterMs,
        probe: probe === 1,
      };
    }
  }
  throw new StoreUnavailableError(operation, new Error(`unexpected reply ${showValue(reply)}`));
}

function toStatus(r: Reply): CircuitStatus {
  const base = {
    state: r.state,
    openUntil: r.state === 'open' ? r.openUntil : undefined,
    time: r.now,
  };
  return r.from === undefined ? base : { ...base, transition: { from: r.from, to: r.state } };
}

/** `Infinity` (a check turned off) as the script's -1. */
function countArg(n: number): number {
  return n === Number.POSITIVE_INFINITY ? -1 : n;
}

/**
 * Circuit breaker state in Redis, for `createCircuitBreaker({ store })`: every worker using
 * the same `prefix` shares each key's circuit, so a fleet opens, probes and closes together
 * (half-open probe places are counted for the whole fleet). Each admission and each outcome
 * is one EVALSHA of `circuit-breaker.lua`, which applies the state machine atomically on the
 * server's clock; a key expires once it would say nothing a missing one does not.
 *
 * @example
 * const redis = new Redis(process.env.REDIS_URL);
 * const breaker = createCircuitBreaker({ store: createRedisCircuitStore(redis, { prefix: 'wa:circuit' }) });
 */
export function createRedisCircuitStore(
  client: RedisClientLike,
  options: RedisCircuitStoreOptions = {},
): CircuitBreakerStore {
  if (typeof client !== 'object' || client === null || typeof client.evalsha !== 'function') {
    throw new TypeError(`client must be a Redis client with evalsha(), got ${showValue(client)}`);
  }
  const D = REDIS_CIRCUIT_STORE_DEFAULTS;
  const prefix = assertKey('prefix', options.prefix ?? D.prefix);
  const timeSource = assertOneOf('timeSource', options.timeSource ?? D.timeSource, [
    'redis',
    'client',
  ] as const);
  const commandTimeoutMs = assertInteger(
    'commandTimeoutMs',
    options.commandTimeoutMs ?? D.commandTimeoutMs,
    0,
  );
  const onStoreError = assertStoreErrorPolicy(options.onStoreError ?? D.onStoreError);

  const run = async (
    operation: string,
    key: string,
    policy: CircuitPolicy,
    now: number,
    extra: readonly (string | number)[],
  ): Promise<Reply> => {
    const ttl = Math.ceil(policy.windowMs + policy.maxBreakDurationMs + policy.probeTimeoutMs);
    const reply = await runScript(
      client,
      SCRIPT,
      [hashTag(prefix, key)],
      [
        operation,
        timeSource === 'client' ? now : '',
        policy.failureRatio,
        countArg(policy.minimumCalls),
        policy.windowMs,
        policy.windowSlots,
        countArg(policy.consecutiveFailures),
        policy.breakDurationMs,
        policy.breakMultiplier,
        policy.maxBreakDurationMs,
        policy.halfOpenMaxCalls,
        policy.halfOpenSuccesses,
        policy.probeTimeoutMs,
        extra[0] ?? '',
        extra[1] ?? '',
        extra[2] ?? '',
        ttl,
      ],
      { operation: `circuit ${operation}`, timeoutMs: commandTimeoutMs },
    );
    return parse(`circuit ${operation}`, reply);
  };

  /** Redis is away and `onStoreError` is `'proceed'`: a closed circuit that counts nothing. */
  const closed = (now: number): CircuitStatus => ({
    state: 'closed',
    openUntil: undefined,
    time: now,
  });
  const guard = async <T>(step: () => Promise<T>, fallback: () => T): Promise<T> => {
    try {
      return await step();
    } catch (error) {
      if (onStoreError === 'proceed' && error instanceof StoreUnavailableError) return fallback();
      throw error;
    }
  };

  return {
    admit: (key, policy, now) =>
      guard(
        async (): Promise<CircuitAdmission> => {
          const r = await run('admit', key, policy, now, []);
          const status = toStatus(r);
          return r.admitted
            ? { ...status, ok: true, ticket: { epoch: r.epoch, probe: r.probe } }
            : { ...status, ok: false, retryAfterMs: r.retryAfterMs };
        },
        (): CircuitAdmission => ({ ...closed(now), ok: true, ticket: { epoch: -1, probe: false } }),
      ),
    record: (key, policy, ticket: CircuitTicket, outcome, now) =>
      ticket.epoch < 0
        ? closed(now)
        : guard(
            async () =>
              toStatus(
                await run('record', key, policy, now, [
                  ticket.epoch,
                  ticket.probe ? 1 : 0,
                  OUTCOME_ARG[outcome],
                ]),
              ),
            () => closed(now),
          ),
    status: (key, policy, now) =>
      guard(
        async () => toStatus(await run('status', key, policy, now, [])),
        () => closed(now),
      ),
    reset: async (key) => {
      await runScript(client, SCRIPT, [hashTag(prefix, key)], ['reset'], {
        operation: 'circuit reset',
        timeoutMs: commandTimeoutMs,
      });
    },
  };
}
