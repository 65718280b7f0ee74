import { showValue } from '../core/validate.js';
import {
  assertIdentifier,
  assertQueryable,
  type PgClientLike,
  qualifiedName,
  quoteIdentifier,
  run,
} from './client.js';
import idempotencySql from './sql/001_idempotency.sql';
import deadLettersSql from './sql/002_dead_letters.sql';
import deliveriesSql from './sql/003_deliveries.sql';

/** The default table names of the PostgreSQL adapters. */
export const POSTGRES_TABLE_DEFAULTS = Object.freeze({
  idempotency: 'retrykit_idempotency',
  deadLetters: 'retrykit_dead_letters',
  deliveries: 'retrykit_deliveries',
  deliveryAttempts: 'retrykit_delivery_attempts',
});

/** Where one adapter's table is: the `table` and `schema` options every factory takes. */
export interface PostgresTableOptions {
  /** The table's name, quoted as given (case and any character kept). */
  readonly table?: string;
  /**
   * The schema the table is in. Absent: the connection's `search_path` finds it (usually
   * `public`).
   * @default undefined
   */
  readonly schema?: string;
}

/** Options of {@link createSchema} and {@link schemaSql}. */
export interface PostgresSchemaOptions {
  /**
   * The schema to create the tables in (created when missing). Absent: the first schema of the
   * connection's `search_path`.
   * @default undefined
   */
  readonly schema?: string;
  /** The idempotency table's name. @default 'retrykit_idempotency' */
  readonly idempotencyTable?: string;
  /** The dead-letter table's name. @default 'retrykit_dead_letters' */
  readonly deadLetterTable?: string;
  /** The delivery store's table of records (one row per message). @default 'retrykit_deliveries' */
  readonly deliveryTable?: string;
  /**
   * The delivery store's table of attempts (one row per send, with its status).
   * @default 'retrykit_delivery_attempts'
   */
  readonly deliveryAttemptsTable?: string;
}

/** @internal A table's quoted, schema-qualified name, from a factory's options. */
export function tableName(options: PostgresTableOptions | undefined, fallback: string): string {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`options must be an object, got ${showValue(options)}`);
  }
  const table = assertIdentifier('table', options?.table ?? fallback);
  const schema =
    options?.schema === undefined ? undefined : assertIdentifier('schema', options.schema);
  return qualifiedName(table, schema);
}

/**
 * One migration file with its default names replaced: the table's, and each index's
 * (`<default table>_<suffix>` becomes `<table>_<suffix>`).
 */
function rename(sql: string, defaultName: string, table: string, schema: string | undefined) {
  return sql
    .replace(new RegExp(`\\b${defaultName}_(\\w+_idx)\\b`, 'g'), (_, suffix: string) =>
      quoteIdentifier(`${table}_${suffix}`),
    )
    .replace(new RegExp(`\\b${defaultName}\\b`, 'g'), qualifiedName(table, schema));
}

/**
 * The SQL that creates the adapters' tables and indexes, with your names: the package's
 * migration files (`retrykit/postgres/sql/*.sql`, written with the default names) joined, for
 * a migration tool of your own. Every statement is `IF NOT EXISTS`, so running it again is
 * harmless.
 *
 * @example
 * writeFileSync('migrations/0042_retrykit.sql', schemaSql({ schema: 'retrykit' }));
 */
export function schemaSql(options: PostgresSchemaOptions = {}): string {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${showValue(options)}`);
  }
  const schema =
    options.schema === undefined ? undefined : assertIdentifier('schema', options.schema);
  const idempotency = assertIdentifier(
    'idempotencyTable',
    options.idempotencyTable ?? POSTGRES_TABLE_DEFAULTS.idempotency,
  );
  const deadLetters = assertIdentifier(
    'deadLetterTable',
    options.deadLetterTable ?? POSTGRES_TABLE_DEFAULTS.deadLetters,
  );
  const deliveries = assertIdentifier(
    'deliveryTable',
    options.deliveryTable ?? POSTGRES_TABLE_DEFAULTS.deliveries,
  );
  const deliveryAttempts = assertIdentifier(
    'deliveryAttemptsTable',
    options.deliveryAttemptsTable ?? POSTGRES_TABLE_DEFAULTS.deliveryAttempts,
  );
  return [
    schema === undefined ? '' : `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)};\n`,
    rename(idempotencySql, POSTGRES_TABLE_DEFAULTS.idempotency, idempotency, schema),
    rename(deadLettersSql, POSTGRES_TABLE_DEFAULTS.deadLetters, deadLetters, schema),
    rename(
      rename(deliveriesSql, POSTGRES_TABLE_DEFAULTS.deliveries, deliveries, schema),
      POSTGRES_TABLE_DEFAULTS.deliveryAttempts,
      deliveryAttempts,
      schema,
    ),
  ].join('\n');
}

/**
 * Creates the adapters' tables and indexes (and the schema) when missing, in one transaction:
 * {@link schemaSql} run as one multi-statement query. Safe to call at every start, from several
 * processes at once (a transaction-level advisory lock makes them take turns). Needs the right
 * to create tables (and the schema).
 *
 * @example
 * import pg from 'pg';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await createSchema(pool, { schema: 'retrykit' });
 */
export async function createSchema(
  db: PgClientLike,
  options: PostgresSchemaOptions = {},
): Promise<void> {
  assertQueryable('db', db);
  const sql = schemaSql(options);
  // A query without values goes as one simple query: PostgreSQL runs all its statements in one
  // implicit transaction, so the lock is held until every table exists.
  await run(
    db,
    'createSchema',
    `SELECT pg_advisory_xact_lock(hashtext('retrykit.createSchema'));\n${sql}`,
  );
}
