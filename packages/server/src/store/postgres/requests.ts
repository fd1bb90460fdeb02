/**
 * Requests: insert (plain, idempotent, many), reads, and the guarded
 * transitions out of `processing`. Each write is one transaction; a guarded
 * UPDATE that matches 0 rows means the claim is stale (lease lost) or the
 * request already moved on, and returns null, as store.ts requires.
 */
import type pg from 'pg';
import type { Request } from '../../model/index.js';
import {
  assembleRequestStats,
  requestStatsStatements,
  statsBucketMs,
  type RequestOpenRow,
  type RequestStatsRow,
  type StatsParamName,
  type StatsStatements,
} from '../requestStats.js';
import {
  NEW_REQUEST_COLUMNS,
  requestFromRow,
  RESULT_NO_LIMIT,
  rowFromNewRequest,
  stateFromRow,
  STATE_COLUMNS,
  summaryColumns,
  summaryFromRow,
  type RequestRow,
  type StateRow,
  type SummaryRow,
} from '../rows.js';
import { statusEventData, type StatusChange } from '../rules.js';
import type * as S from '../store.js';
import { query, transaction, type Tx } from './connection.js';
import type { WriteMany } from './groupCommit.js';
import { insertEvents, statusTransition, statusTransitionsOf } from './transitions.js';

const COLUMNS = NEW_REQUEST_COLUMNS;
/** Rows per INSERT statement: keeps a 10,000-item batch under PostgreSQL's 65,535 bind parameters. */
const ROWS_PER_INSERT = 1000;
const CREATED: StatusChange = { kind: 'created' };

/** Inserts pending requests (last_seq = 1, their first status event) and their events, in the caller's transaction. */
export async function insertRequests(tx: Tx, requests: readonly S.NewRequest[]): Promise<S.Transition[]> {
  const out: S.Transition[] = [];
  for (let start = 0; start < requests.length; start += ROWS_PER_INSERT) {
    const chunk = requests.slice(start, start + ROWS_PER_INSERT);
    const values: unknown[] = [];
    const tuples = chunk.map((r) => {
      const row = rowFromNewRequest(r);
      const first = values.length;
      for (const c of COLUMNS) values.push(row[c]);
      return `(${COLUMNS.map((_, i) => `$${first + i + 1}`).join(', ')}, 'pending', 0, $${first + COLUMNS.indexOf('created_at') + 1}, 1)`;
    });
    const { rows } = await tx.query<RequestRow>(
      `INSERT INTO requests (${COLUMNS.join(', ')}, status, attempt, updated_at, last_seq) VALUES ${tuples.join(', ')} RETURNING *`,
      values,
    );
    const byId = new Map(rows.map((row) => [row.id, requestFromRow(row)]));
    const inserted = chunk.map((r) => byId.get(r.id)!);
    // A new request is never terminal (no outbox row); each first event carries its item's own created_at.
    const events = await insertEvents(
      tx,
      inserted.map((r) => ({ requestId: r.id, seq: 1, type: 'status' as const, data: statusEventData(r, CREATED), now: r.created_at })),
    );
    inserted.forEach((request, i) => out.push({ kind: 'created', request, event: events[i]! }));
  }
  return out;
}

/**
 * Atomic under concurrency without a table lock: the key row is claimed with
 * INSERT … ON CONFLICT, which waits for a concurrent inserter of the same key
 * to commit or roll back. The ON CONFLICT … WHERE only looks at the key row
 * itself (a subquery there would read an older snapshot); a live key whose
 * request retention purged is taken over under the row lock of FOR UPDATE.
 */
export async function requestInsertIdempotent(pool: pg.Pool, p: S.RequestInsertIdempotentParams): Promise<S.IdempotentInsert> {
  const { key, request } = p;
  const now = request.created_at;
  return transaction(pool, async (tx): Promise<S.IdempotentInsert> => {
    const params = [key.tenant, key.key, key.fingerprint, request.id, now, key.expiresAt];
    const claimed = await tx.query(
      `INSERT INTO idempotency_keys (tenant, key, fingerprint, request_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (tenant, key) DO UPDATE
         SET fingerprint = EXCLUDED.fingerprint, request_id = EXCLUDED.request_id, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
         WHERE idempotency_keys.expires_at <= $5
       RETURNING request_id`,
      params,
    );
    if (claimed.rowCount === 0) {
      const existing = (
        await tx.query<{ fingerprint: string; request_id: string }>(
          'SELECT fingerprint, request_id FROM idempotency_keys WHERE tenant = $1 AND key = $2 FOR UPDATE',
          [key.tenant, key.key],
        )
      ).rows[0]!;
      const original = (await tx.query<RequestRow>('SELECT * FROM requests WHERE id = $1', [existing.request_id])).rows[0];
      if (original)
        return { outcome: 'existing', request: requestFromRow(original), sameFingerprint: existing.fingerprint === key.fingerprint };
      // A key whose request was purged by retention is spent: reuse it.
      await tx.query(
        'UPDATE idempotency_keys SET fingerprint = $3, request_id = $4, created_at = $5, expires_at = $6 WHERE tenant = $1 AND key = $2',
        params,
      );
    }
    return { outcome: 'created', transition: (await insertRequests(tx, [request]))[0]! };
  });
}

export async function requestGetById(pool: pg.Pool, p: S.RequestGetByIdParams): Promise<Request | null> {
  const row = (await query<RequestRow>(pool, 'SELECT * FROM requests WHERE id = $1', [p.id])).rows[0];
  if (!row || (p.tenant != null && row.tenant !== p.tenant)) return null;
  return requestFromRow(row);
}

export async function requestGetByRetryOf(pool: pg.Pool, p: S.RequestGetByRetryOfParams): Promise<Request | null> {
  const row = (await query<RequestRow>(pool, 'SELECT * FROM requests WHERE retry_of = $1', [p.id])).rows[0];
  return row ? requestFromRow(row) : null;
}

export async function requestGetSummary(pool: pg.Pool, p: S.RequestGetByIdParams): Promise<S.RequestSummary | null> {
  const row = (await query<SummaryRow>(pool, `SELECT ${summaryColumns('$2::bigint')} FROM requests WHERE id = $1`, [p.id, RESULT_NO_LIMIT]))
    .rows[0];
  if (!row || (p.tenant != null && row.tenant !== p.tenant)) return null;
  return summaryFromRow(row);
}

/** The request's small changing columns (a conditional status read). */
export async function requestGetState(pool: pg.Pool, p: S.RequestGetByIdParams): Promise<S.RequestState | null> {
  const row = (await query<StateRow>(pool, `SELECT ${STATE_COLUMNS.join(', ')} FROM requests WHERE id = $1`, [p.id])).rows[0];
  if (!row || (p.tenant != null && row.tenant !== p.tenant)) return null;
  return stateFromRow(row);
}

/** Rows without inputs; results longer than `resultMaxBytes` left out. */
export async function requestList(pool: pg.Pool, p: S.RequestListParams): Promise<S.RequestSummary[]> {
  const { rows } = await query<SummaryRow>(
    pool,
    `SELECT ${summaryColumns('$6::bigint')} FROM requests
     WHERE ($1::text IS NULL OR tenant = $1)
       AND ($2::text[] IS NULL OR status = ANY($2))
       AND ($3::text IS NULL OR operation = $3)
       AND ($4::text IS NULL OR id < $4)
     ORDER BY id DESC
     LIMIT $5`,
    [
      p.tenant ?? null,
      p.statuses && p.statuses.length > 0 ? [...p.statuses] : null,
      p.operation ?? null,
      p.beforeId ?? null,
      p.limit,
      p.resultMaxBytes ?? RESULT_NO_LIMIT,
    ],
  );
  return rows.map(summaryFromRow);
}

const STATS_CASTS: Record<StatsParamName, string> = {
  tenant: 'text',
  from: 'bigint',
  bucket_ms: 'bigint',
  buckets: 'int',
  scan_max: 'int',
};
/** PostgreSQL wants every `$n` used, so each statement numbers just the parameters it names, in this order. */
const STATS_ORDER: Record<keyof StatsStatements, StatsParamName[]> = {
  window: ['from', 'bucket_ms', 'buckets', 'scan_max', 'tenant'],
  open: ['scan_max', 'tenant'],
  windowCount: ['from', 'scan_max', 'tenant'],
};
function statsStatement(which: keyof StatsStatements, byTenant: boolean): string {
  const order = STATS_ORDER[which];
  return requestStatsStatements((name) => `$${order.indexOf(name) + 1}::${STATS_CASTS[name]}`, byTenant)[which];
}
const STATS = {
  all: { window: statsStatement('window', false), open: statsStatement('open', false), windowCount: statsStatement('windowCount', false) },
  tenant: { window: statsStatement('window', true), open: statsStatement('open', true), windowCount: statsStatement('windowCount', true) },
};

/** See ../requestStats.ts. */
export async function requestStatsByOperation(pool: pg.Pool, p: S.RequestStatsParams): Promise<S.RequestStats> {
  const byTenant = p.tenant != null;
  const sql = byTenant ? STATS.tenant : STATS.all;
  const named: Record<StatsParamName, unknown> = {
    tenant: p.tenant,
    from: p.from,
    bucket_ms: statsBucketMs(p),
    buckets: p.buckets,
    scan_max: p.scanMax,
  };
  const values = (which: keyof StatsStatements) =>
    STATS_ORDER[which].filter((name) => byTenant || name !== 'tenant').map((name) => named[name]);
  const [{ rows }, open] = await Promise.all([
    query<RequestStatsRow>(pool, sql.window, values('window')),
    query<RequestOpenRow>(pool, sql.open, values('open')),
  ]);
  const windowRows = rows.reduce((n, r) => (r.kind === 'status' ? n + r.n : n), 0);
  const total = windowRows < p.scanMax ? undefined : (await query<{ n: number }>(pool, sql.windowCount, values('windowCount'))).rows[0]?.n;
  return assembleRequestStats(p, rows, open.rows, total);
}

export async function requestCounts(pool: pg.Pool, p: S.RequestCountsParams = {}): Promise<S.RequestCounts> {
  const { rows } = await query<S.RequestCounts>(
    pool,
    `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending, count(*) FILTER (WHERE status = 'processing')::int AS processing
     FROM requests WHERE status IN ('pending', 'processing') AND ($1::text IS NULL OR operation = $1)`,
    [p.operation ?? null],
  );
  return { pending: rows[0]!.pending, processing: rows[0]!.processing };
}

export async function requestNextRunAt(pool: pg.Pool, p: S.RequestNextRunAtParams): Promise<number | null> {
  const { rows } = await query<{ run_at: number | null }>(
    pool,
    `SELECT MIN(run_at) AS run_at FROM requests WHERE status = 'pending' AND run_at > $1`,
    [p.after],
  );
  return rows[0]?.run_at ?? null;
}

/** The claim guard of every transition out of `processing`: $1 id, $2 attempt, $3 owner, $4 now. */
const CLAIMED = `WHERE id = $1 AND status = 'processing' AND attempt = $2 AND lease_owner = $3`;

const ref = (p: S.RequestReleaseParams) => [p.id, p.attempt, p.owner, p.now];

/**
 * A guarded transition out of `processing`, written for many claims in one
 * statement (group commit, groupCommit.ts): `u` is one row per item from
 * `unnest` (id, attempt, owner, now, then the kind's own columns), and only
 * rows still held by the same attempt and owner change. An item whose row did
 * not match (cancelled, lease lost) gets null.
 */
interface Outcome<P extends S.RequestReleaseParams> {
  /** The kind's own columns of `u`, beyond id, attempt, owner, now: `name type` each. */
  columns: readonly string[];
  values(p: P): unknown[];
  /** The SET list (reading `u.now` and the kind's columns). */
  set: string;
  change(p: P): StatusChange;
}

function outcomeWriter<P extends S.RequestReleaseParams>(o: Outcome<P>): WriteMany<P, S.Transition | null> {
  const names = ['id text', 'attempt int', 'owner text', 'now bigint', ...o.columns];
  const sql = `UPDATE requests r SET ${o.set}, lease_owner = NULL, lease_expires_at = NULL, updated_at = u.now, last_seq = r.last_seq + 1
    FROM unnest(${names.map((c, i) => `$${i + 1}::${c.split(' ')[1]}[]`).join(', ')}) AS u(${names.map((c) => c.split(' ')[0]).join(', ')})
    WHERE r.id = u.id AND r.status = 'processing' AND r.attempt = u.attempt AND r.lease_owner = u.owner
    RETURNING r.*`;
  return async (tx, items) => {
    const columns = names.map(() => [] as unknown[]);
    for (const p of items) [p.id, p.attempt, p.owner, p.now, ...o.values(p)].forEach((v, i) => columns[i]!.push(v));
    const byId = new Map((await tx.query<RequestRow>(sql, columns)).rows.map((row) => [row.id, row]));
    const changed = items.flatMap((p) => {
      const row = byId.get(p.id);
      return row ? [{ row, now: p.now, change: o.change(p) }] : [];
    });
    const transitions = new Map((await statusTransitionsOf(tx, changed)).map((t) => [t.request.id, t]));
    return items.map((p) => transitions.get(p.id) ?? null);
  };
}

const json = (v: unknown) => JSON.stringify(v === undefined ? null : v);

export const completeMany: WriteMany<S.RequestCompleteParams, S.Transition | null> = outcomeWriter<S.RequestCompleteParams>({
  columns: ['result text'],
  values: (p) => [json(p.result)],
  set: `status = 'completed', result = u.result, error = NULL, completed_at = u.now`,
  change: () => ({ kind: 'completed' }),
});

export const failMany: WriteMany<S.RequestFailParams, S.Transition | null> = outcomeWriter<S.RequestFailParams>({
  columns: ['error text'],
  values: (p) => [json(p.error)],
  set: `status = 'failed', error = u.error, completed_at = u.now`,
  change: (p) => ({ kind: 'failed', error: p.error }),
});

export const retryMany: WriteMany<S.RequestRetryParams, S.Transition | null> = outcomeWriter<S.RequestRetryParams>({
  columns: ['error text', 'run_at bigint'],
  values: (p) => [json(p.error), p.runAt],
  set: `status = 'pending', error = u.error, run_at = u.run_at`,
  change: (p) => ({ kind: 'retried', error: p.error, runAt: p.runAt }),
});

/** The interrupted attempt is not counted (attempt − 1); it may run again at once. */
export const releaseMany: WriteMany<S.RequestReleaseParams, S.Transition | null> = outcomeWriter<S.RequestReleaseParams>({
  columns: [],
  values: () => [],
  set: `status = 'pending', attempt = r.attempt - 1, run_at = u.now, progress = NULL`,
  change: () => ({ kind: 'released' }),
});

/** New requests, many per statement (insertRequests). */
export const insertMany: WriteMany<S.RequestInsertParams, S.Transition> = (tx, items) =>
  insertRequests(
    tx,
    items.map((p) => p.request),
  );

export async function requestProgress(pool: pg.Pool, p: S.RequestProgressParams): Promise<S.Transition | null> {
  return transaction(pool, async (tx) => {
    const row = (
      await tx.query<RequestRow>(`UPDATE requests SET progress = $5, updated_at = $4, last_seq = last_seq + 1 ${CLAIMED} RETURNING *`, [
        ...ref(p),
        JSON.stringify(p.progress),
      ])
    ).rows[0];
    if (!row) return null;
    const [event] = await insertEvents(tx, [{ requestId: row.id, seq: row.last_seq, type: 'progress', data: p.progress, now: p.now }]);
    return { kind: 'progress', request: requestFromRow(row), event: event! };
  });
}

export async function requestCancel(pool: pg.Pool, p: S.RequestCancelParams): Promise<S.CancelOutcome> {
  return transaction(pool, async (tx): Promise<S.CancelOutcome> => {
    const current = (await tx.query<RequestRow>('SELECT * FROM requests WHERE id = $1 FOR UPDATE', [p.id])).rows[0];
    if (!current || (p.tenant != null && current.tenant !== p.tenant)) return { outcome: 'not_found' };
    const row = (
      await tx.query<RequestRow>(
        `UPDATE requests
         SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, completed_at = $2, updated_at = $2,
             last_seq = last_seq + 1,
             error = '{"type":"cancelled","message":"Request cancelled by user","retryable":false}'
         WHERE id = $1 AND status IN ('pending', 'processing')
         RETURNING *`,
        [p.id, p.now],
      )
    ).rows[0];
    if (!row) return { outcome: 'already_finished', request: requestFromRow(current) };
    return {
      outcome: 'cancelled',
      transition: await statusTransition(tx, row, p.now, { kind: 'cancelled' }),
      wasProcessing: current.status === 'processing',
    };
  });
}
