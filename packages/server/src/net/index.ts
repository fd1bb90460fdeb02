export { FETCH_DEFAULTS, FETCH_URL_MAX_LENGTH, FetchFailure, GuardedFetcher } from './fetch.js';
export type { FetchFailureType, FetchLimits, GuardedFetcherOptions, GuardedFetchInit } from './fetch.js';
export {
  FORBIDDEN_TARGET_CODE,
  forbiddenReason,
  ForbiddenTargetError,
  systemResolver,
  TargetPolicy,
  WEBHOOK_URL_MAX_LENGTH,
  withHosts,
} from './targets.js';
export type { PolicyLabel, ResolvedAddress, Resolver } from './targets.js';
