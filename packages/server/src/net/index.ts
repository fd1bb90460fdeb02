export { FETCH_DEFAULTS, FetchFailure, GuardedFetcher } from './fetch.js';
export type { FetchFailureType, FetchLimits, GuardedFetcherOptions, GuardedFetchInit } from './fetch.js';
export { FORBIDDEN_TARGET_CODE, ForbiddenTargetError, systemResolver, TargetPolicy, withHosts } from './targets.js';
export type { Resolver } from './targets.js';
