/** Batches: inserted with their items in one transaction, read back with them, purged once retention took every item. */
import type pg from 'pg';
import type { Batch } from '../../model/index.js';
import { batchFromRow, RESULT_NO_LIMIT, summaryColumns, summaryFromRow, type BatchRow, type SummaryRow } from '../rows.js';
import type { BatchGetByIdParams, BatchInsertParams, BatchPurgeEmptyParams, RequestSummary, Transition } from '../store.js';
import { query, transaction } from './connection.js';
import { deleteDeliveriesFor } from './deliveries.js';
import { insertRequests } from './requests.js';

export async function batchInsert(pool: pg.Pool, p: BatchInsertParams): Promise<{ batch: Batch; transitions: Transition[] }> {
  const b = p.batch;
  return transaction(pool, async (tx) => {
    await tx.query(
      `INSERT INTO batches (id, tenant, operation, concurrency, total, webhook_url, metadata, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        b.id,
        b.tenant,
        b.operation,
        b.concurrency,
        b.total,
        b.webhook_url,
        b.metadata === null ? null : JSON.stringify(b.metadata),
        b.created_at,
      ],
    );
    return { batch: b, transitions: await insertRequests(tx, p.requests) };
  });
}

export async function batchGetById(pool: pg.Pool, p: BatchGetByIdParams): Promise<{ batch: Batch; items: RequestSummary[] } | null> {
  const row = (await query<BatchRow>(pool, 'SELECT * FROM batches WHERE id = $1', [p.id])).rows[0];
  if (!row || (p.tenant != null && row.tenant !== p.tenant)) return null;
  const items = (
    await query<SummaryRow>(pool, `SELECT ${summaryColumns('$2::bigint')} FROM requests WHERE batch_id = $1 ORDER BY id`, [
      p.id,
      p.resultMaxBytes ?? RESULT_NO_LIMIT,
    ])
  ).rows.map(summaryFromRow);
  return { batch: batchFromRow(row), items };
}

/**
 * Deletes old batches whose items are all purged, with their batch-level deliveries (filed under the batch id);
 * a batch whose delivery is pending or being sent stays. Rows another node's cleaner holds are skipped.
 */
export async function batchPurgeEmpty(pool: pg.Pool, p: BatchPurgeEmptyParams): Promise<number> {
  return transaction(pool, async (tx) => {
    const { rows } = await tx.query<{ id: string }>(
      `SELECT b.id FROM batches b
       WHERE b.created_at < $1
         AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.batch_id = b.id)
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.request_id = b.id AND d.status IN ('pending', 'delivering'))
       FOR UPDATE SKIP LOCKED`,
      [p.before],
    );
    if (rows.length === 0) return 0;
    const ids = rows.map((r) => r.id);
    await deleteDeliveriesFor(tx, ids);
    await tx.query('DELETE FROM batches WHERE id = ANY($1::text[])', [ids]);
    return rows.length;
  });
}
