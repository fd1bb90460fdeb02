/**
 * The PostgreSQL backend: many Errand nodes share one database. Each method
 * is one transaction on a pooled connection (node-postgres), resolved only
 * after COMMIT; the work itself lives in one module per concern (requests,
 * claim, leases, deliveries, batches, retention, migrate). See README.md in
 * this folder for the NOTIFY contract and the locking choices.
 *
 * Time is the caller's `now`, as in SQLite; `dbNow()` reads the database clock
 * so nodes with skewed clocks can agree on lease expiry (engine DatabaseClock).
 * `listen()` delivers other nodes' commits (LISTEN/NOTIFY, notifications.ts).
 */
import type pg from 'pg';
import type { Batch, Delivery, DeliveryWithAttempts, Request, RequestEvent } from '../../model/index.js';
import type {
  DeliveryClaimParams,
  DeliveryCompleteParams,
  DeliveryFailParams,
  DeliveryListForRequestParams,
  DeliveryRedeliverParams,
  DeliveryReleaseParams,
  DeliveryRescueExpiredParams,
  RedeliverOutcome,
} from '../deliveryParams.js';
import type {
  BatchGetByIdParams,
  BatchInsertParams,
  BatchPurgeEmptyParams,
  CancelOutcome,
  EventAppendParams,
  EventListAfterParams,
  ExpiredPurgeParams,
  IdempotentInsert,
  LeaseExtendParams,
  LeaseRescueExpiredParams,
  OperationStats,
  OperationStatsGetParams,
  OperationStatsRecordParams,
  RateLimitTake,
  RateLimitTakeParams,
  RequestCancelParams,
  RequestClaimParams,
  RequestCompleteParams,
  RequestCounts,
  RequestCountsParams,
  RequestFailParams,
  RequestGetByIdParams,
  RequestGetByRetryOfParams,
  RequestInsertIdempotentParams,
  RequestInsertParams,
  RequestListParams,
  RequestNextRunAtParams,
  RequestProgressParams,
  RequestPurgeFinishedParams,
  RequestReleaseParams,
  RequestRetryParams,
  RequestStats,
  RequestStatsParams,
  RequestSummary,
  Store,
  StoreCapabilities,
  Tombstone,
  TombstoneGetParams,
  Transition,
} from '../store.js';
import type { Listen } from '../notifications.js';
import * as batches from './batches.js';
import { requestClaim } from './claim.js';
import {
  applicationName,
  closedError,
  connectionSettings,
  createPool,
  query,
  type ConnectionSettings,
  type PostgresStoreOptions,
} from './connection.js';
import * as outbox from './deliveries.js';
import * as leases from './leases.js';
import { migrate, type MigrationReport } from './migrate.js';
import { listenForNotifications } from './notifications.js';
import { rateLimitTake } from './rateLimits.js';
import * as requests from './requests.js';
import * as retention from './retention.js';

export class PostgresStore implements Store {
  readonly capabilities: StoreCapabilities = { kind: 'postgres', exclusiveAccess: false, timePrecisionMs: 1 };
  /** The connection settings (schema, server options), for a LISTEN connection beside the pool. */
  readonly settings: ConnectionSettings;
  private readonly pool: pg.Pool;
  private readonly nodeId: string;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: PostgresStoreOptions) {
    this.settings = connectionSettings(options.url, options.schema);
    this.pool = createPool(options, this.settings);
    this.nodeId = options.nodeId ?? 'errand';
  }

  /** The database's clock (epoch ms): one time source for every node's leases. */
  readonly dbNow = async (): Promise<number> => {
    const { rows } = await this.call((db) =>
      query<{ now: number }>(db, `SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now`),
    );
    return rows[0]!.now;
  };

  /** Other nodes' commits of this schema, on a dedicated connection named `<node id>:listen`. */
  readonly listen: Listen = (options) =>
    listenForNotifications({ settings: this.settings, applicationName: applicationName(`${this.nodeId}:listen`) }, options);

  async migrate(): Promise<void> {
    await this.applyMigrations();
  }

  /** Applies pending migrations and says which (for `errand migrate`). */
  applyMigrations(): Promise<MigrationReport> {
    return this.call((db) => migrate(db, this.settings.schema));
  }

  close(): Promise<void> {
    this.closed = true;
    this.closing ??= this.pool.end();
    return this.closing;
  }

  batchInsert = (p: BatchInsertParams): Promise<{ batch: Batch; transitions: Transition[] }> =>
    this.call((db) => batches.batchInsert(db, p));
  batchGetById = (p: BatchGetByIdParams): Promise<{ batch: Batch; items: RequestSummary[] } | null> =>
    this.call((db) => batches.batchGetById(db, p));
  batchPurgeEmpty = (p: BatchPurgeEmptyParams): Promise<number> => this.call((db) => batches.batchPurgeEmpty(db, p));

  deliveryClaim = (p: DeliveryClaimParams): Promise<Delivery[]> => this.call((db) => outbox.claimDeliveries(db, p));
  deliveryComplete = (p: DeliveryCompleteParams): Promise<Delivery | null> => this.call((db) => outbox.completeDelivery(db, p));
  deliveryFail = (p: DeliveryFailParams): Promise<Delivery | null> => this.call((db) => outbox.failDelivery(db, p));
  deliveryListForRequest = (p: DeliveryListForRequestParams): Promise<DeliveryWithAttempts[]> =>
    this.call((db) => outbox.listDeliveries(db, p.requestId));
  deliveryNextDueAt = (): Promise<number | null> => this.call((db) => outbox.nextDueAt(db));
  deliveryRedeliver = (p: DeliveryRedeliverParams): Promise<RedeliverOutcome> => this.call((db) => outbox.redeliver(db, p));
  deliveryRelease = (p: DeliveryReleaseParams): Promise<boolean> => this.call((db) => outbox.releaseDelivery(db, p));
  deliveryRescueExpired = (p: DeliveryRescueExpiredParams): Promise<number> => this.call((db) => outbox.rescueDeliveries(db, p));

  eventAppend = (p: EventAppendParams): Promise<RequestEvent | null> => this.call((db) => leases.eventAppend(db, p));
  eventListAfter = (p: EventListAfterParams): Promise<RequestEvent[]> => this.call((db) => leases.eventListAfter(db, p));
  leaseExtend = (p: LeaseExtendParams): Promise<boolean> => this.call((db) => leases.leaseExtend(db, p));
  leaseRescueExpired = (p: LeaseRescueExpiredParams): Promise<Transition[]> => this.call((db) => leases.leaseRescueExpired(db, p));

  rateLimitTake = (p: RateLimitTakeParams): Promise<RateLimitTake> => this.call((db) => rateLimitTake(db, p));

  requestCancel = (p: RequestCancelParams): Promise<CancelOutcome> => this.call((db) => requests.requestCancel(db, p));
  requestClaim = (p: RequestClaimParams): Promise<Transition[]> => this.call((db) => requestClaim(db, p));
  requestComplete = (p: RequestCompleteParams): Promise<Transition | null> => this.call((db) => requests.requestComplete(db, p));
  requestCounts = (p?: RequestCountsParams): Promise<RequestCounts> => this.call((db) => requests.requestCounts(db, p));
  requestFail = (p: RequestFailParams): Promise<Transition | null> => this.call((db) => requests.requestFail(db, p));
  requestGetById = (p: RequestGetByIdParams): Promise<Request | null> => this.call((db) => requests.requestGetById(db, p));
  requestGetByRetryOf = (p: RequestGetByRetryOfParams): Promise<Request | null> => this.call((db) => requests.requestGetByRetryOf(db, p));
  requestInsert = (p: RequestInsertParams): Promise<Transition> => this.call((db) => requests.requestInsert(db, p.request));
  requestInsertIdempotent = (p: RequestInsertIdempotentParams): Promise<IdempotentInsert> =>
    this.call((db) => requests.requestInsertIdempotent(db, p));
  requestGetSummary = (p: RequestGetByIdParams): Promise<RequestSummary | null> => this.call((db) => requests.requestGetSummary(db, p));
  requestList = (p: RequestListParams): Promise<RequestSummary[]> => this.call((db) => requests.requestList(db, p));
  requestNextRunAt = (p: RequestNextRunAtParams): Promise<number | null> => this.call((db) => requests.requestNextRunAt(db, p));
  requestProgress = (p: RequestProgressParams): Promise<Transition | null> => this.call((db) => requests.requestProgress(db, p));
  requestRelease = (p: RequestReleaseParams): Promise<Transition | null> => this.call((db) => requests.requestRelease(db, p));
  requestPurgeFinished = (p: RequestPurgeFinishedParams): Promise<number> => this.call((db) => retention.requestPurgeFinished(db, p));
  requestRetry = (p: RequestRetryParams): Promise<Transition | null> => this.call((db) => requests.requestRetry(db, p));
  requestStatsByOperation = (p: RequestStatsParams): Promise<RequestStats> => this.call((db) => requests.requestStatsByOperation(db, p));

  idempotencyPurgeExpired = (p: ExpiredPurgeParams): Promise<number> => this.call((db) => retention.idempotencyPurgeExpired(db, p));
  operationStatsGet = (p: OperationStatsGetParams): Promise<OperationStats | null> => this.call((db) => retention.operationStatsGet(db, p));
  operationStatsRecord = (p: OperationStatsRecordParams): Promise<OperationStats> =>
    this.call((db) => retention.operationStatsRecord(db, p));
  tombstoneGet = (p: TombstoneGetParams): Promise<Tombstone | null> => this.call((db) => retention.tombstoneGet(db, p));
  tombstonePurgeExpired = (p: ExpiredPurgeParams): Promise<number> => this.call((db) => retention.tombstonePurgeExpired(db, p));

  /** Runs `fn` on the pool; once closed, rejects (as SQLite's store does) so a late call fails clearly instead of hanging. */
  private call<T>(fn: (db: pg.Pool) => Promise<T>): Promise<T> {
    return this.closed ? Promise.reject(closedError()) : fn(this.pool);
  }
}
