/**
 * Exponential backoff. The delay before attempt n+1 (after attempt n failed) is
 *
 *   min(initial_delay × backoff_factor^(n−1), max_delay) × (1 ± jitter)
 *
 * so with the defaults (1 s, ×2, cap 60 s) attempts 2, 3, 4… wait 1 s, 2 s, 4 s…
 * Jitter (default ±10%) spreads retries of many requests failing together; tests set it to 0.
 */

import type { RetryPolicy } from '../operations/index.js';

/** Milliseconds to wait after `attempt` (1-based) failed. `random` returns [0, 1). */
export function retryDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const base = Math.min(policy.initialDelayMs * policy.backoffFactor ** exponent, policy.maxDelayMs);
  if (policy.jitter <= 0) return Math.round(base);
  const spread = base * policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(Math.min(base + spread, policy.maxDelayMs)));
}
