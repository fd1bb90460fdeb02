import type { RequestStatus } from './status.js';

/** How the caller is answered: `sync` holds the HTTP call until the request ends, `async` answers `202` at once. */
export type RequestMode = 'sync' | 'async';

/** Progress a handler reports; every field optional. */
export interface Progress {
  /** 0–100. */
  percent?: number | undefined;
  message?: string | undefined;
  current_step?: string | undefined;
  total_steps?: number | undefined;
  completed_steps?: number | undefined;
}

/** The error recorded on a failed (or retried) request. */
export interface RequestError {
  /** Stable machine-readable type, e.g. `task_timeout` or a handler's own `tool_error`. */
  type: string;
  message: string;
  retryable: boolean;
  details?: unknown;
}

/** One unit of accepted work and its state. */
export interface Request {
  id: string;
  /** The API key owner that submitted it. */
  tenant: string;
  operation: string;
  input: unknown;
  mode: RequestMode;
  status: RequestStatus;
  progress: Progress | null;
  result: unknown;
  error: RequestError | null;
  /** Attempts started so far (0 until first claimed). */
  attempt: number;
  max_attempts: number;
  /** Epoch ms before which the request is not claimed (delayed start or retry backoff). */
  run_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  task_timeout_ms: number;
  /** Epoch ms after which the whole request (all attempts) fails: the workflow timeout. */
  deadline: number;
  webhook_url: string | null;
  idempotency_key: string | null;
  priority: number;
  estimated_ms: number | null;
  metadata: Record<string, unknown> | null;
  /** The failed or cancelled request this one re-runs (POST /v1/requests/{id}/retry), else null. */
  retry_of: string | null;
  /** The batch this request is an item of, else null. */
  batch_id: string | null;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  updated_at: number;
}

/** The kinds of entries in a request's event log. */
export const EVENT_TYPES = ['status', 'progress', 'output'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** One entry of a request's event log; `seq` starts at 1 and has no gaps. */
export interface RequestEvent {
  request_id: string;
  seq: number;
  type: EventType;
  data: unknown;
  created_at: number;
}

/** The status a `status` entry records (what its request moved to); null for other entries. */
export function eventStatus(event: RequestEvent): RequestStatus | null {
  if (event.type !== 'status') return null;
  const status = (event.data as { status?: unknown } | null)?.status;
  return typeof status === 'string' ? (status as RequestStatus) : null;
}

/** Many requests of one operation submitted together; each item is an ordinary request. */
export interface Batch {
  id: string;
  tenant: string;
  operation: string;
  /** Most items of this batch running at once. */
  concurrency: number;
  total: number;
  webhook_url: string | null;
  metadata: Record<string, unknown> | null;
  created_at: number;
}
