/**
 * The transition rules, written once: what a state change writes besides its
 * row (the status event's data, the outbox rows), what a rescued lease becomes,
 * and whether and when a failed attempt runs again. Pure functions of their
 * arguments (randomness and time come in as arguments): both backends call them
 * and keep only their SQL, and the engine's runner calls the retry rule.
 * Tested on their own in test/store/rules.test.ts.
 */
import {
  batchDeliveryPayload,
  deliveryPayload,
  isTerminal,
  newDeliveryId,
  type Batch,
  type Delivery,
  type Request,
  type RequestError,
} from '../model/index.js';
import type { RetryPolicy } from '../operations/index.js';
import type { TransitionKind } from './store.js';

// --- retries -----------------------------------------------------------------

/**
 * Exponential backoff. The delay before attempt n+1 (after attempt n failed) is
 *
 *   min(initial_delay × backoff_factor^(n−1), max_delay) × (1 ± jitter)
 *
 * so with the defaults (1 s, ×2, cap 60 s) attempts 2, 3, 4… wait 1 s, 2 s, 4 s…
 * Jitter (default ±10%) spreads retries of many requests failing together; tests set it to 0.
 * Milliseconds to wait after `attempt` (1-based) failed. `random` returns [0, 1).
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const base = Math.min(policy.initialDelayMs * policy.backoffFactor ** exponent, policy.maxDelayMs);
  if (policy.jitter <= 0) return Math.round(base);
  const spread = base * policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(Math.min(base + spread, policy.maxDelayMs)));
}

/** The retry policies a store needs to decide a rescue: data, not a callback. */
export interface RetryPolicies {
  /** Each operation's policy, by name (the engine's operation registry serves as is). */
  byOperation: ReadonlyMap<string, { readonly retry: RetryPolicy }>;
  /** For requests of an operation no longer configured (`workflow.retry`). */
  fallback: RetryPolicy;
  /** Jitter source, [0, 1); default `Math.random`. */
  random?: (() => number) | undefined;
}

/** The delay before a rescued request of `operation` runs again, after `attempt` failed. */
function rescueDelayMs(policies: RetryPolicies, operation: string, attempt: number): number {
  return retryDelayMs(policies.byOperation.get(operation)?.retry ?? policies.fallback, attempt, policies.random);
}

/** What the request a failed attempt belonged to looks like (only what the rules read). */
type AttemptOf = Pick<Request, 'attempt' | 'max_attempts' | 'deadline'>;

export type FailureOutcome = { retry: true; delayMs: number; runAt: number } | { retry: false };

/**
 * A handler's failure: retried after its `retryAfterMs` (the error said when)
 * or the policy's backoff, when the error is retryable, an attempt is left and
 * the retry starts before the deadline; failed otherwise.
 */
export function failureOutcome(p: {
  request: AttemptOf;
  error: RequestError;
  retryAfterMs: number | undefined;
  now: number;
  policy: RetryPolicy;
  random: () => number;
}): FailureOutcome {
  const delayMs = p.retryAfterMs ?? retryDelayMs(p.policy, p.request.attempt, p.random);
  const canRetry = p.error.retryable && p.request.attempt < p.request.max_attempts && p.now + delayMs < p.request.deadline;
  return canRetry ? { retry: true, delayMs, runAt: p.now + delayMs } : { retry: false };
}

export type RescueOutcome = { kind: 'retried'; error: RequestError; runAt: number } | { kind: 'failed'; error: RequestError };

/**
 * A request whose lease expired (its worker died): pending again at `runAt`
 * while attempts and time are left, failed otherwise; `lease_expired` either way.
 */
export function rescueOutcome(current: AttemptOf & Pick<Request, 'operation'>, now: number, policies: RetryPolicies): RescueOutcome {
  const exhausted = current.attempt >= current.max_attempts || now >= current.deadline;
  const error: RequestError = {
    type: 'lease_expired',
    message: `The worker running attempt ${current.attempt} stopped (crash or restart) before it finished`,
    retryable: !exhausted,
  };
  if (exhausted) return { kind: 'failed', error };
  return { kind: 'retried', error, runAt: now + rescueDelayMs(policies, current.operation, current.attempt) };
}

// --- status events -----------------------------------------------------------

/** A change of status, as the store method that made it knows it. */
export type StatusChange =
  | { kind: Exclude<TransitionKind, 'progress' | 'failed' | 'retried'> }
  | { kind: 'failed'; error: RequestError }
  /** `runAt` is recorded in the event by the runner's retries (a rescue's event does without). */
  | { kind: 'retried'; error: RequestError; runAt?: number | undefined };

/** The `data` of the status event a change appends, from the request as the change left it. */
export function statusEventData(request: Pick<Request, 'status' | 'attempt' | 'error'>, change: StatusChange): Record<string, unknown> {
  const data: Record<string, unknown> = { status: request.status, attempt: request.attempt };
  switch (change.kind) {
    case 'failed':
      data.error = change.error;
      break;
    case 'retried':
      data.error = change.error;
      if (change.runAt !== undefined) data.run_at = change.runAt;
      break;
    case 'released':
      data.released = true;
      break;
    case 'cancelled':
      data.error = request.error;
      break;
    default:
      break;
  }
  return data;
}

// --- the outbox ----------------------------------------------------------------

/**
 * A `deliveries` row to insert: pending, first series, no attempt yet, due
 * `now`. `request_id` is the batch's id for `batch.completed`.
 */
export type NewDelivery = Pick<Delivery, 'id' | 'request_id' | 'tenant' | 'event' | 'url' | 'payload'> & { now: number };

/** The webhook delivery of a request that just became terminal; null when it has no `webhook_url` or is not terminal. */
export function requestDelivery(request: Request, now: number): NewDelivery | null {
  if (request.webhook_url === null || !isTerminal(request.status)) return null;
  return {
    id: newDeliveryId(now),
    request_id: request.id,
    tenant: request.tenant,
    event: `request.${request.status}`,
    url: request.webhook_url,
    payload: JSON.stringify(deliveryPayload(request)),
    now,
  };
}

/** True when `request` just ended as an item of a batch: the batch may have finished with it (check with `batchDelivery`). */
export function mayFinishBatch(request: Request): request is Request & { batch_id: string } {
  return request.batch_id !== null && isTerminal(request.status);
}

/**
 * The batch's `batch.completed` delivery, given its items' counts by status,
 * once none is pending or processing; null before, or without a batch
 * `webhook_url`. The store writes it at most once per batch (it checks for an
 * existing one in the same transaction).
 */
export function batchDelivery(batch: Batch, counts: Readonly<Record<string, number>>, now: number): NewDelivery | null {
  if (batch.webhook_url === null) return null;
  if ((counts.pending ?? 0) + (counts.processing ?? 0) > 0) return null;
  return {
    id: newDeliveryId(now),
    request_id: batch.id,
    tenant: batch.tenant,
    event: 'batch.completed',
    url: batch.webhook_url,
    payload: JSON.stringify(batchDeliveryPayload(batch, counts, now)),
    now,
  };
}
