/** Batches: inserted with their items in one transaction, read back with them, purged once retention took every item. */
import type pg from 'pg';
import type { Batch, Request } from '../../model/index.js';
import { requestFromRow, type RequestRow } from '../sqlite/rows.js';
import type { BatchGetByIdParams, BatchInsertParams, BatchPurgeEmptyParams, Transition } from '../store.js';
import { query, transaction } from './connection.js';
import { insertRequests } from './requests.js';

export interface BatchRow extends Omit<Batch, 'metadata'> {
  metadata: string | null;
}

export function batchFromRow(row: BatchRow): Batch {
  return { ...row, metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as Batch['metadata']) };
}

export async function batchInsert(pool: pg.Pool, p: BatchInsertParams): Promise<{ batch: Batch; transitions: Transition[] }> {
  const b = p.batch;
  return transaction(pool, async (tx) => {
    await tx.query(
      `INSERT INTO batches (id, tenant, operation, concurrency, total, webhook_url, metadata, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [b.id, b.tenant, b.operation, b.concurrency, b.total, b.webhook_url, b.metadata === null ? null : JSON.stringify(b.metadata), b.created_at],
    );
    return { batch: b, transitions: await insertRequests(tx, p.requests) };
  });
}

export async function batchGetById(pool: pg.Pool, p: BatchGetByIdParams): Promise<{ batch: Batch; items: Request[] } | null> {
  const row = (await query<BatchRow>(pool, 'SELECT * FROM batches WHERE id = $1', [p.id])).rows[0];
  if (!row || (p.tenant != null && row.tenant !== p.tenant)) return null;
  const items = (await query<RequestRow>(pool, 'SELECT * FROM requests WHERE batch_id = $1 ORDER BY id', [p.id])).rows.map(requestFromRow);
  return { batch: batchFromRow(row), items };
}

export async function batchPurgeEmpty(pool: pg.Pool, p: BatchPurgeEmptyParams): Promise<number> {
  const { rowCount } = await query(
    pool,
    'DELETE FROM batches b WHERE b.created_at < $1 AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.batch_id = b.id)',
    [p.before],
  );
  return rowCount ?? 0;
}
