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
import { assertFunction, assertInteger } from '../core/validate.js';
// The Redis adapter's serializer is plain TypeScript (no ioredis): both adapters store results
// the same way, so a result written by one reads the same from the other.
import { jsonSerializer, type Serializer } from '../redis/serializer.js';
import {
  assertQueryable,
  type PgQueryable,
  type PreparedStatementsOption,
  preparedOption,
  run,
  statements,
} from './client.js';
import { POSTGRES_TABLE_DEFAULTS, type PostgresTableOptions, tableName } from './schema.js';

/** Options of {@link createPostgresIdempotencyStore}. */
export interface PostgresIdempotencyStoreOptions
  extends PostgresTableOptions,
    PreparedStatementsOption {
  /** The table made by `createSchema` (its `idempotencyTable`). @default 'retrykit_idempotency' */
  readonly table?: string;
  /** How results are stored in the `result` text column. @default jsonSerializer */
  readonly serializer?: Serializer;
  /** Receives `idempotency_hit` events. */
  readonly onEvent?: EventListener;
  /**
   * Time stamps of events only: leases and TTLs run on the database's clock
   * (`clock_timestamp()`).
   * @default systemClock
   */
  readonly clock?: Clock;
}

/** An {@link IdempotencyStore} on PostgreSQL, with a way to clear out expired rows. */
export interface PostgresIdempotencyStore extends IdempotencyStore {
  /**
   * Deletes up to `limit` expired rows (leases and results past their time, old marks) and
   * resolves with how many it deleted. Expired rows already count as absent; this only keeps
   * the table small. Call it on a timer (every minute, say) from one process or several: rows
   * another call is deleting are skipped, not waited for.
   *
   * @example
   * setInterval(() => void store.deleteExpired().catch(log.warn), 60_000).unref();
   */
  deleteExpired(options?: { readonly limit?: number }): Promise<number>;
}

/** The defaults of {@link PostgresIdempotencyStoreOptions} and of `deleteExpired`. */
export const POSTGRES_IDEMPOTENCY_DEFAULTS = Object.freeze({
  table: POSTGRES_TABLE_DEFAULTS.idempotency,
  /** Rows `deleteExpired` deletes per call. */
  deleteLimit: 10_000,
});

/** `clock_timestamp()` plus parameter `$n` milliseconds. */
export const msFromNow = (n: number): string =>
  `clock_timestamp() + $${n}::float8 * interval '1 millisecond'`;

/** A claim's row read after its upsert did not take it. */
interface ClaimRow {
  state: string;
  fingerprint: string | null;
  result: string | null;
  left_ms: number | string;
}

/** @internal The statements of one idempotency table. */
export function idempotencyStatements(table: string) {
  return {
    /**
     * Takes the key when it is absent or expired, or held in progress under this token (the
     * same `requestId`) with no other fingerprint. Returns a row only when it took it.
     */
    claim: `INSERT INTO ${table} AS r (kind, key, state, token, fingerprint, result, expires_at)
VALUES ('claim', $1, 'in_progress', $2, $3, NULL, ${msFromNow(4)})
ON CONFLICT (kind, key) DO UPDATE SET
  state = 'in_progress',
  token = excluded.token,
  fingerprint = CASE WHEN r.expires_at > clock_timestamp()
    THEN coalesce(r.fingerprint, excluded.fingerprint) ELSE excluded.fingerprint END,
  result = NULL,
  expires_at = excluded.expires_at
WHERE r.expires_at <= clock_timestamp()
  OR (r.state = 'in_progress' AND r.token = excluded.token
    AND (excluded.fingerprint IS NULL OR r.fingerprint IS NULL
      OR r.fingerprint = excluded.fingerprint))
RETURNING 1`,
    read: `SELECT state, fingerprint, result,
  ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 AS left_ms
FROM ${table} WHERE kind = 'claim' AND key = $1`,
    complete: `UPDATE ${table}
SET state = 'completed', token = NULL, result = $3, expires_at = ${msFromNow(4)}
WHERE kind = 'claim' AND key = $1 AND state = 'in_progress' AND token = $2
  AND expires_at > clock_timestamp()`,
    /**
     * `complete` inside `idempotentTransaction`, which holds the row's lock from its claim to
     * its commit: no lease to check (the claim is invisible to others until then).
     */
    completeHeld: `UPDATE ${table}
SET state = 'completed', token = NULL, result = $3, expires_at = ${msFromNow(4)}
WHERE kind = 'claim' AND key = $1 AND state = 'in_progress' AND token = $2`,
    release: `DELETE FROM ${table}
WHERE kind = 'claim' AND key = $1 AND state = 'in_progress' AND token = $2
  AND expires_at > clock_timestamp()`,
    markOnce: `INSERT INTO ${table} AS r (kind, key, state, expires_at)
VALUES ('mark', $1, 'marked', ${msFromNow(2)})
ON CONFLICT (kind, key) DO UPDATE SET expires_at = excluded.expires_at
WHERE r.expires_at <= clock_timestamp()
RETURNING 1`,
    // `(SELECT clock_timestamp())` is computed once, so the expiry index can serve the scan.
    deleteExpired: `DELETE FROM ${table} WHERE ctid IN (
  SELECT ctid FROM ${table} WHERE expires_at <= (SELECT clock_timestamp())
  LIMIT $1 FOR UPDATE SKIP LOCKED)`,
  };
}

/**
 * How many times `claim` looks again when the key changed between its two statements (the
 * row it found taken was released or expired before it could be read).
 */
const MAX_CLAIM_ROUNDS = 10;

/**
 * An {@link IdempotencyStore} on PostgreSQL, shared by every process that uses the same table
 * (made by `createSchema`). `claim` is one `INSERT … ON CONFLICT DO UPDATE … WHERE` that takes
 * the key when it is absent, expired or the caller's own (`requestId`), and, when it did not
 * take it, a `SELECT` that says why (two round trips); `complete`, `release` and `markOnce` are
 * one conditional statement each, fenced by the token. Leases and TTLs are `expires_at` times
 * on the database's clock (`clock_timestamp()`, the time of each statement, also inside a long
 * transaction), so clients with skewed clocks agree. An expired row counts as absent; delete
 * old ones with `deleteExpired()`.
 *
 * Every method rejects with `StoreUnavailableError` when the database can't be reached or
 * can't answer (a network error, a closed connection, `connectionTimeoutMillis`,
 * `query_timeout`/`statement_timeout`, a shutdown): set those timeouts on your pool, as
 * retrykit sets none of its own. Other database errors (a missing table, say) are rethrown as
 * they are. A claim whose reply was lost may have taken the key: its lease runs out, or a retry
 * with the same `requestId` takes it at once.
 *
 * @example
 * import pg from 'pg';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, query_timeout: 2_000 });
 * await createSchema(pool);
 * const store = createPostgresIdempotencyStore(pool);
 * const receipt = await idempotent(store, `send:${order.id}`, () => whatsapp.send(order));
 */
export function createPostgresIdempotencyStore(
  db: PgQueryable,
  options: PostgresIdempotencyStoreOptions = {},
): PostgresIdempotencyStore {
  assertQueryable('db', db);
  const table = tableName(options, POSTGRES_IDEMPOTENCY_DEFAULTS.table);
  const serializer = options.serializer ?? jsonSerializer;
  assertFunction('serializer.serialize', serializer?.serialize);
  assertFunction('serializer.deserialize', serializer.deserialize);
  if (options.onEvent !== undefined) assertFunction('onEvent', options.onEvent);
  const { onEvent } = options;
  const clock = options.clock ?? systemClock;
  const sql = statements(idempotencyStatements(table), preparedOption(options));

  const hit = (key: string, status: 'completed' | 'in_progress' | 'duplicate'): void => {
    if (onEvent !== undefined) {
      emit(onEvent, { type: 'idempotency_hit', time: clock.now(), key, status });
    }
  };

  return {
    async claim<R = unknown>(key: string, claimOptions: ClaimOptions): Promise<ClaimResult<R>> {
      const { leaseMs, fingerprint, requestId } = checkClaim(key, claimOptions);
      const token = requestId ?? fencingToken();
      for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
        const taken = await run(db, 'claim', sql.claim, [key, token, fingerprint ?? null, leaseMs]);
        if (taken.rowCount === 1) return { status: 'claimed', token };
        const { rows } = await run(db, 'claim', sql.read, [key]);
        const row = rows[0] as ClaimRow | undefined;
        const leftMs = Number(row?.left_ms);
        if (row === undefined || !(leftMs > 0)) continue;
        if (
          fingerprint !== undefined &&
          row.fingerprint !== null &&
          row.fingerprint !== fingerprint
        ) {
          return { status: 'mismatch' };
        }
        if (row.state === 'completed') {
          let result: R;
          try {
            result = serializer.deserialize(row.result ?? '') as R;
          } catch (error) {
            throw new StoreUnavailableError('claim', error);
          }
          hit(key, 'completed');
          return { status: 'completed', result };
        }
        if (row.state === 'in_progress') {
          hit(key, 'in_progress');
          return { status: 'in_progress', retryAfterMs: leftMs };
        }
      }
      throw new StoreUnavailableError(
        'claim',
        new Error(`key ${JSON.stringify(key)} changed ${MAX_CLAIM_ROUNDS} times while claimed`),
      );
    },

    async complete(key, token, result, completeOptions) {
      checkKey(key);
      checkToken(token);
      const ttlMs = checkCompleteOptions(completeOptions);
      const text = serializer.serialize(result);
      if (typeof text !== 'string') {
        throw new TypeError(`serializer.serialize must return a string, got ${typeof text}`);
      }
      const done = await run(db, 'complete', sql.complete, [key, token, text, ttlMs]);
      return done.rowCount === 1;
    },

    async release(key, token) {
      checkKey(key);
      checkToken(token);
      const done = await run(db, 'release', sql.release, [key, token]);
      return done.rowCount === 1;
    },

    async markOnce(key, ttlMs) {
      checkKey(key);
      const ttl = checkTtl(ttlMs);
      const marked = await run(db, 'markOnce', sql.markOnce, [key, ttl]);
      if (marked.rowCount === 1) return true;
      hit(key, 'duplicate');
      return false;
    },

    async deleteExpired(deleteOptions = {}) {
      const limit = assertInteger(
        'limit',
        deleteOptions.limit ?? POSTGRES_IDEMPOTENCY_DEFAULTS.deleteLimit,
        1,
      );
      const done = await run(db, 'deleteExpired', sql.deleteExpired, [limit]);
      return done.rowCount ?? 0;
    },
  };
}
