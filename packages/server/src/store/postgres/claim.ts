/**
 * Claiming work across nodes.
 *
 * Candidates are locked with `FOR UPDATE SKIP LOCKED` in claim order (priority,
 * run_at, id): concurrent claimers on any node take disjoint rows and never
 * wait on each other for them, so a request is claimed at most once.
 *
 * Limits are shared by every node: a batch's `concurrency`, and an operation's
 * limit, count the rows `processing` in the database. Two claimers counting at
 * once could both see a free slot and both fill it, so the counting and the
 * claiming of limited work run under transaction-level advisory locks, one per
 * limited operation and per batch among the candidates (taken in one sorted
 * order: no deadlocks; released at commit, after which the next holder's
 * statements see the claims). We lock only the limited part: unlimited work is
 * claimed with SKIP LOCKED alone, so limits never serialise the common case.
 * The count is re-read after the lock, since READ COMMITTED gives every
 * statement a fresh snapshot.
 *
 * `operationLimits[op]` is what the caller (the dispatcher) may still start:
 * the operation's limit minus what it runs itself. Rows processing under the
 * caller's own owner are already counted there; rows of other owners (other
 * nodes) are not, so they are subtracted: the limit then holds across nodes.
 */
import type pg from 'pg';
import type { RequestRow } from '../rows.js';
import type { RequestClaimParams, Transition } from '../store.js';
import { query, transaction, type Tx } from './connection.js';
import { lockKeys } from './locks.js';
import { statusTransitions } from './transitions.js';

interface Candidate {
  id: string;
  operation: string;
  batch_id: string | null;
}

/** Items of batches already running `concurrency` items are left out of the scan. */
const BATCH_HAS_ROOM = `(r.batch_id IS NULL OR
  (SELECT count(*) FROM requests x WHERE x.batch_id = r.batch_id AND x.status = 'processing') <
  (SELECT b.concurrency FROM batches b WHERE b.id = r.batch_id))`;

export async function requestClaim(pool: pg.Pool, p: RequestClaimParams): Promise<Transition[]> {
  if (p.limit <= 0) return [];
  const limits = Object.entries(p.operationLimits ?? {});
  const skipped = limits.filter(([, n]) => n <= 0).map(([op]) => op);
  // Most wake-ups find nothing: answer those with one read, without a transaction.
  const due = await query(
    pool,
    `SELECT 1 FROM requests WHERE status = 'pending' AND run_at <= $1 AND NOT (operation = ANY($2::text[])) LIMIT 1`,
    [p.now, skipped],
  );
  if (due.rowCount === 0) return [];
  return transaction(pool, async (tx) => {
    const limited = limits.filter(([, n]) => n > 0).map(([op]) => op);
    // A first count (without the lock) leaves saturated operations out of the scan, so they cannot fill it.
    const others = await runningElsewhere(tx, limited, p.owner);
    const free = new Map(limits.map(([op, n]) => [op, n - (others.get(op) ?? 0)]));
    const excluded = [...free].filter(([, n]) => n <= 0).map(([op]) => op);
    const candidates = (
      await tx.query<Candidate>(
        `SELECT id, operation, batch_id FROM requests r
         WHERE status = 'pending' AND run_at <= $1 AND NOT (operation = ANY($2::text[])) AND ${BATCH_HAS_ROOM}
         ORDER BY priority DESC, run_at, id
         LIMIT $3
         FOR UPDATE SKIP LOCKED`,
        [p.now, excluded, p.limit * 4],
      )
    ).rows;
    const lockedOps = [...new Set(candidates.map((c) => c.operation).filter((op) => free.has(op)))];
    const batches = [...new Set(candidates.map((c) => c.batch_id).filter((b): b is string => b !== null))];
    const batchFree = new Map<string, number>();
    if (lockedOps.length + batches.length > 0) {
      await lockKeys(tx, [...lockedOps.map((op) => `op:${op}`), ...batches.map((id) => `batch:${id}`)]);
      const counted = await runningElsewhere(tx, lockedOps, p.owner);
      for (const op of lockedOps) free.set(op, (p.operationLimits?.[op] ?? 0) - (counted.get(op) ?? 0));
      if (batches.length > 0) {
        const { rows } = await tx.query<{ id: string; free: number }>(
          `SELECT b.id, b.concurrency - (SELECT count(*) FROM requests x WHERE x.batch_id = b.id AND x.status = 'processing')::int AS free
           FROM batches b WHERE b.id = ANY($1::text[])`,
          [batches],
        );
        for (const row of rows) batchFree.set(row.id, row.free);
      }
    }
    const chosen: string[] = [];
    for (const c of candidates) {
      if (chosen.length >= p.limit) break;
      const left = free.get(c.operation);
      if (left !== undefined && left <= 0) continue;
      if (c.batch_id !== null) {
        const room = batchFree.get(c.batch_id) ?? 0;
        if (room <= 0) continue;
        batchFree.set(c.batch_id, room - 1);
      }
      if (left !== undefined) free.set(c.operation, left - 1);
      chosen.push(c.id);
    }
    if (chosen.length === 0) return [];
    const { rows } = await tx.query<RequestRow>(
      `UPDATE requests
       SET status = 'processing', attempt = attempt + 1, lease_owner = $2, lease_expires_at = $3,
           started_at = COALESCE(started_at, $4), progress = NULL, updated_at = $4, last_seq = last_seq + 1
       WHERE id = ANY($1::text[]) AND status = 'pending'
       RETURNING *`,
      [chosen, p.owner, p.now + p.leaseMs, p.now],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    return statusTransitions(
      tx,
      chosen.map((id) => byId.get(id)).filter((row): row is RequestRow => row !== undefined),
      p.now,
      { kind: 'claimed' },
    );
  });
}

/** Per operation: rows processing under other owners than `owner`. */
async function runningElsewhere(tx: Tx, operations: readonly string[], owner: string): Promise<Map<string, number>> {
  if (operations.length === 0) return new Map();
  const { rows } = await tx.query<{ operation: string; n: number }>(
    `SELECT operation, count(*)::int AS n FROM requests
     WHERE status = 'processing' AND operation = ANY($1::text[]) AND lease_owner IS DISTINCT FROM $2
     GROUP BY operation`,
    [operations, owner],
  );
  return new Map(rows.map((r) => [r.operation, r.n]));
}
