export { ConfigError, loadConfig } from './load.js';
export type { ErrandConfig, LoadConfigOptions } from './load.js';
export { configSchema, NAME_PATTERN, OPERATION_KINDS } from './schema.js';
export type { CommandKindConfig, ConfigFile, ConfigInput, HttpKindConfig, LimitsConfig, LlmKindConfig, OperationConfig, RetryConfig } from './schema.js';
export { formatSeconds, parseDurationMs, parseSizeBytes } from './units.js';
