export { connectionOptions } from './connections.js';
export { limitsOf, registerLimits } from './layer.js';
