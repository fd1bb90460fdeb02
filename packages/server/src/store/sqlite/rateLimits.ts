/**
 * Rate-limit buckets of the SQLite backend, in memory: one process owns a
 * SQLite file, so no other node shares them, and a restart refilling every
 * bucket is harmless. Keeping them out of the file spares every submission a
 * second fsync. At most `MEMORY_BUCKETS_MAX` buckets are kept (keys come from
 * configured tenants and operations, so this is a backstop); past it the
 * least recently used is forgotten, which only makes that bucket full again.
 */
import { bucketResult, bucketTake, type BucketState } from '../rateLimit.js';
import type { RateLimitTake, RateLimitTakeParams } from '../store.js';

const MEMORY_BUCKETS_MAX = 100_000;

export class MemoryBuckets {
  private readonly buckets = new Map<string, BucketState>();

  take(p: RateLimitTakeParams): RateLimitTake {
    const { state, granted } = bucketTake(this.buckets.get(p.key), p);
    // Re-inserting keeps the Map in least-recently-used order.
    this.buckets.delete(p.key);
    if (this.buckets.size >= MEMORY_BUCKETS_MAX) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
    this.buckets.set(p.key, state);
    return bucketResult(state.tokens, granted, p);
  }
}
