export { ConfigError, loadConfig } from './load.js';
export type { ErrandConfig, LoadConfigOptions } from './load.js';
export { ADMIN_TENANT, configSchema, NAME_PATTERN, OPEN_TENANT, OPERATION_KINDS, RESERVED_TENANTS } from './schema.js';
export type {
  CommandKindConfig,
  ConfigFile,
  ConfigInput,
  HttpKindConfig,
  LimitsConfig,
  LlmKindConfig,
  OperationConfig,
  RetryConfig,
} from './schema.js';
export { formatSeconds, parseDurationMs, parseSizeBytes } from './units.js';
