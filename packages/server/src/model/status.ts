/**
 * The request state machine.
 *
 *   pending ──claim──▶ processing ──▶ completed | failed | cancelled
 *      │  ▲                 │
 *      │  └──retry/lease────┘   (a retryable failure with attempts left, or an expired lease)
 *      └──cancel──▶ cancelled
 *
 * Terminal states (`completed`, `failed`, `cancelled`) never change again. Every
 * transition is one guarded store update (compare-and-set on status + attempt),
 * so a worker whose attempt was superseded can never overwrite a newer outcome.
 */

/** Every state a request can be in, in lifecycle order. */
export const REQUEST_STATUSES = [
  /** Accepted and durable, waiting to be claimed (new, delayed for a retry, or rescued from an expired lease). Moved out by a claim or a cancel. */
  'pending',
  /** Claimed by a worker holding a lease; its handler is running. Moved out by the handler's outcome, a timeout, a cancel or a lease rescue. */
  'processing',
  /** Terminal: the handler returned a result. */
  'completed',
  /** Terminal: the handler failed with no attempts left, failed with a non-retryable error, or timed out. */
  'failed',
  /** Terminal: cancelled by a caller before it finished. */
  'cancelled',
] as const;

/** A request's state. */
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

/** True when `status` is terminal (`completed`, `failed` or `cancelled`). */
export function isTerminal(status: RequestStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

const ALLOWED: Readonly<Record<RequestStatus, readonly RequestStatus[]>> = {
  pending: ['processing', 'cancelled'],
  processing: ['completed', 'failed', 'cancelled', 'pending'],
  completed: [],
  failed: [],
  cancelled: [],
};

/** True when the state machine allows moving from `from` to `to`. */
export function canTransition(from: RequestStatus, to: RequestStatus): boolean {
  return ALLOWED[from].includes(to);
}
