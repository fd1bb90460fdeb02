/**
 * Store parameters of the webhook outbox (see model/delivery.ts for the
 * states). Deliveries are claimed under a lease like requests, so several
 * nodes can share the outbox (PostgreSQL: `FOR UPDATE SKIP LOCKED`), and a
 * dead node's deliveries come back when its lease expires. Transitions out of
 * `delivering` name the claim (`owner` + `attempt`) and return null when it is
 * no longer current.
 */
import type { Delivery, DeliveryError } from '../model/index.js';

/** Identifies a node's claim on a delivery. */
interface DeliveryClaimRef {
  id: string;
  owner: string;
  /** The attempt the claim started. */
  attempt: number;
  now: number;
}

export interface DeliveryClaimParams {
  owner: string;
  now: number;
  leaseMs: number;
  /** Most deliveries to claim. */
  limit: number;
}

/** What one attempt observed; recorded in the delivery's attempt log. */
interface DeliveryAttemptOutcome {
  startedAt: number;
  durationMs: number;
  statusCode: number | null;
  responseExcerpt: string | null;
}

export interface DeliveryCompleteParams extends DeliveryClaimRef, DeliveryAttemptOutcome {}

export interface DeliveryFailParams extends DeliveryClaimRef, DeliveryAttemptOutcome {
  error: DeliveryError;
  /** When to try again (epoch ms), or null to end the series as `failed`. */
  retryAt: number | null;
}

export type DeliveryReleaseParams = DeliveryClaimRef;

export interface DeliveryListForRequestParams {
  requestId: string;
}

export interface DeliveryRedeliverParams {
  id: string;
  /** The delivery must belong to this request. */
  requestId: string;
  now: number;
}

export type RedeliverOutcome =
  | { outcome: 'scheduled'; delivery: Delivery }
  /** It is being sent right now; try again when that attempt ends. */
  | { outcome: 'in_progress'; delivery: Delivery }
  | { outcome: 'not_found' };

export interface DeliveryRescueExpiredParams {
  now: number;
  limit: number;
  /** Also take back deliveries held by every owner but this one (exclusive-access backends at start-up). */
  allExcept?: string | undefined;
}
