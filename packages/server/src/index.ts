/**
 * errand — durable asynchronous request-reply for long-running work.
 *
 * For operation authors: `defineOperation`, `RequestFailure`, the context types, and
 * `GuardedFetcher` (the SSRF-guarded fetch behind `ctx.fetch`, for code outside a handler).
 * For embedding: `loadConfig` + `createServer`.
 */
export { defineOperation } from './operations/index.js';
export type { OperationContext, OperationDefinition } from './operations/index.js';
export { RequestFailure, ErrandError, ERROR_CATALOG, REQUEST_STATUSES, isTerminal } from './model/index.js';
export type { Progress, Request, RequestError, RequestEvent, RequestStatus, ErrorType } from './model/index.js';
export { ConfigError, loadConfig } from './config/index.js';
export type { ErrandConfig, LoadConfigOptions } from './config/index.js';
export { createServer } from './server.js';
export type { CreateServerOptions, ErrandServer } from './server.js';
export { FETCH_DEFAULTS, FetchFailure, GuardedFetcher } from './net/index.js';
export type { FetchFailureType, FetchLimits, GuardedFetcherOptions, GuardedFetchInit } from './net/index.js';
export type { Clock } from './clock/index.js';
export type { Store } from './store/index.js';
