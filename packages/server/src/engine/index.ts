export { Engine, newNodeId } from './engine.js';
export type { EngineOptions, SubmitBatchParams, SubmitParams, SubmitWithKeyParams } from './engine.js';
export { EngineEvents, eventNameForStatus } from './events.js';
export { Estimator, formatEstimate } from './estimator.js';
export type { Estimate } from './estimator.js';
export type { EngineEventMap, EngineEventName } from './events.js';
export { retryDelayMs } from './retry.js';
