/**
 * Transaction-level advisory locks, released at commit or rollback. Keys are
 * hashed with the schema, so stores in other schemas of one database never
 * contend. Every transaction takes its keys in one statement, sorted: no two
 * transactions can wait on each other in a cycle.
 */
import type { Tx } from './connection.js';

/** Locks `keys` (`op:NAME`, `batch:ID`) until the transaction ends. */
export async function lockKeys(tx: Tx, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await tx.query(
    `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':' || k, 0))
     FROM (SELECT DISTINCT k FROM unnest($1::text[]) AS k ORDER BY k) AS sorted`,
    [keys],
  );
}

/** Locks batches (their concurrency count, their `batch.completed` check) until the transaction ends. */
export const lockBatches = (tx: Tx, ids: readonly string[]) =>
  lockKeys(
    tx,
    ids.map((id) => `batch:${id}`),
  );
