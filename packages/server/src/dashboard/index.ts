export { loadDashboardAssets } from './assets.js';
export type { DashboardAssets } from './assets.js';
