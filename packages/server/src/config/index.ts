export { ConfigError, loadConfig } from './load.js';
export type { ErrandConfig, LoadConfigOptions } from './load.js';
export { configSchema, NAME_PATTERN } from './schema.js';
export type { ConfigFile, ConfigInput, OperationConfig, RetryConfig } from './schema.js';
export { formatSeconds, parseDurationMs, parseSizeBytes } from './units.js';
