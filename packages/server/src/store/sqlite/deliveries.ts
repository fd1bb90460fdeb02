/**
 * The SQLite side of the webhook outbox: the statements that write the
 * outbox rows ../rules.ts decides, and the statement sequences behind the
 * store's `delivery*` methods. Each function runs inside
 * the caller's transaction (a group-commit write), never on its own.
 */
import type Database from 'better-sqlite3';
import type { Delivery, DeliveryError, DeliveryWithAttempts, Request } from '../../model/index.js';
import type * as D from '../deliveryParams.js';
import { attemptFromRow, deliveryFromRow, type AttemptRow, type DeliveryRow } from '../deliveryRows.js';
import { batchFromRow, type BatchRow } from '../rows.js';
import { batchDelivery, mayFinishBatch, requestDelivery } from '../rules.js';
import type * as sql from './statements.js';

type Statements = { readonly [K in keyof typeof sql]: Database.Statement };

/**
 * Writes the outbox rows a transition of `request` gets (rules.ts): its webhook
 * delivery once it is terminal, and its batch's `batch.completed` delivery when
 * it was the batch's last unfinished item. Runs in the item's transition, so
 * exactly one transition can see the batch finish.
 */
export function insertOutboxRows(s: Statements, request: Request, now: number): void {
  const delivery = requestDelivery(request, now);
  if (delivery) s.DELIVERY_INSERT.run(delivery);
  if (!mayFinishBatch(request)) return;
  const row = s.BATCH_GET.get({ id: request.batch_id }) as BatchRow | undefined;
  // Without a batch webhook there is nothing to write: skip the count.
  if (!row || row.webhook_url === null) return;
  const counts: Record<string, number> = {};
  for (const { status, n } of s.BATCH_STATUS_COUNTS.all({ batch_id: row.id }) as { status: string; n: number }[]) counts[status] = n;
  const done = batchDelivery(batchFromRow(row), counts, now);
  if (done && !s.DELIVERY_EXISTS_FOR.get({ request_id: row.id })) s.DELIVERY_INSERT.run(done);
}

export function claimDeliveries(s: Statements, p: D.DeliveryClaimParams): Delivery[] {
  const ids = s.DELIVERY_DUE_LIST.all({ now: p.now, limit: p.limit }) as { id: string }[];
  const out: Delivery[] = [];
  for (const { id } of ids) {
    const row = s.DELIVERY_CLAIM_ONE.get({ id, owner: p.owner, now: p.now, lease_expires_at: p.now + p.leaseMs }) as
      DeliveryRow | undefined;
    if (row) out.push(deliveryFromRow(row));
  }
  return out;
}

function recordAttempt(s: Statements, row: DeliveryRow, p: D.DeliveryCompleteParams, error: DeliveryError | null): void {
  s.DELIVERY_ATTEMPT_INSERT.run({
    delivery_id: row.id,
    series: row.series,
    attempt: row.attempt,
    started_at: p.startedAt,
    duration_ms: Math.max(0, Math.round(p.durationMs)),
    status_code: p.statusCode,
    error: error === null ? null : JSON.stringify(error),
    response_excerpt: p.responseExcerpt,
  });
}

const ref = (p: D.DeliveryReleaseParams) => ({ id: p.id, owner: p.owner, attempt: p.attempt, now: p.now });

export function completeDelivery(s: Statements, p: D.DeliveryCompleteParams): Delivery | null {
  const row = s.DELIVERY_COMPLETE.get({ ...ref(p), status_code: p.statusCode }) as DeliveryRow | undefined;
  if (!row) return null;
  recordAttempt(s, row, p, null);
  return deliveryFromRow(row);
}

export function failDelivery(s: Statements, p: D.DeliveryFailParams): Delivery | null {
  const row = s.DELIVERY_FAIL.get({ ...ref(p), status_code: p.statusCode, error: JSON.stringify(p.error), retry_at: p.retryAt }) as
    DeliveryRow | undefined;
  if (!row) return null;
  recordAttempt(s, row, p, p.error);
  return deliveryFromRow(row);
}

export function releaseDelivery(s: Statements, p: D.DeliveryReleaseParams): boolean {
  return s.DELIVERY_RELEASE.run(ref(p)).changes === 1;
}

export function rescueDeliveries(s: Statements, p: D.DeliveryRescueExpiredParams): number {
  return s.DELIVERY_RESCUE.run({ now: p.now, all_except: p.allExcept ?? null, limit: p.limit }).changes;
}

export function redeliver(s: Statements, p: D.DeliveryRedeliverParams): D.RedeliverOutcome {
  const current = s.DELIVERY_GET.get({ id: p.id }) as DeliveryRow | undefined;
  if (!current || current.request_id !== p.requestId) return { outcome: 'not_found' };
  const row = s.DELIVERY_REDELIVER.get({ id: p.id, now: p.now }) as DeliveryRow | undefined;
  return row ? { outcome: 'scheduled', delivery: deliveryFromRow(row) } : { outcome: 'in_progress', delivery: deliveryFromRow(current) };
}

export function listDeliveries(s: Statements, requestId: string): DeliveryWithAttempts[] {
  const rows = s.DELIVERY_LIST_FOR_REQUEST.all({ request_id: requestId }) as DeliveryRow[];
  if (rows.length === 0) return [];
  const attempts = s.DELIVERY_ATTEMPTS_FOR_REQUEST.all({ request_id: requestId }) as AttemptRow[];
  return rows.map((row) => ({ ...deliveryFromRow(row), attempts: attempts.filter((a) => a.delivery_id === row.id).map(attemptFromRow) }));
}

export function nextDueAt(s: Statements): number | null {
  return (s.DELIVERY_NEXT_DUE_AT.get() as { due: number | null }).due;
}

/** Deletes the deliveries (and their attempts) of a purged request, or of a purged batch (filed under its id). */
export function deleteDeliveriesFor(s: Statements, requestId: string): void {
  s.DELIVERY_ATTEMPT_DELETE_FOR_REQUEST.run({ id: requestId });
  s.DELIVERY_DELETE_FOR_REQUEST.run({ id: requestId });
}
