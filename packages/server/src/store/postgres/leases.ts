/** Output events, event reads, lease renewal and the rescue of requests whose lease expired (their node died). */
import type pg from 'pg';
import type { RequestEvent } from '../../model/index.js';
import { eventFromRow, type EventRow, type RequestRow } from '../rows.js';
import { rescueOutcome } from '../rules.js';
import type { EventAppendParams, EventListAfterParams, LeaseExtendParams, LeaseRescueExpiredParams, Transition } from '../store.js';
import { query, transaction } from './connection.js';
import type { WriteMany } from './groupCommit.js';
import { lockBatches } from './locks.js';
import { deadOwners, forgetDeadOwners } from './nodes.js';
import { insertEvents, statusTransition } from './transitions.js';

export async function eventAppend(pool: pg.Pool, p: EventAppendParams): Promise<RequestEvent | null> {
  return transaction(pool, async (tx) => {
    const row = (
      await tx.query<{ last_seq: number }>(
        `UPDATE requests SET last_seq = last_seq + 1
         WHERE id = $1 AND status = 'processing' AND attempt = $2 AND lease_owner = $3
         RETURNING last_seq`,
        [p.id, p.attempt, p.owner],
      )
    ).rows[0];
    if (!row) return null;
    const [event] = await insertEvents(tx, [{ requestId: p.id, seq: row.last_seq, type: p.type, data: p.data, now: p.now }]);
    return event!;
  });
}

export async function eventListAfter(pool: pg.Pool, p: EventListAfterParams): Promise<RequestEvent[]> {
  const { rows } = await query<EventRow>(pool, 'SELECT * FROM request_events WHERE request_id = $1 AND seq > $2 ORDER BY seq LIMIT $3', [
    p.id,
    p.afterSeq,
    p.limit,
  ]);
  return rows.map(eventFromRow);
}

/**
 * Lease renewals, many in one statement (group commit, groupCommit.ts): every attempt running on a node renews
 * its lease each heartbeat interval, so 10,000 sleeping handlers are 1,000 renewals a second — one WAL flush each
 * when written alone. Each item is still guarded by its own attempt and owner; true for the items still held.
 */
export const leaseExtendMany: WriteMany<LeaseExtendParams, boolean> = async (tx, items) => {
  const { rows } = await tx.query<{ id: string }>(
    `UPDATE requests r SET lease_expires_at = u.expires_at, updated_at = u.now
     FROM unnest($1::text[], $2::int[], $3::text[], $4::bigint[], $5::bigint[]) AS u(id, attempt, owner, expires_at, now)
     WHERE r.id = u.id AND r.status = 'processing' AND r.attempt = u.attempt AND r.lease_owner = u.owner
     RETURNING r.id`,
    [
      items.map((p) => p.id),
      items.map((p) => p.attempt),
      items.map((p) => p.owner),
      items.map((p) => p.now + p.leaseMs),
      items.map((p) => p.now),
    ],
  );
  const held = new Set(rows.map((r) => r.id));
  return items.map((p) => held.has(p.id));
};

/**
 * Takes back requests whose lease expired, and (with `deadNodeAfterMs`) those
 * of nodes whose session is gone (nodes.ts): rows locked with SKIP LOCKED, so
 * two nodes' rescuers never rescue one request twice, and each update is
 * guarded by the attempt it saw.
 */
export async function leaseRescueExpired(pool: pg.Pool, p: LeaseRescueExpiredParams): Promise<Transition[]> {
  return transaction(pool, async (tx) => {
    const dead = p.deadNodeAfterMs === undefined ? [] : await deadOwners(tx, p.now, p.deadNodeAfterMs);
    const { rows } = await tx.query<RequestRow>(
      `SELECT * FROM requests
       WHERE status = 'processing'
         AND (lease_expires_at <= $1 OR ($2::text IS NOT NULL AND lease_owner IS DISTINCT FROM $2)
              OR ($4::text[] IS NOT NULL AND lease_owner = ANY($4)))
       ORDER BY lease_expires_at
       LIMIT $3
       FOR UPDATE SKIP LOCKED`,
      [p.now, p.allExcept ?? null, p.limit, dead.length > 0 ? dead : null],
    );
    // Failing a batch's items may write its batch.completed delivery under the batch's lock: take them all
    // now, in the sorted order claims use, so this transaction cannot deadlock with a claimer.
    await lockBatches(
      tx,
      rows.flatMap((r) => (r.batch_id === null ? [] : [r.batch_id])),
    );
    const out: Transition[] = [];
    for (const current of rows) {
      const outcome = rescueOutcome(current, p.now, p.retry);
      const row =
        outcome.kind === 'failed'
          ? (
              await tx.query<RequestRow>(
                `UPDATE requests
                 SET status = 'failed', error = $3, lease_owner = NULL, lease_expires_at = NULL, completed_at = $4,
                     updated_at = $4, last_seq = last_seq + 1
                 WHERE id = $1 AND status = 'processing' AND attempt = $2
                 RETURNING *`,
                [current.id, current.attempt, JSON.stringify(outcome.error), p.now],
              )
            ).rows[0]
          : (
              await tx.query<RequestRow>(
                `UPDATE requests
                 SET status = 'pending', error = $3, run_at = $5, lease_owner = NULL, lease_expires_at = NULL,
                     updated_at = $4, last_seq = last_seq + 1
                 WHERE id = $1 AND status = 'processing' AND attempt = $2
                 RETURNING *`,
                [current.id, current.attempt, JSON.stringify(outcome.error), p.now, outcome.runAt],
              )
            ).rows[0];
      if (row) out.push(await statusTransition(tx, row, p.now, { kind: outcome.kind, error: outcome.error }));
    }
    await forgetDeadOwners(tx, dead);
    return out;
  });
}
