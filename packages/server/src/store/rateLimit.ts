/**
 * Token buckets for submission rate limits: the arithmetic both backends share.
 *
 * A bucket holds at most `burst` tokens and gains `ratePerSec` per second. A
 * take of `cost` tokens succeeds when the bucket holds at least
 * `min(cost, burst)`: a batch bigger than the burst is accepted from a full
 * bucket and leaves it in debt (negative), so the long-run rate still holds and
 * no take is impossible. A refused take changes nothing but the refill.
 * SQLite keeps buckets in memory (one process per file); PostgreSQL keeps them
 * in `rate_limits`, updated by one atomic statement, so every node draws on the
 * same bucket.
 */
import type { RateLimitTake, RateLimitTakeParams } from './store.js';

/** A bucket's state: tokens (may be negative: debt) as of `updatedAt` (epoch ms). */
export interface BucketState {
  tokens: number;
  updatedAt: number;
}

/** Applies one take to `state` (undefined: a new, full bucket); returns the new state and whether it was granted. */
export function bucketTake(state: BucketState | undefined, p: RateLimitTakeParams): { state: BucketState; granted: boolean } {
  const refilled =
    state === undefined ? p.burst : Math.min(p.burst, state.tokens + (Math.max(0, p.now - state.updatedAt) * p.ratePerSec) / 1000);
  const granted = refilled >= Math.min(p.cost, p.burst);
  return {
    state: { tokens: granted ? refilled - p.cost : refilled, updatedAt: Math.max(state?.updatedAt ?? p.now, p.now) },
    granted,
  };
}

/** What a take answers, from the tokens left after it. */
export function bucketResult(tokens: number, granted: boolean, p: RateLimitTakeParams): RateLimitTake {
  const msFor = (missing: number) => (missing <= 0 ? 0 : Math.ceil((missing * 1000) / p.ratePerSec));
  return {
    allowed: granted,
    remaining: Math.max(0, Math.floor(tokens)),
    retryAfterMs: granted ? 0 : Math.max(1, msFor(Math.min(p.cost, p.burst) - tokens)),
    resetMs: msFor(p.burst - tokens),
  };
}
