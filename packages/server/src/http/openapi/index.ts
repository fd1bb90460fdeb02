export { buildOpenApiDocument } from './document.js';
export { openApiRoutes } from './register.js';
