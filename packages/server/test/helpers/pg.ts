/**
 * PostgreSQL for tests: the real server (`ERRAND_TEST_PG_URL`, default the
 * local `test` database), one fresh schema per store so tests never see each
 * other's rows, dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresStore, type PostgresStoreOptions } from '../../src/store/postgres/index.js';

export const PG_URL = process.env.ERRAND_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Runs one statement on its own connection (setup and teardown, outside any store). */
export async function pgExec(sql: string, values: unknown[] = [], url = PG_URL): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

/** A connection of the test's own (for checks run many times); closed when `t.after`/`after` calls `end`. */
export async function pgClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  return client;
}

/**
 * Why PostgreSQL tests should skip, or false to run them. Under CI=true, or
 * when ERRAND_TEST_PG_URL names a database on purpose (.ci/run creates one),
 * they always run, so an unreachable database fails the build instead of hiding.
 */
export async function pgSkipReason(): Promise<string | false> {
  if (process.env.CI === 'true' || process.env.ERRAND_TEST_PG_URL) return false;
  try {
    await pgExec('SELECT 1');
    return false;
  } catch (err) {
    return `PostgreSQL is not reachable at ${PG_URL} (${(err as Error).message})`;
  }
}

/** A fresh schema name, `errand_t_<random>`. */
export function freshSchema(): string {
  return `errand_t_${randomBytes(6).toString('hex')}`;
}

export async function dropSchema(schema: string, url = PG_URL): Promise<void> {
  await pgExec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`, [], url);
}

/** The store URL of a schema, e.g. for a server config. */
export function schemaUrl(schema: string, base = PG_URL): string {
  const url = new URL(base);
  url.searchParams.set('schema', schema);
  return url.toString();
}

/** A migrated PostgresStore on a fresh schema (or `schema`, to share one); cleanup closes it and drops the schema. */
export async function openPgStore(
  options: Partial<PostgresStoreOptions> & { schema?: string } = {},
): Promise<{ store: PostgresStore; schema: string; cleanup: () => Promise<void> }> {
  const schema = options.schema ?? freshSchema();
  const store = new PostgresStore({ poolSize: 4, ...options, url: options.url ?? PG_URL, schema });
  await store.migrate();
  return {
    store,
    schema,
    cleanup: async () => {
      await store.close();
      await dropSchema(schema);
    },
  };
}
