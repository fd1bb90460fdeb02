import type { RetryPolicy } from '../../src/operations/index.js';
import type { RetryPolicies } from '../../src/store/index.js';

/** A policy that always waits `delayMs` (no backoff, no jitter). */
export function fixedPolicy(delayMs: number, maxAttempts = 3): RetryPolicy {
  return { maxAttempts, initialDelayMs: delayMs, maxDelayMs: delayMs, backoffFactor: 1, jitter: 0 };
}

/** Rescue retry policies: `fallback` ms for every operation but those in `byOperation` (name → ms). */
export function fixedRetry(fallback: number, byOperation: Record<string, number> = {}): RetryPolicies {
  return {
    byOperation: new Map(Object.entries(byOperation).map(([name, ms]) => [name, { retry: fixedPolicy(ms) }])),
    fallback: fixedPolicy(fallback),
  };
}
