export { createMetrics } from './metrics.js';
export type { Metrics, MetricsOptions } from './metrics.js';
export { LabelCap, OVERFLOW_LABEL } from './labels.js';
export { startMetricsListener } from './listener.js';
export type { MetricsListener } from './listener.js';
