export { startCluster } from './cluster.js';
export type { Cluster } from './cluster.js';
export { maskUrl, retryStartup } from './startup.js';
