/**
 * Webhook deliveries: one notification of a request's outcome to its
 * `webhook_url`, written to the outbox in the same transaction as the terminal
 * transition, then sent (and retried) by the deliverer (src/webhooks/).
 *
 *   pending ──claim──▶ delivering ──▶ delivered
 *      ▲                   │   └────▶ failed     (no retries left, 410 Gone, or a forbidden target)
 *      └── retry / release / lease rescue / redeliver
 *
 * `delivered` and `failed` end an attempt series; a redelivery starts a new
 * series (same id, same payload) from `pending`. A delivery never changes the
 * request it reports on.
 */
import type { Batch, Request } from './request.js';

/** Every state a delivery can be in. */
export const DELIVERY_STATUSES = [
  /** Waiting for its next attempt at `next_attempt_at` (new, retrying, released or redelivered). */
  'pending',
  /** Claimed by a node (`lease_owner`) that is sending it now. */
  'delivering',
  /** Ended: the receiver answered 2xx. */
  'delivered',
  /** Ended: retries exhausted, the receiver answered 410 Gone, or the target is forbidden. */
  'failed',
] as const;

type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** Why an attempt failed: `type` is one of `http_status`, `redirect`, `gone`, `timeout`, `network`, `forbidden_target`. */
export interface DeliveryError {
  type: string;
  message: string;
}

/** One try at sending a delivery. */
export interface DeliveryAttempt {
  /** The attempt series (1, then +1 per redelivery). */
  series: number;
  /** Attempt number within the series, from 1. */
  attempt: number;
  started_at: number;
  duration_ms: number;
  /** The receiver's HTTP status, or null when none came (timeout, network error, forbidden target). */
  status_code: number | null;
  error: DeliveryError | null;
  /** The start of the receiver's response body (at most 1 KiB of text). */
  response_excerpt: string | null;
}

/** One webhook notification and its state. */
export interface Delivery {
  /** `dlv_…`; sent as the `webhook-id` header, stable across retries and redeliveries. */
  id: string;
  request_id: string;
  tenant: string;
  /** `request.completed`, `request.failed` or `request.cancelled`. */
  event: string;
  url: string;
  /** The exact JSON bytes signed and sent (serialised once, when the request ended). */
  payload: string;
  status: DeliveryStatus;
  series: number;
  /** Attempts started in the current series. */
  attempt: number;
  /** When the next attempt is due (epoch ms); null once ended. */
  next_attempt_at: number | null;
  lease_owner: string | null;
  lease_expires_at: number | null;
  last_status_code: number | null;
  last_error: DeliveryError | null;
  created_at: number;
  updated_at: number;
  /** When it was delivered or failed for good; null while pending or delivering. */
  finished_at: number | null;
}

/** A delivery with its attempts, oldest first. */
export interface DeliveryWithAttempts extends Delivery {
  attempts: DeliveryAttempt[];
}

/**
 * The body POSTed once every item of a batch is terminal (`batch.completed`):
 * counts per state and the success rate; fetch `/v1/batches/{id}` for the items.
 */
export function batchDeliveryPayload(batch: Batch, counts: Readonly<Record<string, number>>, completedAt: number): Record<string, unknown> {
  const succeeded = counts.completed ?? 0;
  const failed = counts.failed ?? 0;
  const cancelled = counts.cancelled ?? 0;
  const finished = succeeded + failed + cancelled;
  return {
    type: 'batch.completed',
    batch_id: batch.id,
    status: 'completed',
    operation: batch.operation,
    total: batch.total,
    succeeded,
    failed,
    cancelled,
    success_rate: finished > 0 ? succeeded / finished : null,
    created_at: new Date(batch.created_at).toISOString(),
    completed_at: new Date(completedAt).toISOString(),
    location: `/v1/batches/${batch.id}`,
    ...(batch.metadata ? { metadata: batch.metadata } : {}),
  };
}

/**
 * The body POSTed for a request that reached a terminal state: the seeds'
 * `{request_id, status, result}` (or `error`), plus what a receiver needs to
 * act without calling back. Field order is fixed; the store serialises it once.
 */
export function deliveryPayload(request: Request): Record<string, unknown> {
  const body: Record<string, unknown> = {
    type: `request.${request.status}`,
    request_id: request.id,
    status: request.status,
    operation: request.operation,
  };
  if (request.status === 'completed') body.result = request.result;
  else body.error = request.error;
  body.attempt = request.attempt;
  body.created_at = new Date(request.created_at).toISOString();
  body.completed_at = request.completed_at === null ? null : new Date(request.completed_at).toISOString();
  body.duration_ms = request.completed_at === null ? null : request.completed_at - request.created_at;
  if (request.metadata) body.metadata = request.metadata;
  if (request.retry_of) body.retry_of = request.retry_of;
  return body;
}
