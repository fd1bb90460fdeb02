export { buildApp } from './app.js';
export { isLoopbackHost } from './loopback.js';
export { openSseStreamCount } from './sse.js';
