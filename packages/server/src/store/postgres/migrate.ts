/**
 * Applying migrations. Every node runs this at start-up, possibly at the same
 * moment: a session-level advisory lock (per schema) lets one node apply what
 * is missing while the others wait, then find nothing left to do. Each
 * migration commits with its row in `errand_migrations`, so a crash halfway
 * leaves a schema the next start completes.
 */
import type pg from 'pg';
import { translatePgError } from './errors.js';
import { PG_MIGRATIONS, type Migration } from './migrations/index.js';

export interface MigrationReport {
  /** Migrations this call applied, in order (empty when the schema was current). */
  applied: Pick<Migration, 'version' | 'name'>[];
  /** The schema version afterwards. */
  version: number;
}

export async function migrate(pool: pg.Pool, schema: string | undefined, now: () => number = Date.now): Promise<MigrationReport> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (cause) {
    throw translatePgError(cause);
  }
  const lockKey = `errand:migrate:${schema ?? ''}`;
  let locked = false;
  let broken: Error | undefined;
  // See transaction() in connection.ts: a checked-out connection's 'error' needs a listener.
  const onError = (err: Error) => {
    broken = err;
  };
  client.on('error', onError);
  try {
    await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [lockKey]);
    locked = true;
    // Schema names are validated as plain identifiers (connection.ts), so quoting is enough.
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(
      'CREATE TABLE IF NOT EXISTS errand_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
    );
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM errand_migrations')).rows.map((r) => r.version));
    const applied: MigrationReport['applied'] = [];
    for (const migration of PG_MIGRATIONS) {
      if (done.has(migration.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO errand_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          migration.version,
          migration.name,
          now(),
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          broken = rollbackError as Error;
        });
        throw err;
      }
      applied.push({ version: migration.version, name: migration.name });
    }
    return { applied, version: Math.max(0, ...done, ...applied.map((m) => m.version)) };
  } catch (cause) {
    broken ??= cause as Error;
    throw translatePgError(cause);
  } finally {
    if (locked && broken === undefined)
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockKey]).catch(() => undefined);
    // A connection that failed is discarded, which also ends its session and so its lock.
    client.removeListener('error', onError);
    client.release(broken);
  }
}
