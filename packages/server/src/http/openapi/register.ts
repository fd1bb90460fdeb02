/**
 * `GET /openapi.json` (the generated document) and `GET /docs` (Swagger UI
 * over it, with its assets under `/docs/static/` served from the
 * @fastify/swagger-ui package: no CDN, works offline). Neither needs a key:
 * the contract is not secret and the document holds no data (docs/api.md).
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { buildOpenApiDocument, type DocumentOptions } from './document.js';

/** Where Swagger UI lives; its own assets are under `${DOCS_PREFIX}/`. */
const DOCS_PREFIX = '/docs';

export function openApiRoutes(app: FastifyInstance, options: DocumentOptions): void {
  const document = buildOpenApiDocument(options);
  // Serialised once: the document never changes while the app runs.
  const body = JSON.stringify(document);
  app.get('/openapi.json', async (_request, reply) =>
    reply.header('cache-control', 'public, max-age=300').type('application/json; charset=utf-8').send(body),
  );
  // Static mode: the document above as is (the routes validate with zod, not Fastify schemas, so nothing is collected).
  void app.register(swagger, { mode: 'static', specification: { document: document as never } });
  void app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    uiConfig: { deepLinking: true, docExpansion: 'list', defaultModelsExpandDepth: 1 },
  });
}
