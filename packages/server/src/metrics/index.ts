export { createMetrics } from './metrics.js';
export type { Metrics } from './metrics.js';
export { LabelCap } from './labels.js';
export { startMetricsListener } from './listener.js';
export type { MetricsListener } from './listener.js';
