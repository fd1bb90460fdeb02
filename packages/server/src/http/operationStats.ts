/**
 * Per-operation statistics for `GET /v1/stats` (the dashboard's operations
 * page), computed from the requests the caller may see — so a tenant key gets
 * its own numbers and nothing of another tenant's.
 *
 * **Bounded on purpose, and blind to payloads.** The database aggregates
 * (`store.requestStatsByOperation`, see `store/requestStats.ts`) from indexes
 * over small columns: it never reads a request's input or result, and counts
 * at most the newest `STATS_SCAN_MAX` requests of the window (then
 * `truncated: true`) and `STATS_SCAN_MAX` open ones (queue depth, over all
 * time). Node only shapes a few rows per operation. For exact, cheap,
 * all-tenant numbers scrape `/metrics`.
 *
 * Throughput and outcomes count requests *created* in the window; the
 * `queued` series is the number of them waiting (created, not yet started,
 * not finished) at each bucket's end — an approximation that ignores requests
 * created before the window and retries' waits.
 */
import type { OperationRequestStats, RequestStats, RequestStatsParams } from '../store/index.js';

/** Most requests aggregated for one answer (the window, and again the open ones). */
const STATS_SCAN_MAX = 5000;
/** Buckets per series. */
const STATS_BUCKETS = 30;

export interface StatsParams {
  /** Where the aggregates come from (the engine). */
  engine: { requestStats(params: RequestStatsParams): Promise<RequestStats> };
  /** `null` for an admin (every tenant). */
  tenant: string | null;
  /** Declared operations: listed even without traffic. */
  operations: readonly string[];
  now: number;
  windowMs: number;
}

interface StatsBucket {
  start: string;
  completed: number;
  failed: number;
  cancelled: number;
  queued: number;
}

/** One operation's numbers as answered: the store's aggregates, plus rates and dated buckets. */
interface OperationStatsView extends Omit<OperationRequestStats, 'buckets'> {
  /** completed / (completed + failed); null with neither. */
  success_rate: number | null;
  /** Completed requests per minute over the window. */
  throughput_per_minute: number;
  buckets: StatsBucket[];
}

export interface StatsView {
  window: { from: string; to: string; minutes: number; bucket_seconds: number };
  scanned: number;
  truncated: boolean;
  operations: OperationStatsView[];
}

export async function computeStats(params: StatsParams): Promise<StatsView> {
  const { engine, tenant, now, windowMs } = params;
  const from = now - windowMs;
  const bucketMs = windowMs / STATS_BUCKETS;
  const stats = await engine.requestStats({ tenant, from, to: now, buckets: STATS_BUCKETS, scanMax: STATS_SCAN_MAX });
  const found = new Map(stats.operations.map((o) => [o.operation, o]));
  const names = [...new Set([...params.operations, ...found.keys()])].sort();

  const operations = names.map((operation): OperationStatsView => {
    const o = found.get(operation);
    const completed = o?.completed ?? 0;
    const failed = o?.failed ?? 0;
    return {
      operation,
      pending: o?.pending ?? 0,
      processing: o?.processing ?? 0,
      accepted: o?.accepted ?? 0,
      completed,
      failed,
      cancelled: o?.cancelled ?? 0,
      success_rate: completed + failed === 0 ? null : completed / (completed + failed),
      throughput_per_minute: completed / (windowMs / 60_000),
      duration_ms: o?.duration_ms ?? null,
      run_ms: o?.run_ms ?? null,
      buckets: Array.from({ length: STATS_BUCKETS }, (_, i) => ({
        start: new Date(from + i * bucketMs).toISOString(),
        completed: o?.buckets[i]?.completed ?? 0,
        failed: o?.buckets[i]?.failed ?? 0,
        cancelled: o?.buckets[i]?.cancelled ?? 0,
        queued: o?.buckets[i]?.queued ?? 0,
      })),
    };
  });

  return {
    window: {
      from: new Date(from).toISOString(),
      to: new Date(now).toISOString(),
      minutes: windowMs / 60_000,
      bucket_seconds: bucketMs / 1000,
    },
    scanned: stats.scanned,
    truncated: stats.truncated,
    operations,
  };
}
