import type { Classification } from '../core/classify-types.js';
import { type Clock, systemClock } from '../core/clock.js';
import { completeDeadLetter, newId, upgradeDeadLetter } from '../core/dead-letter/dead-letter.js';
import type { DeadLetterEntry, DeadLetterQueue } from '../core/dead-letter/dead-letter-types.js';
import {
  listOptions,
  type Positioned,
  type RedrivePort,
  runRedrive,
} from '../core/dead-letter/redrive.js';
import { StoreUnavailableError } from '../core/errors.js';
import { type EventListener, emit } from '../core/events.js';
import { classify as defaultClassify } from '../core/retry/classify.js';
import { assertFunction, assertKey } from '../core/validate.js';
import {
  assertQueryable,
  type PgQueryable,
  type PreparedStatementsOption,
  preparedOption,
  run,
  statements,
} from './client.js';
import { msFromNow } from './idempotency.js';
import { POSTGRES_TABLE_DEFAULTS, type PostgresTableOptions, tableName } from './schema.js';

/** Options of {@link createPostgresDeadLetterQueue}. */
export interface PostgresDeadLetterQueueOptions
  extends PostgresTableOptions,
    PreparedStatementsOption {
  /** The table made by `createSchema` (its `deadLetterTable`). @default 'retrykit_dead_letters' */
  readonly table?: string;
  /** Receives a `dead_letter` event for every entry added. */
  readonly onEvent?: EventListener;
  /**
   * Dates dead letters and redrive failures (leases and not-before times run on the database's
   * clock).
   * @default systemClock
   */
  readonly clock?: Clock;
  /** Classifies a redrive handler's failure. @default classify */
  readonly classify?: (error: unknown) => Classification;
}

/** How many times `add` tries again when the entry it collided with was removed meanwhile. */
const MAX_ADD_ROUNDS = 10;

/** @internal The statements of one dead-letter table. */
function deadLetterStatements(table: string) {
  return {
    add: `INSERT INTO ${table} (id, reason, entry, lease_until)
VALUES ($1, $2, $3::json,
  CASE WHEN $4::timestamptz > clock_timestamp() THEN $4::timestamptz END)
ON CONFLICT (id) DO NOTHING`,
    get: `SELECT entry::text AS entry FROM ${table} WHERE id = $1`,
    scan: `SELECT t.tail::text AS tail, e.position::text AS seq, e.entry::text AS entry
FROM (SELECT coalesce(max(seq), 0) AS tail FROM ${table}) t
LEFT JOIN LATERAL (
  SELECT seq AS position, entry FROM ${table}
  WHERE seq > $1::bigint AND ($2::text IS NULL OR reason = $2::text)
    AND ($3::bigint IS NULL OR seq <= $3::bigint)
  ORDER BY seq LIMIT $4
) e ON true
ORDER BY e.position`,
    size: `SELECT count(*)::text AS n FROM ${table}`,
    remove: `DELETE FROM ${table} WHERE id = $1`,
    purge: `DELETE FROM ${table}`,
    // The row is locked with SKIP LOCKED: a consumer that finds another claiming the same entry
    // at this instant passes it by (`leased`) instead of waiting for it.
    claim: `WITH claimed AS (
  UPDATE ${table} SET lease_token = $2, lease_until = ${msFromNow(3)}
  WHERE id = (
    SELECT id FROM ${table}
    WHERE id = $1
      AND (lease_until IS NULL OR lease_until <= clock_timestamp() OR lease_token = $2)
    FOR UPDATE SKIP LOCKED)
  RETURNING entry::text AS entry
)
SELECT (SELECT entry FROM claimed) AS entry,
  EXISTS (SELECT 1 FROM ${table} WHERE id = $1) AS present`,
    fail: `UPDATE ${table}
SET entry = $3::json, lease_token = NULL, lease_until = ${msFromNow(4)}
WHERE id = $1 AND lease_token = $2`,
  };
}

/**
 * A dead-letter queue in a PostgreSQL table (made by `createSchema`): it outlives restarts,
 * sits beside your data (back it up, query it with SQL: `entry` is JSON), and several
 * consumers may redrive it at once. Each operation is one statement. A redrive claims an entry
 * under a lease on the database's clock (`UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP
 * LOCKED)`), so one consumer runs it while another passes it by; a failed redrive leaves a
 * not-before time (the redrive backoff, on the database's clock) that every consumer's claim
 * respects; a consumer that dies mid-redrive leaves the entry to be taken over once its hold
 * runs out. Entries are listed in the order they were added (an identity column is the
 * cursor). Every method rejects with `StoreUnavailableError` when the database can't answer.
 *
 * @example
 * const dlq = createPostgresDeadLetterQueue(pool);
 * const { redriven, failed } = await dlq.redrive({ reason: 'server_error' }, (entry) =>
 *   queue.add('webhook', entry.payload),
 * );
 */
export function createPostgresDeadLetterQueue<P = unknown>(
  db: PgQueryable,
  options: PostgresDeadLetterQueueOptions = {},
): DeadLetterQueue<P> {
  assertQueryable('db', db);
  const table = tableName(options, POSTGRES_TABLE_DEFAULTS.deadLetters);
  if (options.onEvent !== undefined) assertFunction('onEvent', options.onEvent);
  if (options.classify !== undefined) assertFunction('classify', options.classify);
  const clock = options.clock ?? systemClock;
  const classify = options.classify ?? defaultClassify;
  const sql = statements(deadLetterStatements(table), preparedOption(options));
  const op = (name: string) => `deadLetter.${name}`;

  const parse = (text: unknown): DeadLetterEntry<P> =>
    upgradeDeadLetter(JSON.parse(String(text)) as DeadLetterEntry<P>);

  const get = async (id: string): Promise<DeadLetterEntry<P> | undefined> => {
    const { rows } = await run(db, op('get'), sql.get, [id]);
    const row = rows[0] as { entry: string } | undefined;
    return row === undefined ? undefined : parse(row.entry);
  };

  const scan = async (
    after: number,
    limit: number,
    reason: string | undefined,
    upTo: number,
  ): Promise<{ items: Positioned<P>[]; more: boolean; tail: number }> => {
    const { rows } = await run(db, op('list'), sql.scan, [
      after,
      reason ?? null,
      upTo === Infinity ? null : upTo,
      limit + 1,
    ]);
    const items: Positioned<P>[] = [];
    let tail = 0;
    for (const row of rows as { tail: string; seq: string | null; entry: string | null }[]) {
      tail = Number(row.tail);
      if (row.seq !== null) items.push({ seq: Number(row.seq), entry: parse(row.entry) });
    }
    const more = items.length > limit;
    return { items: more ? items.slice(0, limit) : items, more, tail };
  };

  const remove = async (id: string): Promise<boolean> =>
    (await run(db, op('remove'), sql.remove, [id])).rowCount === 1;

  const port: RedrivePort<P> = {
    scan,
    async claim(id, token, holdMs) {
      const { rows } = await run(db, op('claim'), sql.claim, [id, token, holdMs]);
      const row = rows[0] as { entry: string | null; present: boolean } | undefined;
      if (row?.entry != null) return { status: 'claimed', entry: parse(row.entry) };
      return { status: row?.present ? 'leased' : 'missing' };
    },
    async succeed(id) {
      await remove(id);
    },
    async fail(id, token, entry, delayMs) {
      await run(db, op('release'), sql.fail, [id, token, JSON.stringify(entry), delayMs]);
    },
  };

  return {
    async add(newEntry) {
      const entry = completeDeadLetter(newEntry, clock.now());
      for (let round = 0; round < MAX_ADD_ROUNDS; round++) {
        const added = await run(db, op('add'), sql.add, [
          entry.id,
          entry.reason,
          JSON.stringify(entry),
          entry.notBefore ?? null,
        ]);
        if (added.rowCount === 1) {
          emit(options.onEvent, {
            type: 'dead_letter',
            time: clock.now(),
            id: entry.id,
            reason: entry.reason,
          });
          return entry;
        }
        const existing = await get(entry.id);
        if (existing !== undefined) return existing;
      }
      throw new StoreUnavailableError(
        op('add'),
        new Error(`entry ${JSON.stringify(entry.id)} kept being removed while added`),
      );
    },
    get: (id) => get(assertKey('id', id)),
    async list(listOpts = {}) {
      const { after, limit, reason } = listOptions(listOpts);
      const { items, more } = await scan(after, limit, reason, Infinity);
      const entries = items.map((i) => i.entry);
      const last = items[items.length - 1];
      return more && last !== undefined ? { entries, cursor: String(last.seq) } : { entries };
    },
    async size() {
      const { rows } = await run(db, op('size'), sql.size, []);
      return Number((rows[0] as { n: string } | undefined)?.n ?? 0);
    },
    remove: (id) => remove(assertKey('id', id)),
    redrive(selector, handler, redriveOptions = {}) {
      return runRedrive(port, selector, handler, redriveOptions, {
        clock,
        classify,
        token: newId(),
      });
    },
    async purge() {
      return (await run(db, op('purge'), sql.purge, [])).rowCount ?? 0;
    },
  };
}
