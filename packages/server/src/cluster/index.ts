export { ClusterRelay } from './relay.js';
export type { ClusterRelayOptions } from './relay.js';
export { startCluster } from './cluster.js';
export type { Cluster, StartClusterOptions } from './cluster.js';
export { maskUrl, retryStartup } from './startup.js';
export type { RetryStartupOptions } from './startup.js';
