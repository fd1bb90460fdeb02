/**
 * `GET /metrics`: Prometheus exposition text. With `observability.metrics.auth:
 * admin` (the default) it needs an admin key whenever API keys are configured:
 * none or an unknown one → 401, a tenant key → 403 (metrics span every tenant).
 * When `observability.metrics.port` is set, metrics live on that separate
 * listener instead (server.ts) and this route is not registered.
 */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../metrics/index.js';
import { ErrandError } from '../../model/index.js';
import type { Authenticator } from '../auth.js';

export interface MetricsRouteOptions {
  metrics: Metrics;
  auth: Authenticator;
  requireAdmin: boolean;
}

export function metricsRoutes(app: FastifyInstance, { metrics, auth, requireAdmin }: MetricsRouteOptions): void {
  app.get('/metrics', async (request, reply) => {
    if (requireAdmin && !auth.authenticate(request).admin) throw new ErrandError('forbidden');
    const text = await metrics.render();
    return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });
}
