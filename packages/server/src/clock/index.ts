export { sleep, systemClock } from './clock.js';
export type { Clock, TimerHandle } from './clock.js';
export { DatabaseClock } from './databaseClock.js';
