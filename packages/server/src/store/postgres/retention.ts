/**
 * Retention and learned estimates: purging finished requests (leaving
 * tombstones), expired tombstones and idempotency keys, and the per-operation
 * duration histograms. Purges take rows with SKIP LOCKED so the retention
 * cleaners of several nodes split the work instead of queueing on each other.
 */
import type pg from 'pg';
import { emptyHistogram, histogramAdd, type DurationHistogram } from '../../model/index.js';
import type {
  ExpiredPurgeParams,
  OperationStats,
  OperationStatsGetParams,
  OperationStatsRecordParams,
  RequestPurgeFinishedParams,
  Tombstone,
  TombstoneGetParams,
} from '../store.js';
import { query, transaction } from './connection.js';
import { deleteDeliveriesFor } from './deliveries.js';

export async function requestPurgeFinished(pool: pg.Pool, p: RequestPurgeFinishedParams): Promise<number> {
  return transaction(pool, async (tx) => {
    const { rows } = await tx.query<Omit<Tombstone, 'purged_at' | 'expires_at'>>(
      `SELECT id, tenant, status, completed_at FROM requests
       WHERE completed_at IS NOT NULL AND completed_at < $1
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.request_id = requests.id AND d.status IN ('pending', 'delivering'))
       ORDER BY completed_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [p.before, p.limit],
    );
    if (rows.length === 0) return 0;
    const ids = rows.map((r) => r.id);
    await tx.query(
      `INSERT INTO request_tombstones (id, tenant, status, completed_at, purged_at, expires_at)
       SELECT t.id, t.tenant, t.status, t.completed_at, $5, $6 FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS t(id, tenant, status, completed_at)
       ON CONFLICT (id) DO UPDATE SET tenant = EXCLUDED.tenant, status = EXCLUDED.status, completed_at = EXCLUDED.completed_at,
         purged_at = EXCLUDED.purged_at, expires_at = EXCLUDED.expires_at`,
      [ids, rows.map((r) => r.tenant), rows.map((r) => r.status), rows.map((r) => r.completed_at), p.now, p.tombstoneUntil],
    );
    await tx.query('DELETE FROM request_events WHERE request_id = ANY($1::text[])', [ids]);
    await deleteDeliveriesFor(tx, ids);
    await tx.query('DELETE FROM requests WHERE id = ANY($1::text[])', [ids]);
    return rows.length;
  });
}

export async function tombstoneGet(pool: pg.Pool, p: TombstoneGetParams): Promise<Tombstone | null> {
  const row = (await query<Tombstone>(pool, 'SELECT * FROM request_tombstones WHERE id = $1', [p.id])).rows[0];
  if (!row || (p.tenant != null && row.tenant !== p.tenant)) return null;
  return row;
}

export async function tombstonePurgeExpired(pool: pg.Pool, p: ExpiredPurgeParams): Promise<number> {
  const { rowCount } = await query(
    pool,
    'DELETE FROM request_tombstones WHERE id IN (SELECT id FROM request_tombstones WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)',
    [p.now, p.limit],
  );
  return rowCount ?? 0;
}

export async function idempotencyPurgeExpired(pool: pg.Pool, p: ExpiredPurgeParams): Promise<number> {
  const { rowCount } = await query(
    pool,
    `DELETE FROM idempotency_keys WHERE (tenant, key) IN (
       SELECT tenant, key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    [p.now, p.limit],
  );
  return rowCount ?? 0;
}

interface StatsRow {
  operation: string;
  histogram: string;
  updated_at: number;
}

export async function operationStatsGet(pool: pg.Pool, p: OperationStatsGetParams): Promise<OperationStats | null> {
  const row = (await query<StatsRow>(pool, 'SELECT * FROM operation_stats WHERE operation = $1', [p.operation])).rows[0];
  return row ? { operation: row.operation, histogram: JSON.parse(row.histogram) as DurationHistogram, updated_at: row.updated_at } : null;
}

/** Read-modify-write under the row's lock, so samples recorded at once by several nodes all count. */
export async function operationStatsRecord(pool: pg.Pool, p: OperationStatsRecordParams): Promise<OperationStats> {
  return transaction(pool, async (tx) => {
    await tx.query(
      'INSERT INTO operation_stats (operation, histogram, updated_at) VALUES ($1, $2, $3) ON CONFLICT (operation) DO NOTHING',
      [p.operation, JSON.stringify(emptyHistogram()), p.now],
    );
    const row = (await tx.query<StatsRow>('SELECT * FROM operation_stats WHERE operation = $1 FOR UPDATE', [p.operation])).rows[0]!;
    const histogram = p.durationsMs.reduce((h, ms) => histogramAdd(h, ms, p.decay), JSON.parse(row.histogram) as DurationHistogram);
    await tx.query('UPDATE operation_stats SET histogram = $2, updated_at = $3 WHERE operation = $1', [
      p.operation,
      JSON.stringify(histogram),
      p.now,
    ]);
    return { operation: p.operation, histogram, updated_at: p.now };
  });
}
