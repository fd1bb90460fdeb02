/**
 * `requestStatsByOperation` for both backends: the SQL (one text, placeholders
 * filled per backend) and the assembly of its rows into `RequestStats`.
 *
 * **Bounded, and blind to inputs and results.** The window part reads the
 * newest `scanMax` requests created since `from` and the open part at most
 * `scanMax + 1` pending/processing requests, both from indexes over small
 * columns (`requests_created`, `requests_tenant_created`, `requests_open`:
 * SQLite 0005, PostgreSQL 0003), so the database never opens a row's input or
 * result and the answer's cost is the same for 1-byte and 10-MB requests.
 * Everything is aggregated by the database (counts per status, per bucket,
 * the queued series, nearest-rank percentiles with window functions); Node
 * receives a few rows per operation.
 */
import type { OperationRequestStats, RequestStats, RequestStatsBucket, RequestStatsParams } from './store.js';

/** The named values the statements use; a backend maps each to its placeholder (`@from`, `$2::bigint`). */
export type StatsParamName = 'tenant' | 'from' | 'bucket_ms' | 'buckets' | 'scan_max';

/** One aggregate row of the window statement. */
export interface RequestStatsRow {
  /** `status` (n per status), `ended` (n ended in bucket i), `queued` (n waiting at bucket i's end), `duration` / `run` (percentile i = value n). */
  kind: 'status' | 'ended' | 'queued' | 'duration' | 'run';
  operation: string;
  status: string;
  i: number;
  n: number;
}

export interface RequestOpenRow {
  operation: string;
  status: string;
  n: number;
}

export interface StatsStatements {
  /** Aggregates of the window, as `RequestStatsRow`s. */
  window: string;
  /** Open requests per operation and status (at most scan_max + 1 counted). */
  open: string;
  /** How many requests the window holds, counting at most scan_max + 1 (run only when the window part hit its cap). */
  windowCount: string;
}

/** The statements, for every tenant (`byTenant` false) or one. */
export function requestStatsStatements(p: (name: StatsParamName) => string, byTenant: boolean): StatsStatements {
  const tenant = byTenant ? `tenant = ${p('tenant')} AND ` : '';
  const from = p('from');
  const bucketMs = p('bucket_ms');
  const bucketEnd = `${from} + (b.i + 1) * ${bucketMs}`;
  const percentileOf = (name: string, value: string, extra: string) => `${name} AS (
  SELECT operation, ${value} AS v,
    ROW_NUMBER() OVER (PARTITION BY operation ORDER BY ${value}) AS rn,
    COUNT(*) OVER (PARTITION BY operation) AS n
  FROM w WHERE status = 'completed' AND completed_at IS NOT NULL${extra})`;
  const window = `
WITH RECURSIVE
w AS (
  SELECT operation, status, created_at, started_at, completed_at FROM requests
  WHERE ${tenant}created_at >= ${from}
  ORDER BY created_at DESC LIMIT ${p('scan_max')}),
b (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM b WHERE i + 1 < ${p('buckets')}),
q (p) AS (VALUES (50), (95), (99)),
${percentileOf('d', 'completed_at - created_at', '')},
${percentileOf('r', 'completed_at - started_at', ' AND started_at IS NOT NULL')}
SELECT 'status' AS kind, operation, status, 0 AS i, COUNT(*) AS n FROM w GROUP BY operation, status
UNION ALL
SELECT 'ended', operation, status, CAST((completed_at - ${from}) / ${bucketMs} AS BIGINT), COUNT(*) FROM w
  WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at IS NOT NULL
  GROUP BY operation, status, CAST((completed_at - ${from}) / ${bucketMs} AS BIGINT)
UNION ALL
SELECT 'queued', w.operation, '', b.i, COUNT(*) FROM w JOIN b
  ON w.created_at <= ${bucketEnd}
  AND (w.started_at IS NULL OR w.started_at > ${bucketEnd})
  AND (w.completed_at IS NULL OR w.completed_at > ${bucketEnd})
  GROUP BY w.operation, b.i
UNION ALL
SELECT 'duration', d.operation, '', q.p, d.v FROM d JOIN q ON d.rn = (q.p * d.n + 99) / 100
UNION ALL
SELECT 'run', r.operation, '', q.p, r.v FROM r JOIN q ON r.rn = (q.p * r.n + 99) / 100`;
  const open = `
SELECT operation, status, COUNT(*) AS n FROM (
  SELECT operation, status FROM requests WHERE status IN ('pending', 'processing') ${byTenant ? `AND tenant = ${p('tenant')}` : ''}
  LIMIT ${p('scan_max')} + 1) AS o
GROUP BY operation, status`;
  const windowCount = `
SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM requests WHERE ${tenant}created_at >= ${from} LIMIT ${p('scan_max')} + 1) AS c`;
  return { window, open, windowCount };
}

/** The bucket length of `params`, in whole ms. */
export function statsBucketMs(params: RequestStatsParams): number {
  return Math.max(1, Math.floor((params.to - params.from) / params.buckets));
}

/**
 * Turns the statements' rows into `RequestStats`. `windowTotal` is the window's
 * count from `windowCount` when the window part hit its cap (else undefined).
 */
export function assembleRequestStats(
  params: RequestStatsParams,
  rows: readonly RequestStatsRow[],
  open: readonly RequestOpenRow[],
  windowTotal?: number,
): RequestStats {
  const byOperation = new Map<string, OperationRequestStats>();
  const entry = (operation: string): OperationRequestStats => {
    let found = byOperation.get(operation);
    if (!found) {
      const buckets: RequestStatsBucket[] = Array.from({ length: params.buckets }, () => ({
        completed: 0,
        failed: 0,
        cancelled: 0,
        queued: 0,
      }));
      found = {
        operation,
        pending: 0,
        processing: 0,
        accepted: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
        duration_ms: null,
        run_ms: null,
        buckets,
      };
      byOperation.set(operation, found);
    }
    return found;
  };
  let windowRows = 0;
  for (const row of rows) {
    const stats = entry(row.operation);
    const n = Number(row.n);
    const i = Number(row.i);
    if (row.kind === 'status') {
      windowRows += n;
      stats.accepted += n;
      if (row.status === 'completed' || row.status === 'failed' || row.status === 'cancelled') stats[row.status] += n;
    } else if (row.kind === 'ended') {
      const bucket = stats.buckets[i];
      if (bucket && (row.status === 'completed' || row.status === 'failed' || row.status === 'cancelled')) bucket[row.status] += n;
    } else if (row.kind === 'queued') {
      const bucket = stats.buckets[i];
      if (bucket) bucket.queued += n;
    } else {
      const key = row.kind === 'duration' ? 'duration_ms' : 'run_ms';
      const percentiles = (stats[key] ??= { p50: 0, p95: 0, p99: 0 });
      if (i === 50) percentiles.p50 = n;
      else if (i === 95) percentiles.p95 = n;
      else if (i === 99) percentiles.p99 = n;
    }
  }
  let openRows = 0;
  for (const row of open) {
    const n = Number(row.n);
    openRows += n;
    if (row.status === 'pending' || row.status === 'processing') entry(row.operation)[row.status] += n;
  }
  const openTruncated = openRows > params.scanMax;
  const windowTruncated = windowTotal !== undefined && windowTotal > params.scanMax;
  return {
    scanned: windowRows + Math.min(openRows, params.scanMax),
    truncated: openTruncated || windowTruncated,
    operations: [...byOperation.values()].sort((a, b) => (a.operation < b.operation ? -1 : a.operation > b.operation ? 1 : 0)),
  };
}
