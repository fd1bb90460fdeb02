export { ClaimLoop } from './claimLoop.js';
export type { ClaimLoopOptions } from './claimLoop.js';
export { logFailures } from './failures.js';
export { PeriodicSweeper, PeriodicTask } from './periodic.js';
export type { Service } from './service.js';
