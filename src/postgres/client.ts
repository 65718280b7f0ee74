import { StoreUnavailableError } from '../core/errors.js';
import { showValue } from '../core/validate.js';

/**
 * What retrykit reads from a query's result: `pg`'s `QueryResult` has these (and more).
 */
export interface PgQueryResultLike {
  readonly rows: readonly unknown[];
  readonly rowCount: number | null;
}

/** A statement as `pg`'s `query(config)` takes it; with a `name`, it is prepared once per connection. */
export interface PgQueryConfigLike {
  readonly text: string;
  readonly values?: unknown[];
  readonly name?: string;
}

/**
 * A PostgreSQL connection as retrykit uses it: anything with `pg`'s `query(text, values)` and
 * `query({ text, values, name })`. A `pg.Client`, a `pg.PoolClient` and a `pg.Pool` all fit,
 * of any `pg` 8 version (the type is structural, so retrykit does not pin yours).
 */
export interface PgClientLike {
  query(textOrConfig: string | PgQueryConfigLike, values?: unknown[]): Promise<PgQueryResultLike>;
}

/** A connection checked out of a pool: `pg`'s `PoolClient`. */
export interface PgPoolClientLike extends PgClientLike {
  /** Returns the connection to the pool; with an error (or `true`), the pool closes it. */
  release(error?: Error | boolean): void;
  /**
   * `pg` emits `error` on a checked-out connection that breaks (and an unheard `error` crashes
   * the process): retrykit listens while it holds one.
   */
  on?(event: 'error', listener: (error: Error) => void): unknown;
  removeListener?(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * A connection pool: `pg`'s `Pool`. Single statements run on `query`; a transaction checks
 * out a connection with `connect()` and releases it after.
 */
export interface PgPoolLike extends PgClientLike {
  connect(): Promise<PgPoolClientLike>;
  /** Connections the pool holds; its presence tells a pool from a `pg.Client`. */
  readonly totalCount: number;
}

/** What the PostgreSQL adapters take: a `pg.Pool`, or one connection (`pg.Client`, `PoolClient`). */
export type PgQueryable = PgPoolLike | PgClientLike;

/** Throws unless `value` can run queries. */
export function assertQueryable(name: string, value: unknown): PgQueryable {
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as { query?: unknown }).query !== 'function'
  ) {
    throw new TypeError(
      `${name} must be a pg Pool or Client (an object with query()), got ${showValue(value)}`,
    );
  }
  return value as PgQueryable;
}

/** `true` for a pool (it hands out connections), `false` for one connection. */
export function isPool(db: PgQueryable): db is PgPoolLike {
  return (
    typeof (db as Partial<PgPoolLike>).connect === 'function' &&
    typeof (db as Partial<PgPoolLike>).totalCount === 'number'
  );
}

/**
 * SQLSTATE classes and codes that mean "the database can't answer now", not "this statement
 * is wrong": connection exceptions (08), insufficient resources (53), operator intervention
 * (57: shutdown, cancelled by statement_timeout), system errors (58).
 */
const UNAVAILABLE_SQLSTATE = /^(08|53|57|58)/;

/** Node's network error codes (`ECONNREFUSED`, `ETIMEDOUT`, …). */
const NETWORK_CODE = /^E[A-Z]+$/;

/**
 * Whether a `pg` error means the database can't be reached or can't answer now: a network
 * error, a connection closed mid-query, a pool or query timeout, or a SQLSTATE of the classes
 * above. Anything else (a constraint, a syntax error, a missing table) is the caller's to see.
 */
export function isUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (/^[0-9A-Z]{5}$/.test(code) && !NETWORK_CODE.test(code)) {
      return UNAVAILABLE_SQLSTATE.test(code);
    }
    if (NETWORK_CODE.test(code)) return true;
  }
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Client was closed|not queryable|Cannot use a pool after calling end/i.test(
    message,
  );
}

/** Maps an unavailable-database error to `StoreUnavailableError`; leaves others as they are. */
export function storeError(operation: string, error: unknown): unknown {
  if (error instanceof StoreUnavailableError) return error;
  return isUnavailable(error) ? new StoreUnavailableError(operation, error) : error;
}

/** One of retrykit's statements: its text, and the name it is prepared under (if it is). */
export interface Statement {
  readonly text: string;
  readonly name: string | undefined;
}

/**
 * `text` as a statement, named after a hash of its text when `prepared` (so that two stores on
 * different tables never share a name on one connection).
 */
export function statement(text: string, prepared: boolean): Statement {
  if (!prepared) return { text, name: undefined };
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return { text, name: `retrykit_${(hash >>> 0).toString(36)}_${text.length.toString(36)}` };
}

/** Prepares each statement of a set (see {@link statement}). */
export function statements<K extends string>(
  texts: Record<K, string>,
  prepared: boolean,
): Record<K, Statement> {
  const out = {} as Record<K, Statement>;
  for (const key of Object.keys(texts) as K[]) out[key] = statement(texts[key], prepared);
  return out;
}

/**
 * Runs one statement (or, given as text without `values`, a simple query of several),
 * rejecting with `StoreUnavailableError` when the database can't answer.
 */
export async function run(
  db: PgClientLike,
  operation: string,
  sql: string | Statement,
  values?: unknown[],
): Promise<PgQueryResultLike> {
  try {
    if (typeof sql === 'string') {
      return await (values === undefined ? db.query(sql) : db.query(sql, values));
    }
    return await (sql.name === undefined
      ? db.query(sql.text, values ?? [])
      : db.query({ name: sql.name, text: sql.text, values: values ?? [] }));
  } catch (error) {
    throw storeError(operation, error);
  }
}

/** The `preparedStatements` option every PostgreSQL adapter takes. */
export interface PreparedStatementsOption {
  /**
   * Run retrykit's statements as named prepared statements (`pg`'s `{ name, text }`): each is
   * parsed and planned once per connection, not per call. Turn it off behind a pooler that
   * can't keep them (PgBouncer in transaction mode before 1.21).
   * @default true
   */
  readonly preparedStatements?: boolean;
}

/** Reads the `preparedStatements` option. */
export function preparedOption(options: PreparedStatementsOption): boolean {
  const value = options.preparedStatements ?? true;
  if (typeof value !== 'boolean') {
    throw new TypeError(`preparedStatements must be a boolean, got ${showValue(value)}`);
  }
  return value;
}

/** The longest identifier PostgreSQL keeps, in bytes (NAMEDATALEN - 1). */
const MAX_IDENTIFIER_BYTES = 63;

/** Throws unless `value` is a usable PostgreSQL identifier (a table or schema name). */
export function assertIdentifier(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`${name} must be a non-empty string, got ${showValue(value)}`);
  }
  if (value.includes('\0')) throw new TypeError(`${name} must not contain a NUL character`);
  if (new TextEncoder().encode(value).length > MAX_IDENTIFIER_BYTES) {
    throw new RangeError(
      `${name} must be at most ${MAX_IDENTIFIER_BYTES} bytes (PostgreSQL truncates longer names), got ${showValue(value)}`,
    );
  }
  return value;
}

/** `name` as a quoted identifier: `"my ""table"""`. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A table's name as SQL: `"schema"."table"`, or `"table"` (found on the search_path). */
export function qualifiedName(table: string, schema: string | undefined): string {
  return schema === undefined
    ? quoteIdentifier(table)
    : `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
}
