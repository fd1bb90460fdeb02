export { sleep, systemClock } from './clock.js';
export type { Clock, TimerHandle } from './clock.js';
export { Engine } from './engine.js';
export type { EngineOptions, SubmitParams } from './engine.js';
export { EngineEvents, eventNameForStatus } from './events.js';
export { DurationEstimates, formatEstimate } from './estimates.js';
export type { Estimate } from './estimates.js';
export type { EngineEventMap, EngineEventName } from './events.js';
export { retryDelayMs } from './retry.js';
