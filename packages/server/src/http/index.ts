export { buildApp } from './app.js';
export type { BuildAppOptions } from './app.js';
export { ADMIN_TENANT, Authenticator, OPEN_TENANT } from './auth.js';
export type { Caller } from './auth.js';
export { isLoopbackHost } from './loopback.js';
export { presentRequest } from './present.js';
export { openSseStreamCount } from './sse.js';
