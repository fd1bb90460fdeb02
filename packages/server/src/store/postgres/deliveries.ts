/**
 * The PostgreSQL side of the webhook outbox: the statements that write the
 * outbox rows ../rules.ts decides, and those behind the store's `delivery*`
 * methods (the semantics of the SQLite store's). Several nodes share it: claims lock rows
 * with `FOR UPDATE SKIP LOCKED`, so a delivery is sent by one node at a time,
 * and a dead node's deliveries come back when their lease expires. The
 * `deliveries_notify` trigger NOTIFYs `errand_deliveries` when one becomes
 * pending (see migrations/0001_init.ts).
 */
import type pg from 'pg';
import type { Delivery, DeliveryError, DeliveryWithAttempts, Request } from '../../model/index.js';
import type * as D from '../deliveryParams.js';
import { attemptFromRow, deliveryFromRow, type AttemptRow, type DeliveryRow } from '../deliveryRows.js';
import { batchFromRow, type BatchRow } from '../rows.js';
import { batchDelivery, mayFinishBatch, requestDelivery, type NewDelivery } from '../rules.js';
import { query, transaction, type Tx } from './connection.js';
import { lockBatches } from './locks.js';

async function insertDelivery(tx: Tx, d: NewDelivery): Promise<void> {
  await tx.query(
    `INSERT INTO deliveries (id, request_id, tenant, event, url, payload, status, series, attempt, next_attempt_at, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, 'pending', 1, 0, $7, $7, $7)`,
    [d.id, d.request_id, d.tenant, d.event, d.url, d.payload, d.now],
  );
}

/**
 * Writes the outbox rows a transition of `request` gets (../rules.ts): its
 * webhook delivery once it is terminal, and its batch's `batch.completed`
 * delivery when it was the batch's last unfinished item. Items of one batch can
 * finish at the same moment on two nodes, each transaction not yet seeing the
 * other's commit: a transaction-level advisory lock on the batch serialises the
 * check, so the later one sees the earlier one committed and exactly one of
 * them writes the delivery.
 */
export async function insertOutboxRows(tx: Tx, request: Request, now: number): Promise<void> {
  const delivery = requestDelivery(request, now);
  if (delivery) await insertDelivery(tx, delivery);
  if (!mayFinishBatch(request)) return;
  const row = (await tx.query<BatchRow>('SELECT * FROM batches WHERE id = $1', [request.batch_id])).rows[0];
  // Without a batch webhook there is nothing to write: skip the lock and the count.
  if (!row || row.webhook_url === null) return;
  await lockBatches(tx, [row.id]);
  const counts: Record<string, number> = {};
  const byStatus = await tx.query<{ status: string; n: number }>(
    'SELECT status, count(*)::int AS n FROM requests WHERE batch_id = $1 GROUP BY status',
    [row.id],
  );
  for (const { status, n } of byStatus.rows) counts[status] = n;
  const done = batchDelivery(batchFromRow(row), counts, now);
  if (!done || (await tx.query('SELECT 1 FROM deliveries WHERE request_id = $1 LIMIT 1', [row.id])).rowCount) return;
  await insertDelivery(tx, done);
}

export async function claimDeliveries(pool: pg.Pool, p: D.DeliveryClaimParams): Promise<Delivery[]> {
  if (p.limit <= 0) return [];
  return transaction(pool, async (tx) => {
    const { rows } = await tx.query<DeliveryRow>(
      `UPDATE deliveries d
       SET status = 'delivering', attempt = d.attempt + 1, lease_owner = $2, lease_expires_at = $3, updated_at = $1
       FROM (SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1
             ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) due
       WHERE d.id = due.id
       RETURNING d.*`,
      [p.now, p.owner, p.now + p.leaseMs, p.limit],
    );
    return rows.map(deliveryFromRow).sort((a, b) => (a.next_attempt_at ?? 0) - (b.next_attempt_at ?? 0) || (a.id < b.id ? -1 : 1));
  });
}

async function recordAttempt(tx: Tx, row: DeliveryRow, p: D.DeliveryCompleteParams, error: DeliveryError | null): Promise<void> {
  // The delivery row is locked by the guarded update before this, so MAX(seq) + 1 cannot race.
  await tx.query(
    `INSERT INTO delivery_attempts (delivery_id, seq, series, attempt, started_at, duration_ms, status_code, error, response_excerpt)
     VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM delivery_attempts WHERE delivery_id = $1), $2, $3, $4, $5, $6, $7, $8)`,
    [
      row.id,
      row.series,
      row.attempt,
      p.startedAt,
      Math.max(0, Math.round(p.durationMs)),
      p.statusCode,
      error === null ? null : JSON.stringify(error),
      p.responseExcerpt,
    ],
  );
}

const GUARD = `WHERE id = $1 AND status = 'delivering' AND lease_owner = $2 AND attempt = $3`;

export async function completeDelivery(pool: pg.Pool, p: D.DeliveryCompleteParams): Promise<Delivery | null> {
  return transaction(pool, async (tx) => {
    const { rows } = await tx.query<DeliveryRow>(
      `UPDATE deliveries
       SET status = 'delivered', next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL,
           last_status_code = $5, last_error = NULL, updated_at = $4, finished_at = $4
       ${GUARD} RETURNING *`,
      [p.id, p.owner, p.attempt, p.now, p.statusCode],
    );
    if (!rows[0]) return null;
    await recordAttempt(tx, rows[0], p, null);
    return deliveryFromRow(rows[0]);
  });
}

export async function failDelivery(pool: pg.Pool, p: D.DeliveryFailParams): Promise<Delivery | null> {
  return transaction(pool, async (tx) => {
    const { rows } = await tx.query<DeliveryRow>(
      `UPDATE deliveries
       SET status = CASE WHEN $7::bigint IS NULL THEN 'failed' ELSE 'pending' END,
           next_attempt_at = $7, lease_owner = NULL, lease_expires_at = NULL,
           last_status_code = $5, last_error = $6, updated_at = $4,
           finished_at = CASE WHEN $7::bigint IS NULL THEN $4::bigint ELSE NULL END
       ${GUARD} RETURNING *`,
      [p.id, p.owner, p.attempt, p.now, p.statusCode, JSON.stringify(p.error), p.retryAt],
    );
    if (!rows[0]) return null;
    await recordAttempt(tx, rows[0], p, p.error);
    return deliveryFromRow(rows[0]);
  });
}

export async function releaseDelivery(pool: pg.Pool, p: D.DeliveryReleaseParams): Promise<boolean> {
  const { rowCount } = await query(
    pool,
    `UPDATE deliveries
     SET status = 'pending', attempt = attempt - 1, next_attempt_at = $4, lease_owner = NULL, lease_expires_at = NULL, updated_at = $4
     ${GUARD}`,
    [p.id, p.owner, p.attempt, p.now],
  );
  return rowCount === 1;
}

export async function rescueDeliveries(pool: pg.Pool, p: D.DeliveryRescueExpiredParams): Promise<number> {
  const { rowCount } = await query(
    pool,
    `UPDATE deliveries
     SET status = 'pending', attempt = attempt - 1, next_attempt_at = $1, lease_owner = NULL, lease_expires_at = NULL, updated_at = $1
     WHERE id IN (
       SELECT id FROM deliveries
       WHERE status = 'delivering' AND (lease_expires_at <= $1 OR ($2::text IS NOT NULL AND lease_owner IS DISTINCT FROM $2))
       LIMIT $3 FOR UPDATE SKIP LOCKED)`,
    [p.now, p.allExcept ?? null, p.limit],
  );
  return rowCount ?? 0;
}

export async function redeliver(pool: pg.Pool, p: D.DeliveryRedeliverParams): Promise<D.RedeliverOutcome> {
  return transaction(pool, async (tx): Promise<D.RedeliverOutcome> => {
    const current = (await tx.query<DeliveryRow>('SELECT * FROM deliveries WHERE id = $1 FOR UPDATE', [p.id])).rows[0];
    if (!current || current.request_id !== p.requestId) return { outcome: 'not_found' };
    const { rows } = await tx.query<DeliveryRow>(
      `UPDATE deliveries
       SET status = 'pending', series = series + 1, attempt = 0, next_attempt_at = $2, lease_owner = NULL, lease_expires_at = NULL,
           updated_at = $2, finished_at = NULL
       WHERE id = $1 AND status <> 'delivering'
       RETURNING *`,
      [p.id, p.now],
    );
    return rows[0]
      ? { outcome: 'scheduled', delivery: deliveryFromRow(rows[0]) }
      : { outcome: 'in_progress', delivery: deliveryFromRow(current) };
  });
}

export async function listDeliveries(pool: pg.Pool, requestId: string): Promise<DeliveryWithAttempts[]> {
  const { rows } = await query<DeliveryRow>(pool, 'SELECT * FROM deliveries WHERE request_id = $1 ORDER BY id', [requestId]);
  if (rows.length === 0) return [];
  const attempts = (
    await query<AttemptRow>(
      pool,
      `SELECT a.* FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
       WHERE d.request_id = $1 ORDER BY a.delivery_id, a.seq`,
      [requestId],
    )
  ).rows;
  return rows.map((row) => ({ ...deliveryFromRow(row), attempts: attempts.filter((a) => a.delivery_id === row.id).map(attemptFromRow) }));
}

export async function nextDueAt(pool: pg.Pool): Promise<number | null> {
  const { rows } = await query<{ due: number | null }>(
    pool,
    `SELECT LEAST((SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'),
                  (SELECT MIN(lease_expires_at) FROM deliveries WHERE status = 'delivering')) AS due`,
  );
  return rows[0]?.due ?? null;
}

/** Deletes the deliveries (and their attempts) of purged requests, or of purged batches (filed under their ids). */
export async function deleteDeliveriesFor(tx: Tx, requestIds: readonly string[]): Promise<void> {
  await tx.query('DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE request_id = ANY($1::text[]))', [
    requestIds,
  ]);
  await tx.query('DELETE FROM deliveries WHERE request_id = ANY($1::text[])', [requestIds]);
}
