/**
 * Appending events: every state change, progress report and output chunk
 * inserts one `request_events` row with the request's next seq (its
 * `last_seq`, bumped by the same statement that changed the request), and a
 * terminal transition writes its webhook deliveries (the outbox) in the same
 * transaction. The events' AFTER INSERT trigger NOTIFYs other nodes on commit.
 */
import type { RequestEvent } from '../../model/index.js';
import { requestFromRow, type RequestRow } from '../rows.js';
import { mayFinishBatch, statusEventData, type StatusChange } from '../rules.js';
import type { Transition } from '../store.js';
import type { Tx } from './connection.js';
import { insertOutboxRows } from './deliveries.js';
import { lockBatches } from './locks.js';

interface NewEvent {
  requestId: string;
  seq: number;
  type: RequestEvent['type'];
  data: unknown;
  now: number;
}

/** Inserts events in one statement; returns them as the model sees them. */
export async function insertEvents(tx: Tx, events: readonly NewEvent[]): Promise<RequestEvent[]> {
  if (events.length === 0) return [];
  const json = events.map((e) => JSON.stringify(e.data === undefined ? null : e.data));
  await tx.query(
    `INSERT INTO request_events (request_id, seq, type, data, created_at)
     SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::bigint[])`,
    [events.map((e) => e.requestId), events.map((e) => e.seq), events.map((e) => e.type), json, events.map((e) => e.now)],
  );
  return events.map((e, i) => ({
    request_id: e.requestId,
    seq: e.seq,
    type: e.type,
    data: JSON.parse(json[i]!) as unknown,
    created_at: e.now,
  }));
}

/** The status events of rows a statement just changed (each row's `last_seq` already bumped), plus their outbox rows (../rules.ts). */
export function statusTransitions(tx: Tx, rows: readonly RequestRow[], now: number, change: StatusChange): Promise<Transition[]> {
  return statusTransitionsOf(
    tx,
    rows.map((row) => ({ row, now, change })),
  );
}

/** Like statusTransitions, each row with its own time and change (a group commit's items). */
export async function statusTransitionsOf(
  tx: Tx,
  changed: readonly { row: RequestRow; now: number; change: StatusChange }[],
): Promise<Transition[]> {
  const requests = changed.map(({ row }) => requestFromRow(row));
  const events = await insertEvents(
    tx,
    requests.map((request, i) => ({
      requestId: request.id,
      seq: changed[i]!.row.last_seq,
      type: 'status' as const,
      data: statusEventData(request, changed[i]!.change),
      now: changed[i]!.now,
    })),
  );
  // The batches these transitions may finish, locked in one sorted statement before any outbox check takes
  // one of them (locks.ts): a group of items of several batches must not lock them one by one, in its own order
  // (a transaction locking one batch key only cannot be in a cycle).
  // Batches without a webhook have no check to serialise: they are not locked (as in insertOutboxRows).
  const batchIds = [...new Set(requests.filter(mayFinishBatch).map((r) => r.batch_id))];
  if (batchIds.length > 1) {
    const { rows } = await tx.query<{ id: string }>('SELECT id FROM batches WHERE id = ANY($1::text[]) AND webhook_url IS NOT NULL', [
      batchIds,
    ]);
    await lockBatches(
      tx,
      rows.map((r) => r.id),
    );
  }
  // The outbox: a terminal request's webhook delivery commits with its transition, so a crash cannot lose it.
  for (const [i, request] of requests.entries()) await insertOutboxRows(tx, request, changed[i]!.now);
  return requests.map((request, i) => ({ kind: changed[i]!.change.kind, request, event: events[i]! }));
}

export async function statusTransition(tx: Tx, row: RequestRow, now: number, change: StatusChange): Promise<Transition> {
  const [transition] = await statusTransitions(tx, [row], now, change);
  return transition!;
}
