/**
 * Submission rate limits across nodes: one token bucket per row of
 * `rate_limits`, taken from by one atomic upsert. The row lock of
 * `ON CONFLICT DO UPDATE` serialises concurrent takes on a key, and every SET
 * expression reads the row as it was before this take, so the refill, the
 * decision and the new balance come from one consistent state. The arithmetic
 * is ../rateLimit.ts's (a new bucket starts full).
 */
import type pg from 'pg';
import { bucketResult } from '../rateLimit.js';
import type { RateLimitTake, RateLimitTakeParams } from '../store.js';
import { query } from './connection.js';

/**
 * RATE_LIMIT_TAKE — params: $1 key, $2 burst, $3 rate per second, $4 cost, $5 now (epoch ms).
 * Returns the one row: `granted`, `tokens` after the take.
 */
const RATE_LIMIT_TAKE = `
INSERT INTO rate_limits AS b (key, tokens, updated_at, granted)
VALUES ($1, $2::float8 - $4::float8, $5::bigint, true)
ON CONFLICT (key) DO UPDATE SET
  granted = least($2::float8, b.tokens + greatest(0, $5::bigint - b.updated_at) * $3::float8 / 1000) >= least($4::float8, $2::float8),
  tokens = least($2::float8, b.tokens + greatest(0, $5::bigint - b.updated_at) * $3::float8 / 1000)
    - CASE WHEN least($2::float8, b.tokens + greatest(0, $5::bigint - b.updated_at) * $3::float8 / 1000) >= least($4::float8, $2::float8)
      THEN $4::float8 ELSE 0 END,
  updated_at = greatest(b.updated_at, $5::bigint)
RETURNING granted, tokens`;

export async function rateLimitTake(pool: pg.Pool, p: RateLimitTakeParams): Promise<RateLimitTake> {
  const { rows } = await query<{ granted: boolean; tokens: number }>(pool, RATE_LIMIT_TAKE, [p.key, p.burst, p.ratePerSec, p.cost, p.now]);
  const row = rows[0]!;
  return bucketResult(Number(row.tokens), row.granted, p);
}
