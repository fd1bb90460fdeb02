export { DASHBOARD_STATIC_DIR, loadDashboardAssets } from './assets.js';
export type { DashboardAssets, DashboardFile } from './assets.js';
