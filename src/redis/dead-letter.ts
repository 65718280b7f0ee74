import { randomUUID } from 'node:crypto';
import type { Classification } from '../core/classify-types.js';
import { type Clock, systemClock } from '../core/clock.js';
import { completeDeadLetter, upgradeDeadLetter } from '../core/dead-letter/dead-letter.js';
import type { DeadLetterEntry, DeadLetterQueue } from '../core/dead-letter/dead-letter-types.js';
import {
  listOptions,
  type Positioned,
  type RedrivePort,
  runRedrive,
} from '../core/dead-letter/redrive.js';
import { type EventListener, emit } from '../core/events.js';
import { classify as defaultClassify } from '../core/retry/classify.js';
import {
  assertFunction,
  assertKey,
  assertNoRenamedOptions,
  assertNumber,
} from '../core/validate.js';
import type { RedisClientLike } from './client.js';
import { defineScript, hashTag, runScript } from './script.js';
import addSource from './scripts/dlq-add.lua';
import claimSource from './scripts/dlq-claim.lua';
import getSource from './scripts/dlq-get.lua';
import listSource from './scripts/dlq-list.lua';
import purgeSource from './scripts/dlq-purge.lua';
import releaseSource from './scripts/dlq-release.lua';
import removeSource from './scripts/dlq-remove.lua';
import sizeSource from './scripts/dlq-size.lua';

const scripts = {
  add: defineScript('dlq-add', addSource),
  claim: defineScript('dlq-claim', claimSource),
  get: defineScript('dlq-get', getSource),
  list: defineScript('dlq-list', listSource),
  purge: defineScript('dlq-purge', purgeSource),
  release: defineScript('dlq-release', releaseSource),
  remove: defineScript('dlq-remove', removeSource),
  size: defineScript('dlq-size', sizeSource),
};

/** Options of {@link createRedisDeadLetterQueue}. */
export interface RedisDeadLetterQueueOptions {
  /**
   * Namespace of this queue's keys, e.g. `myapp:dlq:webhooks`. Every key carries the hash tag
   * `{<prefix>:dead-letters}`, so one queue lives on one Redis Cluster slot.
   */
  readonly prefix: string;
  /**
   * Fail with `StoreUnavailableError` when Redis hasn't answered a command within this many
   * milliseconds. 0 waits as long as the client does.
   * @default 2_000
   */
  readonly commandTimeoutMs?: number;
  /** Receives a `dead_letter` event for every entry added. */
  readonly onEvent?: EventListener;
  /** Dates dead letters and redrive failures (leases use the Redis server's clock). @default systemClock */
  readonly clock?: Clock;
  /** Classifies a redrive handler's failure. @default classify */
  readonly classify?: (error: unknown) => Classification;
}

/** The defaults of {@link RedisDeadLetterQueueOptions}. */
export const REDIS_DEAD_LETTER_DEFAULTS = Object.freeze({ commandTimeoutMs: 2_000 });

/**
 * A dead-letter queue in Redis: it outlives worker restarts (with `appendonly yes`: see
 * docs/redis-settings.md), and several consumers may redrive it at once. Each operation is
 * one atomic script; a redrive claims an entry under a lease (timed by the Redis server's
 * clock) before running the handler, so an entry is redriven by one consumer only; a failed
 * redrive leaves a not-before time (the redrive backoff, also on the server's clock) that
 * every consumer's claim respects; and a consumer that crashes mid-redrive leaves the entry to
 * be taken over once its hold runs out. Entries are listed in the order they were added.
 * Every method rejects with `StoreUnavailableError` when Redis can't be reached.
 *
 * @example
 * import { Redis } from 'ioredis';
 * const dlq = createRedisDeadLetterQueue(new Redis(), { prefix: 'myapp:dlq:webhooks' });
 * const { redriven, failed } = await dlq.redrive({ reason: 'server_error' }, (entry) =>
 *   queue.add('webhook', entry.payload),
 * );
 */
export function createRedisDeadLetterQueue<P = unknown>(
  client: RedisClientLike,
  options: RedisDeadLetterQueueOptions,
): DeadLetterQueue<P> {
  const prefix = assertKey('prefix', options?.prefix);
  if (/[{}]/.test(prefix)) {
    throw new TypeError(`prefix must not contain '{' or '}', got ${JSON.stringify(prefix)}`);
  }
  assertNoRenamedOptions(options, { timeoutMs: 'commandTimeoutMs' });
  const timeoutMs = assertNumber(
    'commandTimeoutMs',
    options.commandTimeoutMs ?? REDIS_DEAD_LETTER_DEFAULTS.commandTimeoutMs,
    0,
  );
  if (options.onEvent !== undefined) assertFunction('onEvent', options.onEvent);
  if (options.classify !== undefined) assertFunction('classify', options.classify);
  const clock = options.clock ?? systemClock;
  const classify = options.classify ?? defaultClassify;
  const base = hashTag(prefix, 'dead-letters');
  const keys = {
    entries: `${base}:entries`,
    order: `${base}:order`,
    seq: `${base}:seq`,
    reasonOf: `${base}:reason-of`,
    reasons: `${base}:reasons`,
    leases: `${base}:leases`,
    reasonIndex: `${base}:reason:`,
  };

  const run = (
    operation: string,
    script: (typeof scripts)[keyof typeof scripts],
    k: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> =>
    runScript(client, script, k, args, { operation: `deadLetter.${operation}`, timeoutMs });

  const parse = (json: unknown): DeadLetterEntry<P> =>
    upgradeDeadLetter(JSON.parse(String(json)) as DeadLetterEntry<P>);

  const scan = async (
    after: number,
    limit: number,
    reason: string | undefined,
    upTo: number,
  ): Promise<{ items: Positioned<P>[]; more: boolean; tail: number }> => {
    const index = reason === undefined ? keys.order : keys.reasonIndex + reason;
    const reply = (await run(
      'list',
      scripts.list,
      [keys.entries, index, keys.seq],
      [after, limit, upTo === Infinity ? '+inf' : upTo],
    )) as unknown[];
    const items: Positioned<P>[] = [];
    for (let i = 2; i + 2 < reply.length; i += 3) {
      items.push({ seq: Number(reply[i + 1]), entry: parse(reply[i + 2]) });
    }
    return { items, more: Number(reply[1]) === 1, tail: Number(reply[0]) };
  };

  const remove = async (id: string): Promise<boolean> =>
    (await run(
      'remove',
      scripts.remove,
      [keys.entries, keys.order, keys.reasonOf, keys.leases],
      [id, keys.reasonIndex],
    )) === 1;

  const port: RedrivePort<P> = {
    scan,
    async claim(id, token, holdMs) {
      const reply = (await run(
        'claim',
        scripts.claim,
        [keys.entries, keys.leases],
        [id, token, holdMs],
      )) as [string, string?];
      if (reply[0] === 'claimed') return { status: 'claimed', entry: parse(reply[1]) };
      return { status: reply[0] === 'leased' ? 'leased' : 'missing' };
    },
    async succeed(id) {
      await remove(id);
    },
    async fail(id, token, entry, delayMs) {
      await run(
        'release',
        scripts.release,
        [keys.entries, keys.leases],
        [id, token, JSON.stringify(entry), delayMs],
      );
    },
  };

  return {
    async add(newEntry) {
      const entry = completeDeadLetter(newEntry, clock.now());
      const reply = (await run(
        'add',
        scripts.add,
        [
          keys.entries,
          keys.order,
          keys.seq,
          keys.reasonOf,
          keys.reasons,
          keys.reasonIndex + entry.reason,
          keys.leases,
        ],
        [
          entry.id,
          JSON.stringify(entry),
          entry.reason,
          entry.notBefore === undefined ? '' : Date.parse(entry.notBefore),
        ],
      )) as [number, string];
      if (reply[0] !== 1) return parse(reply[1]);
      emit(options.onEvent, {
        type: 'dead_letter',
        time: clock.now(),
        id: entry.id,
        reason: entry.reason,
      });
      return entry;
    },
    async get(id) {
      const json = await run('get', scripts.get, [keys.entries], [assertKey('id', id)]);
      return json === null || json === undefined ? undefined : parse(json);
    },
    async list(listOpts = {}) {
      const { after, limit, reason } = listOptions(listOpts);
      const { items, more } = await scan(after, limit, reason, Infinity);
      const entries = items.map((i) => i.entry);
      const last = items[items.length - 1];
      return more && last !== undefined ? { entries, cursor: String(last.seq) } : { entries };
    },
    async size() {
      return Number(await run('size', scripts.size, [keys.entries], []));
    },
    remove: (id) => remove(assertKey('id', id)),
    redrive(selector, handler, redriveOptions = {}) {
      return runRedrive(port, selector, handler, redriveOptions, {
        clock,
        classify,
        token: randomUUID(),
      });
    },
    async purge() {
      return Number(
        await run(
          'purge',
          scripts.purge,
          [keys.entries, keys.order, keys.reasonOf, keys.leases, keys.reasons],
          [keys.reasonIndex],
        ),
      );
    },
  };
}
