/**
 * The embedded SQLite backend (better-sqlite3, WAL). One process per database
 * file (`capabilities.exclusiveAccess`, enforced with an exclusive file lock):
 * at start-up every lease not held by this process is dead. better-sqlite3 is synchronous, so each method runs its
 * statements in one transaction that has committed — and, with
 * `synchronous = FULL`, reached the disk — before the returned promise resolves.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  emptyHistogram,
  ErrandError,
  histogramAdd,
  type Batch,
  type Delivery,
  type DeliveryWithAttempts,
  type DurationHistogram,
  type Request,
  type RequestEvent,
} from '../../model/index.js';
import type * as D from '../deliveryParams.js';
import type * as S from '../store.js';
import * as outbox from './deliveries.js';
import { MIGRATIONS } from './migrations/index.js';
import { GroupCommit } from './groupCommit.js';
import { MemoryBuckets } from './rateLimits.js';
import { assembleRequestStats, statsBucketMs, type RequestOpenRow, type RequestStatsRow } from '../requestStats.js';
import {
  batchFromRow,
  eventFromRow,
  insertedRow,
  requestFromRow,
  RESULT_NO_LIMIT,
  rowFromNewRequest,
  stateFromRow,
  summaryFromRow,
  type BatchRow,
  type EventRow,
  type NewRequestRow,
  type RequestRow,
  type StateRow,
  type SummaryRow,
} from '../rows.js';
import { rescueOutcome, statusEventData, type StatusChange } from '../rules.js';
import * as sql from './statements.js';

export interface SqliteStoreOptions {
  /** File path, or `:memory:`. */
  path: string;
  /** `full` (default) fsyncs every commit; `normal` survives process crashes but not power loss. */
  synchronous?: 'full' | 'normal';
}

/** SQLite result codes that mean "the store is unavailable, try again" (see docs/errors.md). */
const UNAVAILABLE_CODES = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_IOERR', 'SQLITE_FULL', 'SQLITE_CANTOPEN', 'SQLITE_READONLY']);

type Statements = { -readonly [K in keyof typeof sql]: Database.Statement };

export class SqliteStore implements S.Store {
  readonly capabilities: S.StoreCapabilities = { kind: 'sqlite', exclusiveAccess: true, timePrecisionMs: 1 };
  private readonly db: Database.Database;
  private stmts: Statements | undefined;
  private readonly commits: GroupCommit;
  private closed = false;
  private readonly buckets = new MemoryBuckets();

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.db = translate(() => new Database(options.path));
    try {
      // Exclusive locking enforces one process per file: a second process gets
      // SQLITE_BUSY at once instead of silently sharing (and stealing leases).
      this.db.pragma('locking_mode = EXCLUSIVE');
      this.db.pragma('busy_timeout = 0');
      this.db.pragma('journal_mode = WAL');
      this.db.exec('BEGIN EXCLUSIVE; COMMIT;');
    } catch (cause) {
      this.db.close();
      if ((cause as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
        throw new ErrandError(
          'store_unavailable',
          `The SQLite database ${options.path} is in use by another process; an embedded store serves one Errand process (use PostgreSQL for several nodes).`,
          { cause },
        );
      }
      translate(() => {
        throw cause;
      });
    }
    this.db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    this.db.pragma('foreign_keys = ON');
    // Each group-commit write runs in a savepoint, and SQLite copies every page a savepoint changes to a
    // sub-journal first (to undo that one write). In a temp file that copy cost ~70 µs per write (more than the
    // write itself); in memory ~10 µs. The sub-journal never serves crash recovery (the WAL does), so this
    // changes nothing about durability; it also keeps sorters and temp b-trees of reads in memory (bounded reads).
    this.db.pragma('temp_store = MEMORY');
    this.commits = new GroupCommit(this.db, translateError);
  }

  async migrate(): Promise<void> {
    translate(() => {
      this.db.exec(
        `CREATE TABLE IF NOT EXISTS errand_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`,
      );
      const applied = new Set(
        (this.db.prepare('SELECT version FROM errand_migrations').all() as { version: number }[]).map((r) => r.version),
      );
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        this.db
          .transaction(() => {
            this.db
              .prepare('INSERT INTO errand_migrations (version, name, applied_at) VALUES (?, ?, ?)')
              .run(migration.version, migration.name, Date.now());
            this.db.exec(migration.sql);
          })
          .immediate();
      }
    });
    const stmts: Partial<Statements> = {};
    for (const [name, text] of Object.entries(sql)) stmts[name as keyof Statements] = this.db.prepare(text);
    this.stmts = stmts as Statements;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.commits.flush();
    this.closed = true;
    this.db.close();
  }

  async deliveryClaim(p: D.DeliveryClaimParams): Promise<Delivery[]> {
    if (p.limit <= 0) return [];
    return this.write(() => outbox.claimDeliveries(this.s, p));
  }

  async deliveryComplete(p: D.DeliveryCompleteParams): Promise<Delivery | null> {
    return this.write(() => outbox.completeDelivery(this.s, p));
  }

  async deliveryFail(p: D.DeliveryFailParams): Promise<Delivery | null> {
    return this.write(() => outbox.failDelivery(this.s, p));
  }

  async deliveryListForRequest(p: D.DeliveryListForRequestParams): Promise<DeliveryWithAttempts[]> {
    return translate(() => outbox.listDeliveries(this.s, p.requestId));
  }

  async deliveryNextDueAt(): Promise<number | null> {
    return translate(() => outbox.nextDueAt(this.s));
  }

  async deliveryRedeliver(p: D.DeliveryRedeliverParams): Promise<D.RedeliverOutcome> {
    return this.write(() => outbox.redeliver(this.s, p));
  }

  async deliveryRelease(p: D.DeliveryReleaseParams): Promise<boolean> {
    return this.write(() => outbox.releaseDelivery(this.s, p));
  }

  async deliveryRescueExpired(p: D.DeliveryRescueExpiredParams): Promise<number> {
    return this.write(() => outbox.rescueDeliveries(this.s, p));
  }

  async eventAppend(p: S.EventAppendParams): Promise<RequestEvent | null> {
    return this.write(() => {
      if (this.s.REQUEST_NEXT_SEQ_IF_CLAIMED.run({ id: p.id, attempt: p.attempt, owner: p.owner }).changes !== 1) return null;
      const { last_seq } = this.s.REQUEST_LAST_SEQ.get({ id: p.id }) as { last_seq: number };
      return this.insertEvent(p.id, last_seq, p.type, p.data, p.now);
    });
  }

  async eventListAfter(p: S.EventListAfterParams): Promise<RequestEvent[]> {
    return translate(() => (this.s.EVENT_LIST_AFTER.all({ id: p.id, after: p.afterSeq, limit: p.limit }) as EventRow[]).map(eventFromRow));
  }

  async leaseExtend(p: S.LeaseExtendParams): Promise<boolean> {
    return this.write(
      () =>
        this.s.LEASE_EXTEND.run({ id: p.id, attempt: p.attempt, owner: p.owner, now: p.now, lease_expires_at: p.now + p.leaseMs })
          .changes === 1,
    );
  }

  async leaseRescueExpired(p: S.LeaseRescueExpiredParams): Promise<S.Transition[]> {
    return this.write(() => {
      const ids = this.s.LEASE_EXPIRED_LIST.all({ now: p.now, all_except: p.allExcept ?? null, limit: p.limit }) as { id: string }[];
      const out: S.Transition[] = [];
      for (const { id } of ids) {
        const current = this.getRow(id);
        if (!current || current.status !== 'processing') continue;
        const outcome = rescueOutcome(current, p.now, p.retry);
        const params = { id, attempt: current.attempt, error: JSON.stringify(outcome.error), now: p.now };
        const row =
          outcome.kind === 'failed'
            ? this.updated(this.s.LEASE_RESCUE_FAIL, params)
            : this.updated(this.s.LEASE_RESCUE_RETRY, { ...params, run_at: outcome.runAt });
        if (row) out.push(this.statusTransition(row, p.now, { kind: outcome.kind, error: outcome.error }));
      }
      return out;
    });
  }

  async rateLimitTake(p: S.RateLimitTakeParams): Promise<S.RateLimitTake> {
    if (this.closed) throw new ErrandError('store_unavailable', 'The store is closed.');
    return this.buckets.take(p);
  }

  async requestCancel(p: S.RequestCancelParams): Promise<S.CancelOutcome> {
    return this.write((): S.CancelOutcome => {
      const current = this.getRow(p.id);
      if (!current || (p.tenant != null && current.tenant !== p.tenant)) return { outcome: 'not_found' };
      const row = this.updated(this.s.REQUEST_CANCEL, { id: p.id, now: p.now });
      if (!row) return { outcome: 'already_finished', request: requestFromRow(current) };
      return {
        outcome: 'cancelled',
        transition: this.statusTransition(row, p.now, { kind: 'cancelled' }),
        wasProcessing: current.status === 'processing',
      };
    });
  }

  async requestClaim(p: S.RequestClaimParams): Promise<S.Transition[]> {
    if (p.limit <= 0) return [];
    const excluded = JSON.stringify(
      Object.entries(p.operationLimits ?? {})
        .filter(([, n]) => n <= 0)
        .map(([op]) => op),
    );
    // Most wake-ups find nothing: answer those with a read, without a write transaction.
    if (translate(() => this.s.REQUEST_CLAIM_CANDIDATES.get({ now: p.now, excluded, scan: 1 })) === undefined) return [];
    return this.write(() => {
      const limits = { ...(p.operationLimits ?? {}) };
      const candidates = this.s.REQUEST_CLAIM_CANDIDATES.all({ now: p.now, excluded, scan: p.limit * 4 }) as {
        id: string;
        operation: string;
        batch_id: string | null;
      }[];
      const batchFree = new Map<string, number>();
      const claimed: S.Transition[] = [];
      for (const candidate of candidates) {
        if (claimed.length >= p.limit) break;
        const left = limits[candidate.operation];
        if (left !== undefined && left <= 0) continue;
        if (candidate.batch_id !== null) {
          const free =
            batchFree.get(candidate.batch_id) ??
            (this.s.BATCH_FREE_SLOTS.get({ batch_id: candidate.batch_id }) as { free: number } | undefined)?.free ??
            0;
          batchFree.set(candidate.batch_id, free - 1);
          if (free <= 0) continue;
        }
        if (left !== undefined) limits[candidate.operation] = left - 1;
        const row = this.updated(this.s.REQUEST_CLAIM_ONE, {
          id: candidate.id,
          owner: p.owner,
          now: p.now,
          lease_expires_at: p.now + p.leaseMs,
        });
        if (!row) continue;
        claimed.push(this.statusTransition(row, p.now, { kind: 'claimed' }));
      }
      return claimed;
    });
  }

  async requestComplete(p: S.RequestCompleteParams): Promise<S.Transition | null> {
    const result = JSON.stringify(p.result === undefined ? null : p.result);
    return this.guarded('REQUEST_COMPLETE', { ...claim(p), result }, p.now, { kind: 'completed' });
  }

  async requestCounts(p: S.RequestCountsParams = {}): Promise<S.RequestCounts> {
    return translate(() => this.s.REQUEST_COUNTS.get({ operation: p.operation ?? null }) as S.RequestCounts);
  }

  async requestFail(p: S.RequestFailParams): Promise<S.Transition | null> {
    return this.guarded('REQUEST_FAIL', { ...claim(p), error: JSON.stringify(p.error) }, p.now, { kind: 'failed', error: p.error });
  }

  async requestGetByRetryOf(p: S.RequestGetByRetryOfParams): Promise<Request | null> {
    const row = translate(() => this.s.REQUEST_GET_BY_RETRY_OF.get({ id: p.id })) as RequestRow | undefined;
    return row ? requestFromRow(row) : null;
  }

  async requestGetById(p: S.RequestGetByIdParams): Promise<Request | null> {
    const row = translate(() => this.getRow(p.id));
    if (!row || (p.tenant != null && row.tenant !== p.tenant)) return null;
    return requestFromRow(row);
  }

  // Inputs are serialised before queueing, so a value JSON cannot encode fails its own call, outside the batch.
  async requestInsert(p: S.RequestInsertParams): Promise<S.Transition> {
    const row = rowFromNewRequest(p.request);
    return this.write(() => this.inserted(row));
  }

  async requestInsertIdempotent(p: S.RequestInsertIdempotentParams): Promise<S.IdempotentInsert> {
    const row = rowFromNewRequest(p.request);
    const { key } = p;
    const now = p.request.created_at;
    return this.write((): S.IdempotentInsert => {
      const existing = this.s.IDEMPOTENCY_GET.get({ tenant: key.tenant, key: key.key }) as IdempotencyRow | undefined;
      if (existing && existing.expires_at > now) {
        const original = this.getRow(existing.request_id);
        // A key whose request was purged by retention is spent: reuse it.
        if (original)
          return { outcome: 'existing', request: requestFromRow(original), sameFingerprint: existing.fingerprint === key.fingerprint };
      }
      const transition = this.inserted(row);
      this.s.IDEMPOTENCY_PUT.run({
        tenant: key.tenant,
        key: key.key,
        fingerprint: key.fingerprint,
        request_id: transition.request.id,
        created_at: now,
        expires_at: key.expiresAt,
      });
      return { outcome: 'created', transition };
    });
  }

  async requestGetSummary(p: S.RequestGetByIdParams): Promise<S.RequestSummary | null> {
    const row = translate(() => this.s.REQUEST_GET_SUMMARY.get({ id: p.id, result_max: RESULT_NO_LIMIT })) as SummaryRow | undefined;
    if (!row || (p.tenant != null && row.tenant !== p.tenant)) return null;
    return summaryFromRow(row);
  }

  async requestGetState(p: S.RequestGetByIdParams): Promise<S.RequestState | null> {
    const row = translate(() => this.s.REQUEST_GET_STATE.get({ id: p.id })) as StateRow | undefined;
    if (!row || (p.tenant != null && row.tenant !== p.tenant)) return null;
    return stateFromRow(row);
  }

  async requestList(p: S.RequestListParams): Promise<S.RequestSummary[]> {
    return translate(() =>
      (
        this.s.REQUEST_LIST.all({
          tenant: p.tenant ?? null,
          statuses: p.statuses && p.statuses.length > 0 ? JSON.stringify(p.statuses) : null,
          operation: p.operation ?? null,
          before: p.beforeId ?? null,
          limit: p.limit,
          result_max: p.resultMaxBytes ?? RESULT_NO_LIMIT,
        }) as SummaryRow[]
      ).map(summaryFromRow),
    );
  }

  async requestStatsByOperation(p: S.RequestStatsParams): Promise<S.RequestStats> {
    const byTenant = p.tenant != null;
    // Named parameters a statement does not use are ignored, so one object serves all three.
    const values = { tenant: p.tenant ?? null, from: p.from, bucket_ms: statsBucketMs(p), buckets: p.buckets, scan_max: p.scanMax };
    return translate(() => {
      const rows = (byTenant ? this.s.STATS_WINDOW_TENANT : this.s.STATS_WINDOW).all(values) as RequestStatsRow[];
      const open = (byTenant ? this.s.STATS_OPEN_TENANT : this.s.STATS_OPEN).all(values) as RequestOpenRow[];
      const windowRows = rows.reduce((n, r) => (r.kind === 'status' ? n + r.n : n), 0);
      const count = byTenant ? this.s.STATS_WINDOW_COUNT_TENANT : this.s.STATS_WINDOW_COUNT;
      const total = windowRows < p.scanMax ? undefined : (count.get(values) as { n: number }).n;
      return assembleRequestStats(p, rows, open, total);
    });
  }

  async requestNextRunAt(p: S.RequestNextRunAtParams): Promise<number | null> {
    return translate(() => (this.s.REQUEST_NEXT_RUN_AT.get({ after: p.after }) as { run_at: number | null }).run_at);
  }

  async requestProgress(p: S.RequestProgressParams): Promise<S.Transition | null> {
    return this.write(() => {
      const row = this.updated(this.s.REQUEST_PROGRESS, { ...claim(p), progress: JSON.stringify(p.progress) });
      if (!row) return null;
      const event = this.insertEvent(row.id, row.last_seq, 'progress', p.progress, p.now);
      return { kind: 'progress', request: requestFromRow(row), event };
    });
  }

  async requestPurgeFinished(p: S.RequestPurgeFinishedParams): Promise<number> {
    return this.write(() => {
      const rows = this.s.REQUEST_FINISHED_BEFORE.all({ before: p.before, limit: p.limit }) as Omit<
        S.Tombstone,
        'purged_at' | 'expires_at'
      >[];
      for (const r of rows) {
        this.s.TOMBSTONE_PUT.run({ ...r, purged_at: p.now, expires_at: p.tombstoneUntil });
        this.s.EVENT_DELETE_FOR_REQUEST.run({ id: r.id });
        outbox.deleteDeliveriesFor(this.s, r.id);
        this.s.REQUEST_DELETE.run({ id: r.id });
      }
      return rows.length;
    });
  }

  async requestRelease(p: S.RequestReleaseParams): Promise<S.Transition | null> {
    return this.guarded('REQUEST_RELEASE', claim(p), p.now, { kind: 'released' });
  }

  async requestRetry(p: S.RequestRetryParams): Promise<S.Transition | null> {
    return this.guarded('REQUEST_RETRY', { ...claim(p), error: JSON.stringify(p.error), run_at: p.runAt }, p.now, {
      kind: 'retried',
      error: p.error,
      runAt: p.runAt,
    });
  }

  async idempotencyPurgeExpired(p: S.ExpiredPurgeParams): Promise<number> {
    return this.write(() => this.s.IDEMPOTENCY_PURGE.run({ now: p.now, limit: p.limit }).changes);
  }

  async operationStatsGet(p: S.OperationStatsGetParams): Promise<S.OperationStats | null> {
    const row = translate(() => this.s.OPERATION_STATS_GET.get({ operation: p.operation })) as StatsRow | undefined;
    return row ? { operation: row.operation, histogram: JSON.parse(row.histogram) as DurationHistogram, updated_at: row.updated_at } : null;
  }

  async operationStatsRecord(p: S.OperationStatsRecordParams): Promise<S.OperationStats> {
    return this.write(() => {
      const row = this.s.OPERATION_STATS_GET.get({ operation: p.operation }) as StatsRow | undefined;
      const before = row ? (JSON.parse(row.histogram) as DurationHistogram) : emptyHistogram();
      const histogram = p.durationsMs.reduce((h, ms) => histogramAdd(h, ms, p.decay), before);
      this.s.OPERATION_STATS_PUT.run({ operation: p.operation, histogram: JSON.stringify(histogram), updated_at: p.now });
      return { operation: p.operation, histogram, updated_at: p.now };
    });
  }

  async tombstoneGet(p: S.TombstoneGetParams): Promise<S.Tombstone | null> {
    const row = translate(() => this.s.TOMBSTONE_GET.get({ id: p.id })) as S.Tombstone | undefined;
    if (!row || (p.tenant != null && row.tenant !== p.tenant)) return null;
    return row;
  }

  async tombstonePurgeExpired(p: S.ExpiredPurgeParams): Promise<number> {
    return this.write(() => this.s.TOMBSTONE_PURGE.run({ now: p.now, limit: p.limit }).changes);
  }

  async batchInsert(p: S.BatchInsertParams): Promise<{ batch: Batch; transitions: S.Transition[] }> {
    const rows = p.requests.map(rowFromNewRequest);
    const b = p.batch;
    return this.write(() => {
      this.s.BATCH_INSERT.run({ ...b, metadata: b.metadata === null ? null : JSON.stringify(b.metadata) });
      const transitions = rows.map((row) => this.inserted(row));
      return { batch: b, transitions };
    });
  }

  async batchGetById(p: S.BatchGetByIdParams): Promise<{ batch: Batch; items: S.RequestSummary[] } | null> {
    return translate(() => {
      const row = this.s.BATCH_GET.get({ id: p.id }) as BatchRow | undefined;
      if (!row || (p.tenant != null && row.tenant !== p.tenant)) return null;
      const items = (this.s.BATCH_ITEMS.all({ id: p.id, result_max: p.resultMaxBytes ?? RESULT_NO_LIMIT }) as SummaryRow[]).map(
        summaryFromRow,
      );
      return { batch: batchFromRow(row), items };
    });
  }

  async batchPurgeEmpty(p: S.BatchPurgeEmptyParams): Promise<number> {
    return this.write(() => {
      const ids = this.s.BATCH_PURGEABLE.all({ before: p.before }) as { id: string }[];
      for (const { id } of ids) {
        // Batch-level deliveries (`batch.completed`) are filed under the batch id: they go with the batch.
        outbox.deleteDeliveriesFor(this.s, id);
        this.s.BATCH_DELETE.run({ id });
      }
      return ids.length;
    });
  }

  // --- internals -------------------------------------------------------------

  private get s(): Statements {
    if (!this.stmts) throw new Error('SqliteStore: call migrate() before using the store');
    return this.stmts;
  }

  /** Queues `fn` for the next group commit (see groupCommit.ts); resolves after the commit. */
  private write<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new ErrandError('store_unavailable', 'The store is closed.'));
    return this.commits.write(fn);
  }

  private getRow(id: string): RequestRow | undefined {
    return this.s.REQUEST_GET.get({ id }) as RequestRow | undefined;
  }

  /** Runs a guarded update and appends its status event; null when 0 rows changed. */
  private guarded(
    name: keyof Statements,
    params: { id: string } & Record<string, unknown>,
    now: number,
    change: StatusChange,
  ): Promise<S.Transition | null> {
    return this.write(() => {
      const row = this.updated(this.s[name], params);
      return row ? this.statusTransition(row, now, change) : null;
    });
  }

  /** Runs a request update (no RETURNING: see statements.ts) and reads the row it left; undefined when 0 rows changed. */
  private updated(statement: Database.Statement, params: { id: string } & Record<string, unknown>): RequestRow | undefined {
    return statement.run(params).changes === 1 ? this.getRow(params.id) : undefined;
  }

  /** Inserts a new request and appends its `created` status event. */
  private inserted(row: NewRequestRow): S.Transition {
    this.s.REQUEST_INSERT.run(row);
    return this.statusTransition(insertedRow(row), row.created_at, CREATED);
  }

  /** The status event of a row a statement just changed (its `last_seq` already bumped), plus its outbox rows (rules.ts). */
  private statusTransition(row: RequestRow, now: number, change: StatusChange): S.Transition {
    const request = requestFromRow(row);
    const event = this.insertEvent(row.id, row.last_seq, 'status', statusEventData(request, change), now);
    // The outbox: a terminal request's webhook delivery commits with its transition, so a crash cannot lose it.
    outbox.insertOutboxRows(this.s, request, now);
    return { kind: change.kind, request, event };
  }

  private insertEvent(requestId: string, seq: number, type: RequestEvent['type'], data: unknown, now: number): RequestEvent {
    const json = JSON.stringify(data === undefined ? null : data);
    this.s.EVENT_INSERT.run({ request_id: requestId, seq, type, data: json, created_at: now });
    return { request_id: requestId, seq, type, data: JSON.parse(json), created_at: now };
  }
}

const CREATED: StatusChange = { kind: 'created' };

interface IdempotencyRow {
  tenant: string;
  key: string;
  fingerprint: string;
  request_id: string;
  expires_at: number;
}

interface StatsRow {
  operation: string;
  histogram: string;
  updated_at: number;
}

function claim(p: { id: string; attempt: number; owner: string; now: number }) {
  return { id: p.id, attempt: p.attempt, owner: p.owner, now: p.now };
}

/** Runs `fn`, turning SQLite's "unavailable" errors into the catalog's `store_unavailable`. */
function translate<T>(fn: () => T): T {
  try {
    return fn();
  } catch (cause) {
    throw translateError(cause);
  }
}

function translateError(cause: unknown): unknown {
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && [...UNAVAILABLE_CODES].some((c) => code === c || code.startsWith(`${c}_`))) {
    return new ErrandError('store_unavailable', `The SQLite store is unavailable (${code}); retry shortly.`, {
      cause,
      retryAfterSeconds: 1,
    });
  }
  return cause;
}
