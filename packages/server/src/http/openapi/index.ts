export { buildOpenApiDocument, type DocumentOptions } from './document.js';
export { DOCS_PREFIX, openApiRoutes } from './register.js';
