/**
 * The PostgreSQL backend: many Errand nodes share one database. Each method
 * is one transaction on a pooled connection (node-postgres), resolved only
 * after COMMIT; the work itself lives in one module per concern (requests,
 * claim, leases, deliveries, batches, retention, migrate). See README.md in
 * this folder for the NOTIFY contract and the locking choices.
 *
 * Time is the caller's `now`, as in SQLite; `dbNow()` reads the database clock
 * so nodes with skewed clocks can agree on lease expiry (engine DatabaseClock).
 * `listen()` delivers other nodes' commits (LISTEN/NOTIFY, notifications.ts);
 * `nodeRegister()` keeps the session that proves this node alive (nodes.ts).
 */
import type pg from 'pg';
import type { Batch, Delivery, DeliveryWithAttempts, Request, RequestEvent } from '../../model/index.js';
import type * as D from '../deliveryParams.js';
import type * as S from '../store.js';
import type { Listen } from '../notifications.js';
import type { NodeRegister } from '../nodes.js';
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
import { GroupCommit, type WriteMany } from './groupCommit.js';
import * as leases from './leases.js';
import { migrate, type MigrationReport } from './migrate.js';
import { registerNode } from './nodes.js';
import { listenForNotifications } from './notifications.js';
import { rateLimitTake } from './rateLimits.js';
import * as requests from './requests.js';
import * as retention from './retention.js';

export class PostgresStore implements S.Store {
  readonly capabilities: S.StoreCapabilities = { kind: 'postgres', exclusiveAccess: false, timePrecisionMs: 1 };
  /** The connection settings (schema, server options), for a LISTEN connection beside the pool. */
  readonly settings: ConnectionSettings;
  private readonly pool: pg.Pool;
  private readonly groupCommit: GroupCommit;
  private readonly nodeId: string;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: PostgresStoreOptions) {
    this.settings = connectionSettings(options.url, options.schema);
    this.pool = createPool(options, this.settings);
    this.groupCommit = new GroupCommit(this.pool);
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

  /** This node's proof of life (nodes.ts), on a dedicated connection named `<node id>:node`. */
  readonly nodeRegister: NodeRegister = (params) =>
    registerNode({ settings: this.settings, applicationName: applicationName(`${this.nodeId}:node`) }, params);

  async migrate(): Promise<void> {
    await this.applyMigrations();
  }

  /** Applies pending migrations and says which (for `errand migrate`). */
  applyMigrations(): Promise<MigrationReport> {
    return this.call((db) => migrate(db, this.settings.schema));
  }

  close(): Promise<void> {
    this.closed = true;
    // Writes queued before close() are committed (their callers wait for the outcome), then the pool ends.
    this.closing ??= this.groupCommit.settled().then(() => this.pool.end());
    return this.closing;
  }

  batchInsert = (p: S.BatchInsertParams): Promise<{ batch: Batch; transitions: S.Transition[] }> =>
    this.call((db) => batches.batchInsert(db, p));
  batchGetById = (p: S.BatchGetByIdParams): Promise<{ batch: Batch; items: S.RequestSummary[] } | null> =>
    this.call((db) => batches.batchGetById(db, p));
  batchPurgeEmpty = (p: S.BatchPurgeEmptyParams): Promise<number> => this.call((db) => batches.batchPurgeEmpty(db, p));

  deliveryClaim = (p: D.DeliveryClaimParams): Promise<Delivery[]> => this.call((db) => outbox.claimDeliveries(db, p));
  deliveryComplete = (p: D.DeliveryCompleteParams): Promise<Delivery | null> => this.call((db) => outbox.completeDelivery(db, p));
  deliveryFail = (p: D.DeliveryFailParams): Promise<Delivery | null> => this.call((db) => outbox.failDelivery(db, p));
  deliveryListForRequest = (p: D.DeliveryListForRequestParams): Promise<DeliveryWithAttempts[]> =>
    this.call((db) => outbox.listDeliveries(db, p.requestId));
  deliveryNextDueAt = (): Promise<number | null> => this.call((db) => outbox.nextDueAt(db));
  deliveryRedeliver = (p: D.DeliveryRedeliverParams): Promise<D.RedeliverOutcome> => this.call((db) => outbox.redeliver(db, p));
  deliveryRelease = (p: D.DeliveryReleaseParams): Promise<boolean> => this.call((db) => outbox.releaseDelivery(db, p));
  deliveryRescueExpired = (p: D.DeliveryRescueExpiredParams): Promise<number> => this.call((db) => outbox.rescueDeliveries(db, p));

  eventAppend = (p: S.EventAppendParams): Promise<RequestEvent | null> => this.call((db) => leases.eventAppend(db, p));
  eventListAfter = (p: S.EventListAfterParams): Promise<RequestEvent[]> => this.call((db) => leases.eventListAfter(db, p));
  leaseExtend = (p: S.LeaseExtendParams): Promise<boolean> => this.group(leases.leaseExtendMany, p.id, p);
  leaseRescueExpired = (p: S.LeaseRescueExpiredParams): Promise<S.Transition[]> => this.call((db) => leases.leaseRescueExpired(db, p));

  rateLimitTake = (p: S.RateLimitTakeParams): Promise<S.RateLimitTake> => this.call((db) => rateLimitTake(db, p));

  requestCancel = (p: S.RequestCancelParams): Promise<S.CancelOutcome> => this.call((db) => requests.requestCancel(db, p));
  requestClaim = (p: S.RequestClaimParams): Promise<S.Transition[]> => this.call((db) => requestClaim(db, p));
  requestComplete = (p: S.RequestCompleteParams): Promise<S.Transition | null> => this.group(requests.completeMany, p.id, p);
  requestCounts = (p?: S.RequestCountsParams): Promise<S.RequestCounts> => this.call((db) => requests.requestCounts(db, p));
  requestFail = (p: S.RequestFailParams): Promise<S.Transition | null> => this.group(requests.failMany, p.id, p);
  requestGetById = (p: S.RequestGetByIdParams): Promise<Request | null> => this.call((db) => requests.requestGetById(db, p));
  requestGetByRetryOf = (p: S.RequestGetByRetryOfParams): Promise<Request | null> => this.call((db) => requests.requestGetByRetryOf(db, p));
  requestInsert = (p: S.RequestInsertParams): Promise<S.Transition> => this.group(requests.insertMany, p.request.id, p);
  requestInsertIdempotent = (p: S.RequestInsertIdempotentParams): Promise<S.IdempotentInsert> =>
    this.call((db) => requests.requestInsertIdempotent(db, p));
  requestGetSummary = (p: S.RequestGetByIdParams): Promise<S.RequestSummary | null> => this.call((db) => requests.requestGetSummary(db, p));
  requestGetState = (p: S.RequestGetByIdParams): Promise<S.RequestState | null> => this.call((db) => requests.requestGetState(db, p));
  requestList = (p: S.RequestListParams): Promise<S.RequestSummary[]> => this.call((db) => requests.requestList(db, p));
  requestNextRunAt = (p: S.RequestNextRunAtParams): Promise<number | null> => this.call((db) => requests.requestNextRunAt(db, p));
  requestProgress = (p: S.RequestProgressParams): Promise<S.Transition | null> => this.call((db) => requests.requestProgress(db, p));
  requestRelease = (p: S.RequestReleaseParams): Promise<S.Transition | null> => this.group(requests.releaseMany, p.id, p);
  requestPurgeFinished = (p: S.RequestPurgeFinishedParams): Promise<number> => this.call((db) => retention.requestPurgeFinished(db, p));
  requestRetry = (p: S.RequestRetryParams): Promise<S.Transition | null> => this.group(requests.retryMany, p.id, p);
  requestStatsByOperation = (p: S.RequestStatsParams): Promise<S.RequestStats> =>
    this.call((db) => requests.requestStatsByOperation(db, p));

  idempotencyPurgeExpired = (p: S.ExpiredPurgeParams): Promise<number> => this.call((db) => retention.idempotencyPurgeExpired(db, p));
  operationStatsGet = (p: S.OperationStatsGetParams): Promise<S.OperationStats | null> =>
    this.call((db) => retention.operationStatsGet(db, p));
  operationStatsRecord = (p: S.OperationStatsRecordParams): Promise<S.OperationStats> =>
    this.call((db) => retention.operationStatsRecord(db, p));
  tombstoneGet = (p: S.TombstoneGetParams): Promise<S.Tombstone | null> => this.call((db) => retention.tombstoneGet(db, p));
  tombstonePurgeExpired = (p: S.ExpiredPurgeParams): Promise<number> => this.call((db) => retention.tombstonePurgeExpired(db, p));

  /** Queues a hot-path write for the next group commit (groupCommit.ts); rejects once closed, as call() does. */
  private group<P, R>(many: WriteMany<P, R>, key: string, params: P): Promise<R> {
    return this.closed ? Promise.reject(closedError()) : this.groupCommit.write(many, key, params);
  }

  /** Runs `fn` on the pool; once closed, rejects (as SQLite's store does) so a late call fails clearly instead of hanging. */
  private call<T>(fn: (db: pg.Pool) => Promise<T>): Promise<T> {
    return this.closed ? Promise.reject(closedError()) : fn(this.pool);
  }
}
