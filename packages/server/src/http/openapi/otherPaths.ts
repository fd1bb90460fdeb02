/**
 * The rest of the document: the live feed, the OpenAI-compatible endpoints,
 * health, metrics, and the document itself.
 */
import { statsQuery } from '../routes/stats.js';
import { eventsQuery } from '../routes/tenantEvents.js';
import { answer, errors, eventStream, json, openAiErrors, pathParameter, queryParameters } from './build.js';
import { ref, type Json } from './components.js';

/** No key needed. */
const PUBLIC: Json[] = [];

export interface OtherPathOptions {
  /** How `GET /metrics` is served by this app: with an admin key, open, or not here (own listener or disabled). */
  metrics: 'admin' | 'open' | false;
}

export function otherPaths(options: OtherPathOptions): Record<string, Json> {
  const paths: Record<string, Json> = {
    '/v1/events': {
      get: {
        operationId: 'streamAllEvents',
        tags: ['Requests'],
        summary: "Live events of every request the key may see (its tenant's; the admin key all), as Server-Sent Events",
        description: 'Live only: no replay and no `id:`; resume a single request with its own events endpoint.',
        parameters: queryParameters(eventsQuery, { operation: "Only this operation's requests." }),
        responses: { '200': answer('The event stream.', eventStream('TailEventMessage')), ...errors(400, 401, 500, 503) },
      },
    },
    '/v1/stats': {
      get: {
        operationId: 'getStats',
        tags: ['Requests'],
        summary: 'Per-operation throughput, success rate, duration percentiles and queue depth over a recent window',
        description: "Of the requests the key may see (the dashboard's operations page). For exact all-tenant numbers scrape `/metrics`.",
        parameters: queryParameters(statsQuery, { window_minutes: 'The window, in minutes (default 60).' }),
        responses: { '200': answer('The statistics.', json('Stats')), ...errors(400, 401, 500, 503) },
      },
    },
    '/v1/chat/completions': {
      post: {
        operationId: 'createChatCompletion',
        tags: ['OpenAI-compatible'],
        summary: 'OpenAI chat completion; model picks an operation',
        description:
          'Runs the request sync, held up to `server.sync_wait_limit`. The Errand request id is in `x-request-id` and `request_id`. ' +
          "Errors use OpenAI's envelope.",
        parameters: [ref('parameters', 'IdempotencyKey')],
        requestBody: { required: true, content: json('ChatCompletionRequest') },
        responses: {
          '200': answer(
            'The completion, or with `stream: true` the chunks as SSE (`data:` lines, then `data: [DONE]`).',
            { ...json('ChatCompletion'), ...eventStream('ChatCompletionStreamMessage') },
            { 'x-request-id': 'XRequestId', 'Idempotent-Replayed': 'IdempotentReplayed' },
          ),
          ...openAiErrors(400, 401, 404, 409, 413, 415, 422, 500, 502, 503, 504),
        },
      },
    },
    '/v1/models': {
      get: {
        operationId: 'listModels',
        tags: ['OpenAI-compatible'],
        summary: 'The operations exposed as models (openai.models)',
        responses: { '200': answer('The models.', json('ModelList')), ...openAiErrors(401, 500) },
      },
    },
    '/v1/models/{model}': {
      get: {
        operationId: 'getModel',
        tags: ['OpenAI-compatible'],
        summary: 'One exposed model',
        parameters: [pathParameter('model', 'A model id from `GET /v1/models`.')],
        responses: { '200': answer('The model.', json('Model')), ...openAiErrors(401, 404, 500) },
      },
    },
    '/health': {
      get: {
        operationId: 'health',
        tags: ['Operations'],
        summary: 'Liveness: the process is up',
        security: PUBLIC,
        responses: { '200': answer('Up.', json('Health')) },
      },
    },
    '/ready': {
      get: {
        operationId: 'ready',
        tags: ['Operations'],
        summary: 'Readiness: the store answers and the node accepts work',
        security: PUBLIC,
        responses: { '200': answer('Ready, with queue counts.', json('Ready')), ...errors(503) },
      },
    },
    '/dashboard': {
      get: {
        operationId: 'dashboard',
        tags: ['Operations'],
        summary: 'The dashboard page; it asks for a key and calls the /v1 API with it',
        security: PUBLIC,
        responses: { '200': answer('The page.', { 'text/html': { schema: { type: 'string' } } }), ...errors(404) },
      },
    },
    '/dashboard/assets/{file}': {
      get: {
        operationId: 'dashboardAsset',
        tags: ['Operations'],
        summary: 'A bundled script or stylesheet of the dashboard (content-hashed name)',
        security: PUBLIC,
        parameters: [pathParameter('file', "The asset's file name, as the page names it.")],
        responses: { '200': answer('The file.', { '*/*': { schema: { type: 'string' } } }), ...errors(404) },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'openApiDocument',
        tags: ['Operations'],
        summary: 'This document (OpenAPI 3.1), generated from the schemas the routes validate with',
        security: PUBLIC,
        responses: { '200': answer('The document.', json({ type: 'object' })) },
      },
    },
    '/docs': {
      get: {
        operationId: 'apiDocs',
        tags: ['Operations'],
        summary: 'A readable page of this document (Swagger UI, served offline)',
        security: PUBLIC,
        responses: { '200': answer('The page.', { 'text/html': { schema: { type: 'string' } } }) },
      },
    },
  };
  if (options.metrics !== false) {
    paths['/metrics'] = {
      get: {
        operationId: 'metrics',
        tags: ['Operations'],
        summary: 'Prometheus metrics of this node (docs/observability.md)',
        description:
          'With `observability.metrics.auth: admin` (the default) it needs an admin key once keys are configured; a tenant key is `403`.',
        ...(options.metrics === 'open' ? { security: PUBLIC } : {}),
        responses: {
          '200': answer('The text exposition format.', { 'text/plain': { schema: { type: 'string' } } }),
          ...errors(401, 403, 500),
        },
      },
    };
  }
  return paths;
}
