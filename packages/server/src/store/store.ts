/**
 * The Store: everything the engine and the HTTP layer persist, in the words of
 * the model, never SQL. Backends (sqlite/, later postgres/) implement it and
 * pass one conformance suite (test/store/conformance.ts).
 *
 * Rules every backend keeps:
 * - Methods are noun-first and take one params object.
 * - Every state change is a guarded compare-and-set: transitions out of
 *   `processing` name the `attempt` and `owner` that claimed the request, and
 *   return `null` when that claim is no longer current ("lease lost") — a stale
 *   worker can never overwrite a newer outcome. Terminal states never change.
 * - Each transition, progress report and output chunk appends one event with
 *   the request's next `seq` in the same transaction.
 * - A method that resolves has committed (nothing is acknowledged before that).
 * - Time comes from the caller's `now` (epoch ms from the engine's Clock).
 * - A transition into a terminal state of a request with a `webhook_url` also
 *   inserts its webhook delivery (the outbox), in the same transaction.
 * - What a transition writes besides its row (event data, outbox rows, a rescued
 *   lease's outcome) is decided by rules.ts, shared by every backend; each
 *   returns the `Transition` with the `kind` of change it made.
 */
import type {
  Batch,
  Delivery,
  DeliveryWithAttempts,
  DurationHistogram,
  Progress,
  Request,
  RequestError,
  RequestEvent,
  RequestStatus,
} from '../model/index.js';
import type {
  DeliveryClaimParams,
  DeliveryCompleteParams,
  DeliveryFailParams,
  DeliveryListForRequestParams,
  DeliveryRedeliverParams,
  DeliveryReleaseParams,
  DeliveryRescueExpiredParams,
  RedeliverOutcome,
} from './deliveryParams.js';
import type { RetryPolicies } from './rules.js';
import type { Listen } from './notifications.js';
import type { NodeRegister } from './nodes.js';

/**
 * What a backend can do; the engine branches on these (and on the optional
 * `Store.listen` / `Store.dbNow`), never on a backend's name.
 */
export interface StoreCapabilities {
  /** The backend's name, for labels and messages only (`sqlite`, `postgres`): nothing branches on it. */
  readonly kind: string;
  /** Exactly one process uses the database (SQLite): leases held by any other owner at start-up are dead. */
  readonly exclusiveAccess: boolean;
  /** Smallest time step the backend stores, in ms. */
  readonly timePrecisionMs: number;
}

/** A new request as the API builds it; the store fills status, attempt and bookkeeping. */
export type NewRequest = Pick<
  Request,
  | 'id'
  | 'tenant'
  | 'operation'
  | 'input'
  | 'mode'
  | 'max_attempts'
  | 'run_at'
  | 'task_timeout_ms'
  | 'deadline'
  | 'webhook_url'
  | 'idempotency_key'
  | 'priority'
  | 'estimated_ms'
  | 'metadata'
  | 'retry_of'
  | 'batch_id'
  | 'created_at'
>;

export interface BatchInsertParams {
  batch: Batch;
  /** The items, each with `batch_id` = the batch's id. */
  requests: NewRequest[];
}

export interface BatchGetByIdParams {
  id: string;
  tenant?: string | null | undefined;
  /** Items whose stored result is longer (bytes of JSON) come back without it (`result_omitted`); absent = no limit. */
  resultMaxBytes?: number | undefined;
}

/**
 * A request as status reads, lists and batches return it: everything but its
 * input (callers never see it, and it can be large). With a `resultMaxBytes`
 * limit, a longer result is left out: `result` is then null and
 * `result_omitted` true (read it alone, e.g. with `requestGetSummary`).
 */
export interface RequestSummary extends Omit<Request, 'input'> {
  result_omitted?: boolean | undefined;
}

/**
 * The part of a request a conditional status read needs (`requestGetState`):
 * every field of the status resource that can change after the request was
 * created, except its result, which is fixed once it is completed; and what
 * `Retry-After` is computed from. No input, result or metadata.
 */
export type RequestState = Pick<
  Request,
  'id' | 'tenant' | 'status' | 'attempt' | 'run_at' | 'created_at' | 'estimated_ms' | 'started_at' | 'completed_at' | 'progress' | 'error'
>;

export interface BatchPurgeEmptyParams {
  /** Delete batches created before this whose items have all been purged. */
  before: number;
}

/**
 * What a committed change did, named by the store method that made it (the
 * engine publishes its event from this, never from the status or `seq`):
 * `created` (inserted, pending), `claimed` (an attempt started), `progress`,
 * `retried` (pending again for another attempt: a retry or a rescued lease),
 * `released` (handed back unstarted, the attempt not counted), and the terminal
 * `completed`, `failed`, `cancelled`.
 */
export type TransitionKind = 'created' | 'claimed' | 'progress' | 'retried' | 'released' | 'completed' | 'failed' | 'cancelled';

/** A committed state change and the event it appended. */
export interface Transition {
  kind: TransitionKind;
  request: Request;
  event: RequestEvent;
}

/** Identifies the claim a worker holds; stale claims are refused. */
interface ClaimRef {
  id: string;
  attempt: number;
  owner: string;
  now: number;
}

export interface RequestInsertParams {
  request: NewRequest;
}

export interface RequestGetByIdParams {
  id: string;
  /** When given, a request of another tenant is reported as absent. */
  tenant?: string | null | undefined;
}

export interface RequestListParams {
  tenant?: string | null | undefined;
  /** Rows whose stored result is longer (bytes of JSON) come back without it (`result_omitted`); absent = no limit. */
  resultMaxBytes?: number | undefined;
  statuses?: readonly RequestStatus[] | undefined;
  operation?: string | undefined;
  /** Return requests with ids strictly below this one (newest first). */
  beforeId?: string | undefined;
  limit: number;
}

export interface RequestClaimParams {
  owner: string;
  now: number;
  leaseMs: number;
  /** Most requests to claim. */
  limit: number;
  /** Most requests to claim per operation (operations absent here are unlimited); 0 skips the operation. */
  operationLimits?: Readonly<Record<string, number>> | undefined;
}

export interface RequestCompleteParams extends ClaimRef {
  result: unknown;
}

export interface RequestFailParams extends ClaimRef {
  error: RequestError;
}

export interface RequestRetryParams extends ClaimRef {
  error: RequestError;
  /** When the next attempt may start (epoch ms). */
  runAt: number;
}

export type RequestReleaseParams = ClaimRef;

export interface RequestProgressParams extends ClaimRef {
  progress: Progress;
}

export interface RequestCancelParams {
  id: string;
  tenant?: string | null | undefined;
  now: number;
}

export type CancelOutcome =
  | { outcome: 'cancelled'; transition: Transition; /** The request was running: its handler must be aborted. */ wasProcessing: boolean }
  | { outcome: 'already_finished'; request: Request }
  | { outcome: 'not_found' };

export interface RequestNextRunAtParams {
  /** Only consider requests due strictly after this time (e.g. the last claim: earlier ones are held back by limits). */
  after: number;
}

export interface RequestPurgeFinishedParams {
  /** Purge requests that finished before this time (epoch ms). */
  before: number;
  limit: number;
  /** Each purged request leaves a tombstone (id, tenant, final status) kept until this time. */
  tombstoneUntil: number;
  now: number;
}

/** What remains of a purged request: enough to answer `410 Gone` with its final status. */
export interface Tombstone {
  id: string;
  tenant: string;
  status: RequestStatus;
  completed_at: number;
  purged_at: number;
  expires_at: number;
}

export interface TombstoneGetParams {
  id: string;
  /** When given, another tenant's tombstone is reported as absent. */
  tenant?: string | null | undefined;
}

export interface ExpiredPurgeParams {
  now: number;
  limit: number;
}

/** An operation's learned durations. */
export interface OperationStats {
  operation: string;
  histogram: DurationHistogram;
  updated_at: number;
}

export interface OperationStatsGetParams {
  operation: string;
}

export interface OperationStatsRecordParams {
  operation: string;
  /** Run times to add, oldest first (the estimator records them in memory and flushes them together). */
  durationsMs: readonly number[];
  now: number;
  /** Weight kept by older samples per new one (see model/histogram.ts). */
  decay: number;
}

interface IdempotencyKeyParams {
  tenant: string;
  key: string;
  /** Hash of what was submitted: the same key with another fingerprint is a conflict. */
  fingerprint: string;
  expiresAt: number;
}

export interface RequestInsertIdempotentParams {
  request: NewRequest;
  key: IdempotencyKeyParams;
}

export type IdempotentInsert =
  { outcome: 'created'; transition: Transition } | { outcome: 'existing'; request: Request; sameFingerprint: boolean };

export interface RequestGetByRetryOfParams {
  id: string;
}

export interface RequestCountsParams {
  /** Count only this operation's requests. */
  operation?: string | undefined;
}

export interface EventAppendParams extends ClaimRef {
  type: 'output';
  data: unknown;
}

export interface EventListAfterParams {
  id: string;
  afterSeq: number;
  limit: number;
}

export interface LeaseExtendParams extends ClaimRef {
  leaseMs: number;
}

export interface LeaseRescueExpiredParams {
  now: number;
  limit: number;
  /** Also rescue leases of every owner but this one, expired or not (exclusive-access backends at start-up). */
  allExcept?: string | undefined;
  /**
   * Also rescue leases, expired or not, of nodes whose session (`Store.nodeRegister`) has been gone at least this
   * long (ms), as this sweep and earlier ones saw it. Backends without node sessions ignore it (lease expiry only).
   */
  deadNodeAfterMs?: number | undefined;
  /** The retry policies that set when a rescued request runs again (see rules.ts `rescueOutcome`). */
  retry: RetryPolicies;
}

export interface RequestCounts {
  pending: number;
  processing: number;
}

export interface RateLimitTakeParams {
  /** The bucket, e.g. `tenant:acme` or `operation:acme:resize`. */
  key: string;
  /** Tokens the bucket gains per second (> 0). */
  ratePerSec: number;
  /** Most tokens the bucket holds: the largest burst (> 0). */
  burst: number;
  /** Tokens this take needs: 1 per submission, the item count of a batch. */
  cost: number;
  now: number;
}

export interface RateLimitTake {
  allowed: boolean;
  /** Whole tokens left after this take (0 while the bucket is in debt). */
  remaining: number;
  /** Refused takes: ms until the same take would succeed; 0 when allowed. */
  retryAfterMs: number;
  /** ms until the bucket is full again. */
  resetMs: number;
}

/**
 * What `requestStatsByOperation` aggregates: the newest `scanMax` requests
 * created in [`from`, `to`) (of one tenant, or all), and the requests waiting
 * or running now (at most `scanMax` counted). Every backend answers from
 * indexes over small columns: the cost never grows with inputs or results.
 */
export interface RequestStatsParams {
  /** Only this tenant's requests; null/absent for every tenant. */
  tenant?: string | null | undefined;
  from: number;
  to: number;
  /** Buckets the window is split into (each `(to - from) / buckets` ms, a whole number). */
  buckets: number;
  /** Most requests aggregated per part (window, open); more sets `truncated`. */
  scanMax: number;
}

/** Nearest-rank percentiles of a set of durations (ms). */
interface DurationPercentiles {
  p50: number;
  p95: number;
  p99: number;
}

/** One bucket of the window: requests (created in the window) that ended in it, and how many waited at its end. */
export interface RequestStatsBucket {
  completed: number;
  failed: number;
  cancelled: number;
  /** Created by the bucket's end, neither started nor finished by then. */
  queued: number;
}

/** One operation's numbers; operations without requests in the window or open are absent. */
export interface OperationRequestStats {
  operation: string;
  /** Open now (over all time, not just the window). */
  pending: number;
  processing: number;
  /** Created in the window. */
  accepted: number;
  /** Of those accepted, by current status. */
  completed: number;
  failed: number;
  cancelled: number;
  /** `completed_at − created_at` of the completed ones; null with none. */
  duration_ms: DurationPercentiles | null;
  /** `completed_at − started_at` of the completed ones; null with none. */
  run_ms: DurationPercentiles | null;
  /** `buckets` entries, oldest first. */
  buckets: RequestStatsBucket[];
}

export interface RequestStats {
  /** Requests aggregated (window and open together). */
  scanned: number;
  /** True when either part had more than `scanMax` requests (the numbers cover the newest `scanMax`). */
  truncated: boolean;
  /** Sorted by operation name. */
  operations: OperationRequestStats[];
}

/** The persistence boundary. See the file header for the rules. */
export interface Store {
  readonly capabilities: StoreCapabilities;
  /** Backends shared by several nodes (PostgreSQL): notifications of other nodes' commits (notifications.ts). */
  readonly listen?: Listen;
  /** Backends shared by several nodes (PostgreSQL): the database's clock (epoch ms), one time source for every node's leases. */
  readonly dbNow?: () => Promise<number>;
  /** Backends shared by several nodes (PostgreSQL): a session proving this node alive (nodes.ts); see `deadNodeAfterMs`. */
  readonly nodeRegister?: NodeRegister;

  /** Inserts a batch and all its items (pending requests) in one transaction. */
  batchInsert(params: BatchInsertParams): Promise<{ batch: Batch; transitions: Transition[] }>;
  /** A batch and its items (without inputs) in submission order; null when absent or another tenant's. */
  batchGetById(params: BatchGetByIdParams): Promise<{ batch: Batch; items: RequestSummary[] } | null>;
  /**
   * Deletes old batches whose items retention has purged, with their batch-level deliveries; a batch whose
   * delivery is still pending or being sent stays. Returns how many batches.
   */
  batchPurgeEmpty(params: BatchPurgeEmptyParams): Promise<number>;

  /** Claims up to `limit` due pending deliveries (oldest due first), starting their next attempt under a lease. */
  deliveryClaim(params: DeliveryClaimParams): Promise<Delivery[]>;
  /** `delivering` → `delivered`, recording the attempt; null when the claim is stale. */
  deliveryComplete(params: DeliveryCompleteParams): Promise<Delivery | null>;
  /** Records a failed attempt: back to `pending` at `retryAt`, or `failed` when it is null; null when the claim is stale. */
  deliveryFail(params: DeliveryFailParams): Promise<Delivery | null>;
  /** A request's deliveries (oldest first), each with its attempts. */
  deliveryListForRequest(params: DeliveryListForRequestParams): Promise<DeliveryWithAttempts[]>;
  /** Earliest time a delivery falls due (a pending attempt or an expiring lease), or null when none is waiting. */
  deliveryNextDueAt(): Promise<number | null>;
  /** Starts a new attempt series now (same id and payload) for a delivery that is not being sent. */
  deliveryRedeliver(params: DeliveryRedeliverParams): Promise<RedeliverOutcome>;
  /** `delivering` → `pending` now, giving the attempt back (it was not made: shutdown); false when the claim is stale. */
  deliveryRelease(params: DeliveryReleaseParams): Promise<boolean>;
  /** Returns deliveries whose lease expired (their node died) to `pending`, due now; returns how many. */
  deliveryRescueExpired(params: DeliveryRescueExpiredParams): Promise<number>;

  /** Appends an output chunk to a running request's event log; null when the claim is stale. */
  eventAppend(params: EventAppendParams): Promise<RequestEvent | null>;
  /** Events with `seq > afterSeq`, in order. */
  eventListAfter(params: EventListAfterParams): Promise<RequestEvent[]>;

  /** Renews a running request's lease; false when the claim is stale. */
  leaseExtend(params: LeaseExtendParams): Promise<boolean>;
  /** Returns requests whose lease expired to `pending` (attempts left: `retried`) or fails them (`lease_expired`). */
  leaseRescueExpired(params: LeaseRescueExpiredParams): Promise<Transition[]>;

  /**
   * Takes `cost` tokens from the token bucket `key` (created full), refilled at
   * `ratePerSec` up to `burst`; atomic, and shared by every node of a cluster.
   * See rateLimit.ts for the arithmetic (a cost above `burst` needs a full bucket and leaves it in debt).
   */
  rateLimitTake(params: RateLimitTakeParams): Promise<RateLimitTake>;

  /** Moves a pending or processing request to `cancelled`. */
  requestCancel(params: RequestCancelParams): Promise<CancelOutcome>;
  /**
   * Claims up to `limit` due pending requests (priority, then run_at, then id), starting their next attempt under a
   * lease; never more than a batch's `concurrency` items of one batch running at once.
   */
  requestClaim(params: RequestClaimParams): Promise<Transition[]>;
  /** `processing` → `completed` with a result. */
  requestComplete(params: RequestCompleteParams): Promise<Transition | null>;
  /** Pending/processing counts (of one operation, or all), for readiness and queue-aware estimates. */
  requestCounts(params?: RequestCountsParams): Promise<RequestCounts>;
  /** `processing` → `failed`. */
  requestFail(params: RequestFailParams): Promise<Transition | null>;
  requestGetById(params: RequestGetByIdParams): Promise<Request | null>;
  /** The request without its input (for status reads); null when absent or another tenant's. */
  requestGetSummary(params: RequestGetByIdParams): Promise<RequestSummary | null>;
  /** The request's changing state only (see `RequestState`): a cheap read for conditional status reads; null when absent or another tenant's. */
  requestGetState(params: RequestGetByIdParams): Promise<RequestState | null>;
  /** The request created by retrying `id` (its `retry_of`), if any. */
  requestGetByRetryOf(params: RequestGetByRetryOfParams): Promise<Request | null>;
  /** Inserts a new `pending` request and its first event; resolves once durable. */
  requestInsert(params: RequestInsertParams): Promise<Transition>;
  /**
   * Inserts a request under an idempotency key, atomically: if the tenant's key
   * is live and its request exists, nothing is inserted and that request is
   * returned (with whether the fingerprints match); concurrent callers with one
   * key get one request.
   */
  requestInsertIdempotent(params: RequestInsertIdempotentParams): Promise<IdempotentInsert>;
  /** Newest first, without inputs (see `RequestSummary`). */
  requestList(params: RequestListParams): Promise<RequestSummary[]>;
  /** Earliest `run_at` of a pending request later than `after` (epoch ms), or null when there is none. */
  requestNextRunAt(params: RequestNextRunAtParams): Promise<number | null>;
  /** Records progress on a running request; null when the claim is stale. */
  requestProgress(params: RequestProgressParams): Promise<Transition | null>;
  /**
   * `processing` → `pending`, giving the attempt back (it does not count): for
   * work this node claimed but will not run (graceful shutdown). Runs again at once.
   */
  requestRelease(params: RequestReleaseParams): Promise<Transition | null>;
  /**
   * Deletes finished requests (with their events and deliveries) older than `before`, leaving tombstones; a request
   * with a delivery still pending or being sent stays until it ends. Returns how many.
   */
  requestPurgeFinished(params: RequestPurgeFinishedParams): Promise<number>;
  /** `processing` → `pending` for another attempt at `runAt`. */
  requestRetry(params: RequestRetryParams): Promise<Transition | null>;
  /** Per-operation counts, series and duration percentiles over a window, computed by the database (see the params). */
  requestStatsByOperation(params: RequestStatsParams): Promise<RequestStats>;

  /** Deletes idempotency keys past their expiry; returns how many. */
  idempotencyPurgeExpired(params: ExpiredPurgeParams): Promise<number>;

  operationStatsGet(params: OperationStatsGetParams): Promise<OperationStats | null>;
  /** Adds one completed run's duration to the operation's decayed histogram. */
  operationStatsRecord(params: OperationStatsRecordParams): Promise<OperationStats>;

  tombstoneGet(params: TombstoneGetParams): Promise<Tombstone | null>;
  /** Deletes tombstones past their expiry; returns how many. */
  tombstonePurgeExpired(params: ExpiredPurgeParams): Promise<number>;

  /** Applies pending migrations (idempotent). */
  migrate(): Promise<void>;
  /** Releases the database. Idempotent. */
  close(): Promise<void>;
}
