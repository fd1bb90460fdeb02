export { DatabaseClock, sleep, systemClock } from './clock.js';
export type { Clock, DatabaseClockOptions, TimerHandle } from './clock.js';
export { Engine, newNodeId } from './engine.js';
export type { EngineOptions, SubmitBatchParams, SubmitParams, SubmitWithKeyParams } from './engine.js';
export { EngineEvents } from './events.js';
export { Estimator, formatEstimate } from './estimator.js';
export type { Estimate } from './estimator.js';
export type { EngineEventMap, EngineEventName } from './events.js';
export { retryDelayMs } from '../store/index.js';
