/**
 * A decayed duration histogram: the memory behind Errand's estimates.
 *
 * Buckets are log-spaced, 8 per doubling, from 1 ms to about 2^26 ms (18 h);
 * each bucket holds a weight. Recording a duration first multiplies every
 * weight by `decay` (0.97: a sample's weight halves after ~23 newer ones, so
 * the estimate follows an operation that got slower or faster within a few
 * dozen requests), then adds 1 to the duration's bucket. Quantiles read the
 * cumulative weight; a bucket's value is its geometric midpoint, so the
 * relative error is under 5%. The histogram is a plain JSON value, stored as
 * is, so every node reading the store shares it.
 */

export interface DurationHistogram {
  /** Weights by bucket index (sparse: missing = 0). */
  weights: Record<string, number>;
  /** Total (decayed) weight. */
  total: number;
  /** Samples ever recorded (not decayed). */
  count: number;
}

const HISTOGRAM_DECAY_DEFAULT = 0.97;
const BUCKETS_PER_DOUBLING = 8;
const MAX_BUCKET = 26 * BUCKETS_PER_DOUBLING;
/** Weights below this are dropped to keep the record small. */
const EPSILON = 1e-4;

export function emptyHistogram(): DurationHistogram {
  return { weights: {}, total: 0, count: 0 };
}

function bucketOf(ms: number): number {
  if (ms <= 1) return 0;
  return Math.min(MAX_BUCKET, Math.floor(Math.log2(ms) * BUCKETS_PER_DOUBLING));
}

function bucketValue(bucket: number): number {
  return 2 ** ((bucket + 0.5) / BUCKETS_PER_DOUBLING);
}

/** A new histogram with `durationMs` recorded (the input is not changed). */
export function histogramAdd(h: DurationHistogram, durationMs: number, decay = HISTOGRAM_DECAY_DEFAULT): DurationHistogram {
  const weights: Record<string, number> = {};
  let total = 0;
  for (const [bucket, weight] of Object.entries(h.weights)) {
    const w = weight * decay;
    if (w >= EPSILON) {
      weights[bucket] = w;
      total += w;
    }
  }
  const b = String(bucketOf(Math.max(0, durationMs)));
  weights[b] = (weights[b] ?? 0) + 1;
  return { weights, total: total + 1, count: h.count + 1 };
}

/** The duration below which a fraction `q` (0–1) of the weight lies; null when empty. */
export function histogramQuantile(h: DurationHistogram, q: number): number | null {
  if (h.total <= 0) return null;
  const target = Math.min(1, Math.max(0, q)) * h.total;
  const buckets = Object.keys(h.weights)
    .map(Number)
    .sort((a, b) => a - b);
  let seen = 0;
  for (const bucket of buckets) {
    seen += h.weights[String(bucket)] ?? 0;
    if (seen >= target - 1e-9) return Math.round(bucketValue(bucket));
  }
  const last = buckets[buckets.length - 1];
  return last === undefined ? null : Math.round(bucketValue(last));
}
