/**
 * The Fastify application, built without listening (tests `inject()` into it).
 * Route groups are plain functions taking their dependencies; auth runs as an
 * onRequest hook on every /v1 route, before the body is read.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { ErrandConfig } from '../config/index.js';
import type { Engine } from '../engine/index.js';
import type { Metrics } from '../metrics/index.js';
import { ErrandError } from '../model/index.js';
import { Authenticator, keyScope } from './auth.js';
import { registerBodyParser } from './body.js';
import './caller.js';
import { registerErrorHandling } from './errors.js';
import { connectionOptions, registerLimits } from './limits/index.js';
import { registerLoopbackGuard } from './loopback.js';
import { openApiRoutes } from './openapi/index.js';
import { batchRoutes } from './routes/batches.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { deliveryRoutes } from './routes/deliveries.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { openAiRoutes } from './routes/openai.js';
import { requestRoutes } from './routes/requests.js';
import { statsRoutes } from './routes/stats.js';
import { submitRoutes } from './routes/submit.js';
import { tenantEventRoutes } from './routes/tenantEvents.js';

export interface BuildAppOptions {
  config: ErrandConfig;
  engine: Engine;
  log: Logger;
  /** Served at GET /metrics unless `observability.metrics.port` moves them to their own listener. */
  metrics?: Metrics | undefined;
}

export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { config, engine, log } = options;
  const app: FastifyInstance = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.server.body_limit,
    // request.ip: the client named by X-Forwarded-For when the peer is a trusted proxy, else the TCP peer.
    trustProxy: trustProxy(config.server.trust_proxy),
    // Timeouts of limits.* (the limits layer, ./limits/).
    ...connectionOptions(config.limits),
    // Our own hook answers 503 shutting_down in the one error envelope instead.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true },
    // Errors raised by the router itself (a malformed %-escape) get the one envelope too.
    frameworkErrors: (error, _request, reply) => {
      const mapped = new ErrandError('invalid_parameter', `The URL is malformed: ${error.message}`, { cause: error });
      void (reply as FastifyReply).code(mapped.status).send(mapped.toEnvelope());
    },
  });
  // Before the auth hook: an address throttled for failed keys never reaches a key check.
  registerLimits(app, { config, engine });
  const auth = new Authenticator(config.auth);
  // Auth off: only this machine's own clients (no other site's page, no rebound host name); see loopback.ts.
  if (!auth.enabled) registerLoopbackGuard(app);
  app.decorateRequest('caller', null);
  app.addHook('onRequest', async (request) => {
    if (keyScope(request) === 'api') request.caller = auth.authenticate(request);
  });
  registerBodyParser(app, config.server.body_limit);
  registerErrorHandling(app);
  healthRoutes(app, { engine });
  const metricsHere = options.metrics !== undefined && config.observability.metrics.port === undefined;
  if (options.metrics && metricsHere) {
    metricsRoutes(app, { metrics: options.metrics, auth, requireAdmin: config.observability.metrics.auth === 'admin' });
  }
  submitRoutes(app, { engine, config });
  requestRoutes(app, { engine, config });
  batchRoutes(app, { engine, config });
  deliveryRoutes(app, { engine });
  openAiRoutes(app, { engine, config });
  eventRoutes(app, { engine, config });
  tenantEventRoutes(app, { engine, config });
  statsRoutes(app, { engine });
  dashboardRoutes(app);
  openApiRoutes(app, { config, metrics: metricsHere ? (config.observability.metrics.auth === 'admin' ? 'admin' : 'open') : false });
  await app.ready();
  return app;
}

/** `server.trust_proxy` as Fastify takes it: a hop count n trusts the n nearest hops. */
function trustProxy(setting: ErrandConfig['server']['trust_proxy']): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof setting === 'number' ? (_address, hop) => hop < setting : setting;
}
