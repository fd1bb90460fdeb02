export { defineOperation } from './define.js';
export type { OperationContext, OperationDefinition } from './define.js';
export { loadOperations, OperationLoadError } from './registry.js';
export type { Operation, RetryPolicy } from './registry.js';
