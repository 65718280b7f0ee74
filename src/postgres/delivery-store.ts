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
  DeliveryAttempt,
  DeliveryRecord,
  DeliveryStore,
  RecordAttemptResult,
} from '../core/delivery/delivery-types.js';
import { StoreUnavailableError } from '../core/errors.js';
import { assertFunction, assertInteger, assertKey, assertNumber } from '../core/validate.js';
// The Redis adapter's serializer is plain TypeScript (no ioredis): payloads are stored the same
// way by both adapters.
import { jsonSerializer, type Serializer } from '../redis/serializer.js';
import {
  assertIdentifier,
  assertQueryable,
  type PgQueryable,
  type PreparedStatementsOption,
  preparedOption,
  qualifiedName,
  run,
  statements,
} from './client.js';
import { msFromNow } from './idempotency.js';
import { POSTGRES_TABLE_DEFAULTS, type PostgresTableOptions, tableName } from './schema.js';

/** Options of {@link createPostgresDeliveryStore}. */
export interface PostgresDeliveryStoreOptions
  extends PostgresTableOptions,
    PreparedStatementsOption {
  /**
   * The table of records, one row per logical message, made by `createSchema` (its
   * `deliveryTable`).
   * @default 'retrykit_deliveries'
   */
  readonly table?: string;
  /**
   * The table of attempts, one row per send with its status, made by `createSchema` (its
   * `deliveryAttemptsTable`); in the same `schema` as `table`.
   * @default 'retrykit_delivery_attempts'
   */
  readonly attemptsTable?: string;
  /**
   * How long a record (with its attempts) is kept after its last write, in milliseconds, on the
   * database's clock. Expired rows count as absent; `deleteExpired()` deletes them.
   * @default 604_800_000 (7 days)
   */
  readonly recordTtlMs?: number;
  /** How payloads are stored in the `payload` text column. @default jsonSerializer */
  readonly serializer?: Serializer;
}

/** A {@link DeliveryStore} on PostgreSQL, with a way to clear out expired records. */
export interface PostgresDeliveryStore<P = unknown, E = unknown> extends DeliveryStore<P, E> {
  /**
   * Deletes up to `limit` expired records (their attempts go with them) and resolves with how
   * many it deleted. Expired records already count as absent; this only keeps the tables
   * small. Call it on a timer from one process or several: rows another call is deleting are
   * skipped, not waited for.
   *
   * @example
   * setInterval(() => void deliveries.deleteExpired().catch(log.warn), 60_000).unref();
   */
  deleteExpired(options?: { readonly limit?: number }): Promise<number>;
}

/** The defaults of {@link PostgresDeliveryStoreOptions} and of `deleteExpired`. */
export const POSTGRES_DELIVERY_STORE_DEFAULTS = Object.freeze({
  table: POSTGRES_TABLE_DEFAULTS.deliveries,
  attemptsTable: POSTGRES_TABLE_DEFAULTS.deliveryAttempts,
  recordTtlMs: DELIVERY_STORE_DEFAULTS.recordTtlMs,
  /** Records `deleteExpired` deletes per call. */
  deleteLimit: 10_000,
});

/** A timestamptz as whole milliseconds since the epoch (float8, exact for these times). */
const ms = (column: string): string => `floor(extract(epoch FROM ${column}) * 1000)::float8`;

/**
 * `clock_timestamp()` as an InitPlan: computed once per statement, so that `due_at <= NOW` and
 * `expires_at <= NOW` are index conditions (a volatile function is only ever a filter, and an
 * index scan by `due_at` would then read every row of the index).
 */
const NOW = '(SELECT clock_timestamp())';

/** A record's row, as `get` and `claim` select it. */
interface RecordRow {
  key: string;
  payload: string;
  created_ms: number;
  sender: string | null;
  due_ms: number | null;
  lease_token: string;
  attempts: AttemptJson[] | string;
}

/** An attempt as `json_build_object` writes it. */
interface AttemptJson {
  attemptId: string;
  externalId: string | null;
  at: number;
  status: string | null;
  rank: number;
  statusAt: number | null;
  statusTimes: Record<string, number>;
  errors: unknown[];
}

/** @internal The statements of one pair of delivery tables. */
export function deliveryStatements(msg: string, att: string) {
  /** A record's columns, from `msg` row `m`, with its attempts in order as one json array. */
  const recordColumns = `m.key, m.payload, ${ms('m.created_at')} AS created_ms, m.sender,
  ${ms('m.due_at')} AS due_ms, m.lease_token,
  (SELECT coalesce(json_agg(json_build_object(
      'attemptId', a.attempt_id, 'externalId', a.external_id, 'at', a.at_ms,
      'status', a.status, 'rank', a.rank, 'statusAt', a.status_at_ms,
      'statusTimes', a.status_times, 'errors', a.errors) ORDER BY a.seq), '[]'::json)
    FROM ${att} a WHERE a.key = m.key) AS attempts`;
  return {
    /**
     * Makes the record, or makes it again over an expired one (whose attempts go: the record's
     * row is locked before them, the order every statement keeps). Returns a row only when it
     * made one.
     */
    begin: `WITH expired AS (
  SELECT key FROM ${msg} WHERE key = $1::text AND expires_at <= clock_timestamp() FOR UPDATE
), stale AS (
  DELETE FROM ${att} a USING expired WHERE a.key = expired.key
)
INSERT INTO ${msg} AS m (key, payload, alias, sender, created_at, expires_at, due_at,
  lease_token)
VALUES ($1::text, $2::text, $3::text, $6::text, clock_timestamp(), ${msFromNow(4)},
  ${msFromNow(5)}, gen_random_uuid()::text)
ON CONFLICT (key) DO UPDATE SET payload = excluded.payload, alias = excluded.alias,
  sender = excluded.sender,
  created_at = excluded.created_at, expires_at = excluded.expires_at, due_at = excluded.due_at,
  lease_token = excluded.lease_token, attempt_ids = '{}'
WHERE m.expires_at <= clock_timestamp()
RETURNING m.key, m.payload, ${ms('m.created_at')} AS created_ms, m.sender,
  ${ms('m.due_at')} AS due_ms,
  m.lease_token, '[]'::json AS attempts`,
    /**
     * Adds or updates an attempt under the record's row lock; `attempt_ids` (read at the lock,
     * so never stale) fences `ifAttempts` and numbers the attempt. `n` is 0 when nothing was
     * written (no record, or the fence did not match).
     */
    attempt: `WITH m AS (
  UPDATE ${msg} m SET
    attempt_ids = CASE WHEN $2::text = ANY (m.attempt_ids) THEN m.attempt_ids
      ELSE m.attempt_ids || $2::text END,
    expires_at = ${msFromNow(5)},
    due_at = CASE $7::text WHEN 'keep' THEN m.due_at ELSE ${msFromNow(8)} END,
    lease_token = CASE $7::text WHEN 'keep' THEN m.lease_token ELSE gen_random_uuid()::text END
  WHERE m.key = $1::text AND m.expires_at > clock_timestamp()
    AND ($6::integer IS NULL OR cardinality(m.attempt_ids) = $6::integer)
  RETURNING m.key, array_position(m.attempt_ids, $2::text) - 1 AS seq
), put AS (
  INSERT INTO ${att} AS a (key, seq, attempt_id, external_id, at_ms)
  SELECT m.key, m.seq, $2::text, $3::text, $4::bigint FROM m
  ON CONFLICT (key, attempt_id) DO UPDATE SET external_id = excluded.external_id
  WHERE a.external_id IS NULL AND excluded.external_id IS NOT NULL
  RETURNING 1
)
SELECT count(*)::integer AS n FROM m`,
    /**
     * The whole of `applyStatus`, one statement. The attempt is found by its external id
     * (else by the record's alias: its latest attempt without one); the record's row is
     * locked first (as every writer of a record does), then the attempt's, so that `t` holds
     * the attempt as it is now, after any concurrent report committed. The rank fold, the
     * status times and the schedule are computed from `t`.
     */
    status: `WITH cand AS (
  SELECT * FROM (
    (SELECT a.key, a.seq, 0 AS via FROM ${att} a JOIN ${msg} m ON m.key = a.key
      WHERE a.external_id = $1::text AND m.expires_at > clock_timestamp()
      ORDER BY m.created_at LIMIT 1)
    UNION ALL
    (SELECT a.key, a.seq, 1 AS via FROM ${msg} m JOIN ${att} a ON a.key = m.key
      WHERE $2::text IS NOT NULL AND m.alias = $2::text AND m.expires_at > clock_timestamp()
        AND a.external_id IS NULL
      ORDER BY m.created_at, a.seq DESC LIMIT 1)
  ) c ORDER BY via LIMIT 1
), locked AS (
  SELECT m.key, cardinality(m.attempt_ids) AS n FROM ${msg} m
  WHERE m.key = (SELECT key FROM cand) AND m.expires_at > clock_timestamp()
  FOR NO KEY UPDATE
), t AS (
  SELECT a.key, a.seq, a.attempt_id, a.external_id, a.status_times, a.errors,
    a.seq = l.n - 1 AS latest,
    (a.status IS NULL OR $4::integer > a.rank
      OR ($4::integer = a.rank AND $5::bigint < a.status_at_ms)) AS wins
  FROM ${att} a JOIN locked l ON l.key = a.key
  WHERE a.seq = (SELECT seq FROM cand) AND (a.external_id IS NULL OR a.external_id = $1::text)
  FOR NO KEY UPDATE OF a
), fold AS (
  UPDATE ${att} a SET
    external_id = $1::text,
    status = CASE WHEN t.wins THEN $3::text ELSE a.status END,
    rank = CASE WHEN t.wins THEN $4::integer ELSE a.rank END,
    status_at_ms = CASE WHEN t.wins THEN $5::bigint ELSE a.status_at_ms END,
    errors = CASE WHEN t.wins THEN $6::json ELSE t.errors END,
    status_times = CASE
      WHEN (t.status_times ->> $3::text) IS NULL OR (t.status_times ->> $3::text)::bigint > $5::bigint
      THEN jsonb_set(t.status_times, ARRAY[$3::text], to_jsonb($5::bigint))
      ELSE t.status_times END
  FROM t WHERE a.key = t.key AND a.seq = t.seq
  RETURNING 1
), touch AS (
  UPDATE ${msg} m SET
    expires_at = ${msFromNow(8)},
    due_at = CASE WHEN NOT t.latest OR $7::text IS NULL THEN m.due_at
      WHEN $7::text = 'wake' THEN clock_timestamp() END,
    lease_token = CASE WHEN t.latest AND $7::text IS NOT NULL THEN gen_random_uuid()::text
      ELSE m.lease_token END
  FROM t WHERE m.key = t.key
  RETURNING 1
)
SELECT t.key, t.attempt_id, t.wins AS applied, t.external_id IS NULL AS attached FROM t`,
    get: `SELECT ${recordColumns} FROM ${msg} m
WHERE m.key = $1::text AND m.expires_at > clock_timestamp()`,
    findKey: `SELECT a.key FROM ${att} a JOIN ${msg} m ON m.key = a.key
WHERE a.external_id = $1::text AND m.expires_at > clock_timestamp()
ORDER BY m.created_at LIMIT 1`,
    /**
     * Leases the earliest due records; rows another claimer (or a writer) holds are skipped.
     * Expired records found due are deleted on the way.
     */
    claim: `WITH gone AS (
  DELETE FROM ${msg} WHERE key IN (
    SELECT key FROM ${msg}
    WHERE due_at <= ${NOW} AND expires_at <= ${NOW}
    ORDER BY due_at LIMIT $1::integer FOR UPDATE SKIP LOCKED)
), due AS (
  SELECT key, due_at FROM ${msg}
  WHERE due_at <= ${NOW} AND expires_at > ${NOW}
  ORDER BY due_at LIMIT $1::integer FOR NO KEY UPDATE SKIP LOCKED
), claimed AS (
  UPDATE ${msg} m SET due_at = ${msFromNow(2)}, lease_token = gen_random_uuid()::text,
    expires_at = ${msFromNow(3)}
  FROM due WHERE m.key = due.key
  RETURNING ${recordColumns}, due.due_at AS was_due
)
SELECT * FROM claimed ORDER BY was_due, key`,
    reschedule: `UPDATE ${msg} SET due_at = ${msFromNow(3)}, lease_token = gen_random_uuid()::text,
  expires_at = ${msFromNow(4)}
WHERE key = $1::text AND lease_token = $2::text AND expires_at > clock_timestamp()`,
    deleteExpired: `DELETE FROM ${msg} WHERE key IN (
  SELECT key FROM ${msg} WHERE expires_at <= ${NOW}
  LIMIT $1::integer FOR UPDATE SKIP LOCKED)`,
  };
}

/** How many times `begin` looks again when the record changed between its two statements. */
const MAX_BEGIN_ROUNDS = 10;

/**
 * A {@link DeliveryStore} on PostgreSQL, shared by every process that uses the same tables
 * (made by `createSchema`): a senders' process and a webhook handler's, several reconcilers.
 * Records are rows of `table` (`retrykit_deliveries`), their attempts rows of `attemptsTable`
 * (`retrykit_delivery_attempts`) with the external id (the wamid) indexed and the status, its
 * rank, its time and each status's first time as columns, so that plain SQL can measure
 * delivery (see docs/postgres.md).
 *
 * `applyStatus` is one statement whatever the arrival order: it locks the record's row, then
 * the attempt's, and folds the report by rank (`foldByRank`: sent < delivered < read, failed
 * final) into the attempt as it is at that moment, so concurrent webhooks for one wamid, from
 * any number of connections, end at the highest rank. `claimDue` leases due records with
 * `FOR UPDATE SKIP LOCKED` and a fresh lease token each. Due times, `createdAt` and expiry are
 * on the database's clock (`clock_timestamp()`); an expired record counts as absent, and
 * `deleteExpired()` deletes old ones. `begin`, `recordAttempt` and `applyStatus` read the
 * record back with a second statement after writing. Needs PostgreSQL 13 or later
 * (`gen_random_uuid()`).
 *
 * Every method rejects with `StoreUnavailableError` when the database can't be reached or
 * can't answer (network errors, closed connections, pool and query timeouts: set those on your
 * pool); other database errors (a missing table, say) are rethrown as they are.
 *
 * @example
 * import pg from 'pg';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, query_timeout: 2_000 });
 * await createSchema(pool);
 * const deliveries = createPostgresDeliveryStore<CloudMessage, WebhookErrorDetail>(pool);
 */
export function createPostgresDeliveryStore<P = unknown, E = unknown>(
  db: PgQueryable,
  options: PostgresDeliveryStoreOptions = {},
): PostgresDeliveryStore<P, E> {
  assertQueryable('db', db);
  const msg = tableName(options, POSTGRES_DELIVERY_STORE_DEFAULTS.table);
  const att = qualifiedName(
    assertIdentifier(
      'attemptsTable',
      options.attemptsTable ?? POSTGRES_DELIVERY_STORE_DEFAULTS.attemptsTable,
    ),
    options.schema,
  );
  const ttlMs = Math.ceil(
    assertNumber(
      'recordTtlMs',
      options.recordTtlMs ?? POSTGRES_DELIVERY_STORE_DEFAULTS.recordTtlMs,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
  );
  const serializer = options.serializer ?? jsonSerializer;
  assertFunction('serializer.serialize', serializer?.serialize);
  assertFunction('serializer.deserialize', serializer.deserialize);
  const sql = statements(deliveryStatements(msg, att), preparedOption(options));

  const serialize = (value: unknown): string => {
    const text = serializer.serialize(value);
    if (typeof text !== 'string') {
      throw new TypeError(`serializer.serialize must return a string, got ${typeof text}`);
    }
    return text;
  };

  const toRecord = (operation: string, row: RecordRow): DeliveryRecord<P, E> => {
    try {
      const attempts = typeof row.attempts === 'string' ? JSON.parse(row.attempts) : row.attempts;
      return freeze<P, E>({
        key: row.key,
        payload: serializer.deserialize(row.payload) as P,
        createdAt: Number(row.created_ms),
        sender: row.sender ?? undefined,
        attempts: (attempts as AttemptJson[]).map((a) => toAttempt<E>(a)),
        dueAt: row.due_ms === null ? undefined : Number(row.due_ms),
      });
    } catch (error) {
      throw new StoreUnavailableError(`delivery.${operation}`, error);
    }
  };

  const read = async (operation: string, key: string) => {
    const { rows } = await run(db, `delivery.${operation}`, sql.get, [key]);
    const row = rows[0] as RecordRow | undefined;
    return row === undefined ? undefined : toRecord(operation, row);
  };

  return {
    async begin(key, payload, beginOptions) {
      assertKey('key', key);
      const { alias, sender, dueInMs } = checkBeginOptions(beginOptions);
      const text = serialize(payload);
      for (let round = 0; round < MAX_BEGIN_ROUNDS; round++) {
        const made = await run(db, 'delivery.begin', sql.begin, [
          key,
          text,
          alias ?? null,
          ttlMs,
          dueInMs ?? null,
          sender ?? null,
        ]);
        const row = made.rows[0] as RecordRow | undefined;
        if (row !== undefined) return { created: true, record: toRecord('begin', row) };
        const record = await read('begin', key);
        if (record !== undefined) return { created: false, record };
      }
      throw new StoreUnavailableError(
        'delivery.begin',
        new Error(`record ${JSON.stringify(key)} changed ${MAX_BEGIN_ROUNDS} times while begun`),
      );
    },

    async recordAttempt(key, input, attemptOptions): Promise<RecordAttemptResult<P, E>> {
      const attempt = checkAttempt(key, input);
      const { ifAttempts, dueInMs } = checkAttemptOptions(attemptOptions);
      const mode = dueInMs === undefined ? 'keep' : dueInMs === null ? 'close' : 'set';
      const done = await run(db, 'delivery.recordAttempt', sql.attempt, [
        key,
        attempt.attemptId,
        attempt.externalId ?? null,
        attempt.at,
        ttlMs,
        ifAttempts ?? null,
        mode,
        dueInMs ?? null,
      ]);
      const written = Number((done.rows[0] as { n: number } | undefined)?.n) === 1;
      const record = await read('recordAttempt', key);
      if (record === undefined) return { outcome: 'missing' };
      return { outcome: written ? 'recorded' : 'conflict', record };
    },

    async applyStatus(externalId, input): Promise<ApplyStatusResult<P, E>> {
      const report = checkReport(externalId, input);
      const { rows } = await run(db, 'delivery.applyStatus', sql.status, [
        externalId,
        report.alias ?? null,
        report.status,
        report.rank,
        report.timestampMs,
        JSON.stringify(report.errors ?? []),
        report.schedule ?? null,
        ttlMs,
      ]);
      const row = rows[0] as
        | { key: string; attempt_id: string; applied: boolean; attached: boolean }
        | undefined;
      if (row === undefined) return { outcome: 'unknown' };
      const record = await read('applyStatus', row.key);
      if (record === undefined) return { outcome: 'unknown' };
      return {
        outcome: row.applied ? 'applied' : 'stale',
        key: row.key,
        attemptId: row.attempt_id,
        record,
        attached: row.attached,
      };
    },

    async findKey(externalId) {
      assertKey('externalId', externalId);
      const { rows } = await run(db, 'delivery.findKey', sql.findKey, [externalId]);
      return (rows[0] as { key: string } | undefined)?.key;
    },

    async get(key) {
      assertKey('key', key);
      return read('get', key);
    },

    async claimDue(claimOptions) {
      const { limit, leaseMs } = checkClaimOptions(claimOptions);
      const { rows } = await run(db, 'delivery.claimDue', sql.claim, [limit, leaseMs, ttlMs]);
      return (rows as (RecordRow & { lease_token: string })[]).map((row) => ({
        record: toRecord('claimDue', row),
        token: row.lease_token,
      }));
    },

    async reschedule(key, token, delay) {
      const dueInMs = checkReschedule(key, token, delay);
      const done = await run(db, 'delivery.reschedule', sql.reschedule, [
        key,
        token,
        dueInMs,
        ttlMs,
      ]);
      return done.rowCount === 1;
    },

    async deleteExpired(deleteOptions = {}) {
      const limit = assertInteger(
        'limit',
        deleteOptions.limit ?? POSTGRES_DELIVERY_STORE_DEFAULTS.deleteLimit,
        1,
      );
      const done = await run(db, 'delivery.deleteExpired', sql.deleteExpired, [limit]);
      return done.rowCount ?? 0;
    },
  };
}

function toAttempt<E>(a: AttemptJson): DeliveryAttempt<E> {
  return Object.freeze({
    attemptId: a.attemptId,
    externalId: a.externalId ?? undefined,
    at: Number(a.at),
    status: a.status ?? undefined,
    rank: Number(a.rank),
    statusAt: a.statusAt === null ? undefined : Number(a.statusAt),
    statusTimes: Object.freeze({ ...a.statusTimes }),
    errors: Object.freeze([...(a.errors as E[])]),
  });
}

function freeze<P, E>(r: DeliveryRecord<P, E>): DeliveryRecord<P, E> {
  return Object.freeze({ ...r, attempts: Object.freeze([...r.attempts]) });
}
