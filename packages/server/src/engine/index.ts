export { Engine, newNodeId } from './engine.js';
export { EngineEvents } from './events.js';
export { formatEstimate } from './estimator.js';
export type { Estimate } from './estimator.js';
export type { EngineEventMap, EngineEventName } from './events.js';
export { retryDelayMs } from '../store/index.js';
export { EVENT_PAGE_SIZE, Follow, LIVE_BUFFER_MAX, waitFor } from './follow.js';
export type { FollowEnd, FollowEntry } from './follow.js';
