export { ConfigError, loadConfig } from './load.js';
export type { ErrandConfig, LoadConfigOptions } from './load.js';
export { ADMIN_TENANT, configSchema, OPEN_TENANT, RESERVED_TENANTS } from './schema.js';
export type { CommandKindConfig, HttpKindConfig, LimitsConfig, LlmKindConfig, OperationConfig } from './schema.js';
export { formatSeconds } from './units.js';
