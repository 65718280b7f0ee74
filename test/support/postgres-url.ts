import pg from 'pg';

/** Where tests look for PostgreSQL when neither DATABASE_URL nor PG_URL is set. */
export const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * The PostgreSQL the integration tests use: DATABASE_URL or PG_URL when set (it must answer),
 * else the local default when it answers, else `''` (suites then skip, loudly). Under `CI=true`
 * a missing PostgreSQL throws.
 */
export async function findPostgres(): Promise<string> {
  const given = process.env.DATABASE_URL || process.env.PG_URL;
  const url = given || DEFAULT_PG_URL;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return url;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    if (given || process.env.CI === 'true') {
      throw new Error(
        `No PostgreSQL at ${url} (${why})${process.env.CI === 'true' ? ': CI=true needs one (.ci/run starts it)' : ''}`,
      );
    }
    console.warn(
      `\n!!! No PostgreSQL at ${url} (${why}; set DATABASE_URL): PostgreSQL test suites are SKIPPED !!!\n`,
    );
    return '';
  } finally {
    await client.end().catch(() => {});
  }
}
