/**
 * Per-operation statistics for `GET /v1/stats` (the dashboard's operations
 * page), computed from the requests the caller may see — so a tenant key gets
 * its own numbers and nothing of another tenant's.
 *
 * **Bounded on purpose.** The store keeps no per-tenant aggregates, so this
 * reads the caller's requests newest first, in pages, and stops at the start
 * of the window or after `STATS_SCAN_MAX` requests (then `truncated: true`).
 * Queue depth (pending, processing) is read the same way, over all time, with
 * the same cap. For exact, cheap, all-tenant numbers scrape `/metrics`.
 *
 * Throughput and outcomes count requests *created* in the window; the
 * `queued` series is the number of them waiting (created, not yet started,
 * not finished) at each bucket's end — an approximation that ignores requests
 * created before the window and retries' waits.
 */
import type { Store } from '../store/index.js';
import type { Request, RequestStatus } from '../model/index.js';

/** Most requests read for one answer (window scan, and again for queue depth). */
export const STATS_SCAN_MAX = 5000;
/** Page size of the scans. */
const SCAN_PAGE = 500;
/** Buckets per series. */
export const STATS_BUCKETS = 30;

export interface StatsParams {
  store: Store;
  /** `null` for an admin (every tenant). */
  tenant: string | null;
  /** Declared operations: listed even without traffic. */
  operations: readonly string[];
  now: number;
  windowMs: number;
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

export interface StatsBucket {
  start: string;
  completed: number;
  failed: number;
  cancelled: number;
  queued: number;
}

export interface OperationStatsView {
  operation: string;
  pending: number;
  processing: number;
  accepted: number;
  completed: number;
  failed: number;
  cancelled: number;
  /** completed / (completed + failed); null with neither. */
  success_rate: number | null;
  /** Completed requests per minute over the window. */
  throughput_per_minute: number;
  /** `duration_ms` (queue time included) of the completed requests; null with none. */
  duration_ms: Percentiles | null;
  /** Run time (started → completed) of the completed requests; null with none. */
  run_ms: Percentiles | null;
  buckets: StatsBucket[];
}

export interface StatsView {
  window: { from: string; to: string; minutes: number; bucket_seconds: number };
  scanned: number;
  truncated: boolean;
  operations: OperationStatsView[];
}

export async function computeStats(params: StatsParams): Promise<StatsView> {
  const { store, tenant, now, windowMs } = params;
  const from = now - windowMs;
  const windowScan = await scan(store, tenant, undefined, (r) => r.created_at >= from);
  const openScan = await scan(store, tenant, ['pending', 'processing'], () => true);

  const bucketMs = windowMs / STATS_BUCKETS;
  const names = new Set(params.operations);
  for (const r of windowScan.rows) names.add(r.operation);
  for (const r of openScan.rows) names.add(r.operation);

  const operations = [...names].sort().map((operation) => {
    const rows = windowScan.rows.filter((r) => r.operation === operation);
    const open = openScan.rows.filter((r) => r.operation === operation);
    const done = rows.filter((r) => r.status === 'completed' && r.completed_at !== null);
    const count = (status: RequestStatus) => rows.filter((r) => r.status === status).length;
    const completed = done.length;
    const failed = count('failed');
    const buckets: StatsBucket[] = [];
    for (let i = 0; i < STATS_BUCKETS; i++) {
      const start = from + i * bucketMs;
      const end = start + bucketMs;
      const endedIn = (status: RequestStatus) =>
        rows.filter((r) => r.status === status && r.completed_at !== null && r.completed_at >= start && r.completed_at < end).length;
      buckets.push({
        start: new Date(start).toISOString(),
        completed: endedIn('completed'),
        failed: endedIn('failed'),
        cancelled: endedIn('cancelled'),
        queued: rows.filter((r) => r.created_at <= end && (r.started_at === null || r.started_at > end) && (r.completed_at === null || r.completed_at > end)).length,
      });
    }
    return {
      operation,
      pending: open.filter((r) => r.status === 'pending').length,
      processing: open.filter((r) => r.status === 'processing').length,
      accepted: rows.length,
      completed,
      failed,
      cancelled: count('cancelled'),
      success_rate: completed + failed === 0 ? null : completed / (completed + failed),
      throughput_per_minute: completed / (windowMs / 60_000),
      duration_ms: percentiles(done.map((r) => (r.completed_at as number) - r.created_at)),
      run_ms: percentiles(done.filter((r) => r.started_at !== null).map((r) => (r.completed_at as number) - (r.started_at as number))),
      buckets,
    };
  });

  return {
    window: { from: new Date(from).toISOString(), to: new Date(now).toISOString(), minutes: windowMs / 60_000, bucket_seconds: bucketMs / 1000 },
    scanned: windowScan.rows.length + openScan.rows.length,
    truncated: windowScan.truncated || openScan.truncated,
    operations,
  };
}

/** Reads newest first while `keep` holds, at most STATS_SCAN_MAX rows. */
async function scan(
  store: Store,
  tenant: string | null,
  statuses: RequestStatus[] | undefined,
  keep: (r: Request) => boolean,
): Promise<{ rows: Request[]; truncated: boolean }> {
  const rows: Request[] = [];
  let beforeId: string | undefined;
  for (let pageNo = 0; pageNo * SCAN_PAGE < STATS_SCAN_MAX; pageNo++) {
    const page = await store.requestList({ tenant, statuses, beforeId, limit: SCAN_PAGE });
    for (const r of page) {
      if (!keep(r)) return { rows, truncated: false };
      if (rows.length >= STATS_SCAN_MAX) return { rows, truncated: true };
      rows.push(r);
    }
    if (page.length < SCAN_PAGE) return { rows, truncated: false };
    beforeId = page[page.length - 1]?.id;
  }
  return { rows, truncated: true };
}

/** Nearest-rank percentiles; null for no values. */
export function percentiles(values: number[]): Percentiles | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
  return { p50: at(50), p95: at(95), p99: at(99) };
}
