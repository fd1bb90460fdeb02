export { openStore } from './open.js';
export type { OpenStoreOptions } from './open.js';
export { SqliteStore } from './sqlite/index.js';
export type { SqliteStoreOptions } from './sqlite/index.js';
export type {
  CancelOutcome,
  ClaimRef,
  EventAppendParams,
  EventListAfterParams,
  LeaseExtendParams,
  LeaseRescueExpiredParams,
  NewRequest,
  RequestCancelParams,
  RequestClaimParams,
  RequestCompleteParams,
  RequestCounts,
  RequestFailParams,
  RequestGetByIdParams,
  RequestInsertParams,
  RequestListParams,
  RequestNextRunAtParams,
  RequestProgressParams,
  RequestPurgeFinishedParams,
  RequestReleaseParams,
  RequestRetryParams,
  Store,
  StoreCapabilities,
  Transition,
} from './store.js';
