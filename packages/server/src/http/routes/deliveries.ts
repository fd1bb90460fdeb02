/**
 * The webhook delivery log of a request, under `/v1/requests` (and the `/v1/tasks` alias):
 * - `GET /v1/requests/{id}/deliveries` — every delivery with its attempts (status codes, timings, errors) and next attempt.
 * - `POST /v1/requests/{id}/deliveries/{delivery_id}/redeliver` — send again as a new attempt series (same
 *   payload, same `webhook-id`); `202`, or `409 delivery_in_progress` while an attempt is under way.
 * Tenant-scoped like the request: another tenant's request is a 404.
 */
import type { FastifyInstance } from 'fastify';
import type { Engine } from '../../engine/index.js';
import { ErrandError, isDeliveryId, isRequestId, type Delivery, type DeliveryWithAttempts } from '../../model/index.js';
import { callerOf } from '../caller.js';

export interface DeliveryRouteDeps {
  engine: Engine;
}

export function deliveryRoutes(app: FastifyInstance, deps: DeliveryRouteDeps): void {
  const { engine } = deps;
  const notFound = (id: string) => new ErrandError('request_not_found', `No request with id "${id.slice(0, 80)}".`);

  for (const base of ['/v1/requests', '/v1/tasks']) {
    app.get(`${base}/:id/deliveries`, async (request) => {
      const { id } = request.params as { id: string };
      if (!isRequestId(id)) throw notFound(id);
      const deliveries = await engine.deliveries({ id, tenant: callerOf(request).tenant });
      return { request_id: id, data: deliveries.map(presentDelivery) };
    });

    app.post(`${base}/:id/deliveries/:delivery_id/redeliver`, async (request, reply) => {
      const { id, delivery_id: deliveryId } = request.params as { id: string; delivery_id: string };
      if (!isRequestId(id)) throw notFound(id);
      if (!isDeliveryId(deliveryId))
        throw new ErrandError('delivery_not_found', `Request ${id} has no delivery "${deliveryId.slice(0, 80)}".`);
      const delivery = await engine.redeliver({ id, deliveryId, tenant: callerOf(request).tenant });
      request.log.info({ request_id: id, delivery_id: deliveryId, series: delivery.series }, 'webhook redelivery scheduled');
      void reply.code(202).header('location', `${base}/${id}/deliveries`);
      return { ...summary(delivery), location: `${base}/${id}/deliveries` };
    });
  }
}

function summary(d: Delivery): Record<string, unknown> {
  return {
    delivery_id: d.id,
    request_id: d.request_id,
    event: d.event,
    url: d.url,
    status: d.status,
    series: d.series,
    attempt: d.attempt,
    next_attempt_at: iso(d.next_attempt_at),
    last_status_code: d.last_status_code,
    last_error: d.last_error,
    created_at: iso(d.created_at),
    finished_at: iso(d.finished_at),
  };
}

/** A delivery as the log shows it; times are ISO 8601, durations ms. */
function presentDelivery(d: DeliveryWithAttempts): Record<string, unknown> {
  return {
    ...summary(d),
    attempts: d.attempts.map((a) => ({
      series: a.series,
      attempt: a.attempt,
      started_at: iso(a.started_at),
      duration_ms: a.duration_ms,
      status_code: a.status_code,
      error: a.error,
      response_excerpt: a.response_excerpt,
    })),
  };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
