export { connectionOptions } from './connections.js';
export { addressKey } from './failedAuth.js';
export { limitsOf, registerLimits } from './layer.js';
export type { Limits } from './layer.js';
