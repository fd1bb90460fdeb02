/**
 * Duration estimates per operation, from the run times of recently completed
 * requests on this node (the last 50, in memory). The range is the median to
 * the 90th percentile; with fewer than 3 samples there is no estimate (null).
 * A later release replaces this with a learned, persisted estimator.
 */

const WINDOW = 50;
const MIN_SAMPLES = 3;

export interface Estimate {
  lowMs: number;
  highMs: number;
}

export class DurationEstimates {
  private readonly samples = new Map<string, number[]>();

  record(operation: string, durationMs: number): void {
    if (!Number.isFinite(durationMs) || durationMs < 0) return;
    const list = this.samples.get(operation) ?? [];
    list.push(durationMs);
    if (list.length > WINDOW) list.shift();
    this.samples.set(operation, list);
  }

  estimate(operation: string): Estimate | null {
    const list = this.samples.get(operation);
    if (!list || list.length < MIN_SAMPLES) return null;
    const sorted = [...list].sort((a, b) => a - b);
    return { lowMs: quantile(sorted, 0.5), highMs: quantile(sorted, 0.9) };
  }
}

function quantile(sorted: number[], q: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] ?? 0;
}

/** A human range such as "45-60 seconds", "under a second" or "2-3 minutes". */
export function formatEstimate({ lowMs, highMs }: Estimate): string {
  if (highMs < 1000) return 'under a second';
  if (highMs < 120_000) {
    const low = Math.max(1, Math.floor(lowMs / 1000));
    const high = Math.max(low, Math.ceil(highMs / 1000));
    return low === high ? `about ${high} second${high === 1 ? '' : 's'}` : `${low}-${high} seconds`;
  }
  const low = Math.max(1, Math.floor(lowMs / 60_000));
  const high = Math.max(low, Math.ceil(highMs / 60_000));
  return low === high ? `about ${high} minutes` : `${low}-${high} minutes`;
}
