import { type Clock, MAX_TIMER_MS, type RandomSource, systemClock } from '../core/clock.js';
import { StoreUnavailableError } from '../core/errors.js';
import { type EventListener, emit } from '../core/events.js';
import { fencingToken } from '../core/idempotency/idempotency-args.js';
import {
  IDEMPOTENCY_DEFAULTS,
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  type IdempotentContext,
} from '../core/idempotency/idempotent.js';
import { delayFor, resolveBackoff } from '../core/retry/backoff.js';
import {
  assertFunction,
  assertKey,
  assertNumber,
  assertOneOf,
  showValue,
} from '../core/validate.js';
import { jsonSerializer, type Serializer } from '../redis/serializer.js';
import {
  assertQueryable,
  isPool,
  type PgClientLike,
  type PgPoolLike,
  type PgQueryable,
  type PreparedStatementsOption,
  preparedOption,
  run as runStatement,
  type Statement,
  statements,
  storeError,
} from './client.js';
import { idempotencyStatements, POSTGRES_IDEMPOTENCY_DEFAULTS } from './idempotency.js';
import { type PostgresTableOptions, tableName } from './schema.js';

/** The transaction isolation levels {@link idempotentTransaction} can begin with. */
export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

const ISOLATION_LEVELS = [
  'read committed',
  'repeatable read',
  'serializable',
] as const satisfies readonly IsolationLevel[];

/** Options of {@link idempotentTransaction}. */
export interface IdempotentTransactionOptions
  extends PostgresTableOptions,
    PreparedStatementsOption {
  /** The idempotency table (made by `createSchema`). @default 'retrykit_idempotency' */
  readonly table?: string;
  /**
   * How long the key's completion (and the result) is remembered, in milliseconds.
   * @default 86_400_000 (1 day)
   */
  readonly resultTtlMs?: number;
  /**
   * A digest of the request: a later call with the same key and another fingerprint fails with
   * `IdempotencyKeyReuseError`.
   */
  readonly fingerprint?: string;
  /**
   * How long a duplicate waits, in milliseconds, for the transaction that holds the key (on its
   * row lock, as PostgreSQL's `lock_timeout`) or for a claim of the key by
   * `createPostgresIdempotencyStore` (polling), before failing with
   * `IdempotencyInProgressError` (whose `retryAfterMs` is 0 after a lock wait: a running
   * transaction has no lease to report). 0 fails at once (after 1 ms on a lock).
   * @default 10_000
   */
  readonly waitForResultMs?: number;
  /** The transaction's isolation level. @default 'read committed' */
  readonly isolationLevel?: IsolationLevel;
  /** How results are stored in the `result` column. @default jsonSerializer */
  readonly serializer?: Serializer;
  /** Receives `idempotency_hit` events (a duplicate that got the stored result, or waited). */
  readonly onEvent?: EventListener;
  /** Stops waiting for a claim held by a store (not a lock wait, nor `fn`, which receives it). */
  readonly signal?: AbortSignal;
  /** Time of events, and the sleeps between looks at a store's claim. @default systemClock */
  readonly clock?: Clock;
  /** Random source for the poll jitter. @default Math.random */
  readonly random?: RandomSource;
}

/**
 * The connection `fn` gets: for a pool, the client its `connect()` hands out (`pg.PoolClient`
 * for a `pg.Pool`); for a single connection, that connection. (The first case matches `pg`'s
 * two `connect` overloads, promise and callback, the second a pool with only the promise.)
 */
export type TransactionClient<D> = D extends {
  connect(): Promise<infer C>;
  connect(callback: (...args: never[]) => void): void;
  readonly totalCount: number;
}
  ? C
  : D extends { connect(): Promise<infer C>; readonly totalCount: number }
    ? C
    : D;

/** SQLSTATE of `lock_timeout` running out. */
const LOCK_NOT_AVAILABLE = '55P03';
/** SQLSTATEs after which the whole transaction may simply run again. */
const RETRY_TRANSACTION = new Set(['40001', '40P01']);

/** Transactions on one connection (not a pool) take turns: one at a time per connection. */
const turns = new WeakMap<object, Promise<unknown>>();

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Runs `fn` in a transaction that also records `key` as completed, with `fn`'s result: the
 * writes `fn` makes through `tx` and the key commit together or not at all. For database work
 * that is exactly once: a crash before the commit leaves neither the writes nor the key, and
 * the next call runs `fn` again; after the commit, every later call gets the stored result
 * without running `fn`.
 *
 * - A duplicate while the first runs waits on the key's row lock (up to `waitForResultMs`),
 *   then gets the stored result, or runs `fn` itself if the first rolled back.
 * - `fn` throws (or the commit fails): the transaction rolls back, the key stays free, the
 *   error is rethrown. A serialization failure or deadlock (`40001`, `40P01`) inside `fn` is
 *   rethrown too: run the call again.
 * - The database can't be reached before `fn` ran: `StoreUnavailableError`, nothing ran. A
 *   connection lost during `COMMIT` also rejects with `StoreUnavailableError`: the outcome is
 *   unknown, and a retry either gets the stored result or runs `fn` once more (never both).
 *
 * `fn` must do its writes through `tx` (the same connection), not through the pool. Work
 * outside the database (an HTTP call) is not rolled back: use `idempotent()` for that. With a
 * pool, each call checks out a connection for its transaction; with a single connection
 * (`pg.Client`), calls take turns, and nothing else may use that connection meanwhile.
 *
 * @example
 * const order = await idempotentTransaction(pool, `order:${webhook.id}`, async (tx) => {
 *   const { rows } = await tx.query('INSERT INTO orders (ref) VALUES ($1) RETURNING id', [ref]);
 *   await tx.query('UPDATE stock SET n = n - 1 WHERE sku = $1', [sku]);
 *   return { orderId: rows[0].id };
 * });
 */
export async function idempotentTransaction<D extends PgQueryable, T>(
  db: D,
  key: string,
  fn: (tx: TransactionClient<D>, context: IdempotentContext) => T | PromiseLike<T>,
  options: IdempotentTransactionOptions = {},
): Promise<Awaited<T>> {
  assertQueryable('db', db);
  assertKey('key', key);
  assertFunction('fn', fn);
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${showValue(options)}`);
  }
  const table = tableName(options, POSTGRES_IDEMPOTENCY_DEFAULTS.table);
  const resultTtlMs = Math.ceil(
    assertNumber('resultTtlMs', options.resultTtlMs ?? IDEMPOTENCY_DEFAULTS.resultTtlMs, 1),
  );
  const waitForResultMs = assertNumber(
    'waitForResultMs',
    options.waitForResultMs ?? IDEMPOTENCY_DEFAULTS.waitForResultMs,
    0,
  );
  const fingerprint =
    options.fingerprint === undefined ? undefined : assertKey('fingerprint', options.fingerprint);
  const isolation = assertOneOf(
    'isolationLevel',
    options.isolationLevel ?? 'read committed',
    ISOLATION_LEVELS,
  );
  const serializer = options.serializer ?? jsonSerializer;
  assertFunction('serializer.serialize', serializer?.serialize);
  assertFunction('serializer.deserialize', serializer.deserialize);
  for (const name of ['onEvent', 'random'] as const) {
    if (options[name] !== undefined) assertFunction(name, options[name]);
  }
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const { signal, onEvent } = options;
  const context: IdempotentContext = { key, signal: signal ?? new AbortController().signal };
  const sql = statements(idempotencyStatements(table), preparedOption(options));
  const hit = (status: 'completed' | 'in_progress'): void => {
    if (onEvent !== undefined) {
      emit(onEvent, { type: 'idempotency_hit', time: clock.now(), key, status });
    }
  };

  // Set when a ROLLBACK failed: the connection may still be inside a transaction.
  let broken = false;
  const rollback = (tx: PgClientLike): Promise<unknown> =>
    tx.query('ROLLBACK').catch(() => {
      broken = true;
    });

  const attempt = async (tx: PgClientLike): Promise<Awaited<T>> => {
    const pollBackoff = resolveBackoff(IDEMPOTENCY_DEFAULTS.pollBackoff, 'pollBackoff');
    const start = clock.now();
    let polls = 0;
    let previousDelay: number | undefined;
    const query = (operation: string, sql: string | Statement, values?: unknown[]) =>
      runStatement(tx, operation, sql, values);
    for (;;) {
      signal?.throwIfAborted();
      const waited = clock.now() - start;
      const lockMs = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(waitForResultMs - waited)));
      await query(
        'begin',
        `BEGIN ISOLATION LEVEL ${isolation}; SET LOCAL lock_timeout = ${lockMs}`,
      );
      const token = fencingToken();
      let taken: boolean;
      try {
        const claim = await query('claim', sql.claim, [
          key,
          token,
          fingerprint ?? null,
          IDEMPOTENCY_DEFAULTS.leaseMs,
        ]);
        taken = claim.rowCount === 1;
      } catch (error) {
        await rollback(tx);
        const state = sqlState(error);
        if (state !== undefined && RETRY_TRANSACTION.has(state)) continue;
        if (state === LOCK_NOT_AVAILABLE) {
          hit('in_progress');
          throw new IdempotencyInProgressError(key, 0, clock.now() - start);
        }
        throw error;
      }
      if (taken) return run(tx, token, query);
      await query('rollback', 'ROLLBACK');
      const { rows } = await query('read', sql.read, [key]);
      const row = rows[0] as
        | { state: string; fingerprint: string | null; result: string | null; left_ms: unknown }
        | undefined;
      const leftMs = Number(row?.left_ms);
      if (row === undefined || !(leftMs > 0)) continue;
      if (
        fingerprint !== undefined &&
        row.fingerprint !== null &&
        row.fingerprint !== fingerprint
      ) {
        throw new IdempotencyKeyReuseError(key);
      }
      if (row.state === 'completed') {
        let result: Awaited<T>;
        try {
          result = serializer.deserialize(row.result ?? '') as Awaited<T>;
        } catch (error) {
          throw new StoreUnavailableError('read', error);
        }
        hit('completed');
        return result;
      }
      // Held by a store's claim (idempotent() with createPostgresIdempotencyStore): wait for its
      // result or its lease, as idempotent() does.
      hit('in_progress');
      const now = clock.now();
      const left = waitForResultMs - (now - start);
      if (left <= 0) throw new IdempotencyInProgressError(key, leftMs, now - start);
      const backoff = delayFor(pollBackoff, polls++, previousDelay, random);
      previousDelay = backoff;
      await clock.sleep(Math.min(left, Math.max(1, Math.min(backoff, leftMs + 1))), signal);
    }
  };

  const run = async (
    tx: PgClientLike,
    token: string,
    query: (operation: string, sql: string | Statement, values?: unknown[]) => Promise<unknown>,
  ): Promise<Awaited<T>> => {
    let value: Awaited<T>;
    try {
      await query('claim', 'SET LOCAL lock_timeout TO DEFAULT');
      value = await fn(tx as TransactionClient<D>, context);
      const text = serializer.serialize(value);
      if (typeof text !== 'string') {
        throw new TypeError(`serializer.serialize must return a string, got ${typeof text}`);
      }
      const done = (await query('complete', sql.completeHeld, [key, token, text, resultTtlMs])) as {
        rowCount: number | null;
      };
      if (done.rowCount !== 1) {
        // We hold the row's lock: nothing else can have changed it.
        throw new Error(`idempotency key ${JSON.stringify(key)} was lost inside its transaction`);
      }
    } catch (error) {
      await rollback(tx);
      throw error;
    }
    await query('commit', 'COMMIT');
    return value;
  };

  if (isPool(db)) {
    let tx: Awaited<ReturnType<PgPoolLike['connect']>>;
    try {
      tx = await db.connect();
    } catch (error) {
      throw storeError('connect', error);
    }
    // A connection that breaks while held emits `error`: heard here (the query in flight
    // rejects too), so that it does not crash the process.
    const onError = (): void => {
      broken = true;
    };
    tx.on?.('error', onError);
    try {
      return await attempt(tx);
    } catch (error) {
      if (error instanceof StoreUnavailableError) broken = true;
      throw error;
    } finally {
      tx.removeListener?.('error', onError);
      // A connection that may still be inside a transaction goes back to be closed.
      tx.release(broken);
    }
  }
  const previous = turns.get(db) ?? Promise.resolve();
  const mine = previous.catch(() => undefined).then(() => attempt(db));
  turns.set(
    db,
    mine.catch(() => undefined),
  );
  return mine;
}
