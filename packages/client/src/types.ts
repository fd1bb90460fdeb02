/**
 * The wire shapes of the Errand HTTP API, as the server sends them
 * (docs/api.md, docs/sse.md; packages/server/src/http/present.ts and routes/).
 * Kept in this one file so that they can be checked against the server's
 * OpenAPI document once it exists.
 */

/** The five request states (docs/glossary.md#states). */
export const REQUEST_STATUSES = ['pending', 'processing', 'completed', 'failed', 'cancelled'] as const;

/** A request's state: `pending` and `processing` move on; `completed`, `failed` and `cancelled` are terminal. */
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

/** The states a request never leaves. */
export type TerminalStatus = 'completed' | 'failed' | 'cancelled';

/** True for `completed`, `failed` and `cancelled`. */
export function isTerminal(status: RequestStatus): status is TerminalStatus {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * A request's error, on a `failed` or `cancelled` status resource (`error`) or
 * while it waits for another attempt (`last_error`). `type` is an error type
 * from docs/errors.md, or the operation's own (for example `tool_error`).
 */
export interface ErrorBody {
  type: string;
  message: string;
  retryable: boolean;
  details?: unknown;
  [key: string]: unknown;
}

/** `GET /v1/requests/{id}`: the status resource (docs/api.md#the-status-resource). */
export interface StatusResource {
  request_id: string;
  /** Only on the `/v1/tasks` alias. */
  task_id?: string;
  status: RequestStatus;
  operation: string;
  /** Percent done (0–100), `100` once completed, `null` if never reported. */
  progress: number | null;
  /** Only on the `/v1/tasks` alias. */
  progress_percent?: number | null;
  message: string | null;
  current_step: string | null;
  total_steps: number | null;
  completed_steps: number | null;
  /** Present when `status` is `completed`. */
  result?: unknown;
  /** In list entries and batch items only: the result is over 16 KiB and was left out; read the request itself for it. */
  result_omitted?: true;
  /** Present when `status` is `failed` or `cancelled`. */
  error?: ErrorBody;
  /** The previous attempt's error while the next one waits or runs. */
  last_error?: ErrorBody;
  attempt: number;
  max_attempts: number;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  duration_ms: number | null;
  /** `pending` after a failed attempt: when the next one may start. */
  next_attempt_at?: string;
  metadata?: Record<string, unknown>;
  /** The request this one re-runs (`POST /v1/requests/{id}/retry`). */
  retry_of?: string;
  /** The estimate given at submission (high end, ms). */
  estimated_ms: number | null;
}

/** The `202 Accepted` body of a submission (async, or a sync call handed off). */
export interface AcceptedResource {
  request_id: string;
  /** Only on the bots alias. */
  task_id?: string;
  status: RequestStatus;
  estimated_time: string | null;
  estimated_ms: number | null;
  location: string;
}

/** `DELETE /v1/requests/{id}`. */
export interface CancelAnswer {
  request_id: string;
  status: 'cancelled';
  message: string;
}

/** `POST /v1/requests/{id}/retry`. */
export interface RetryAnswer {
  request_id: string;
  task_id?: string;
  retry_of: string;
  status: RequestStatus;
  location: string;
}

/** `GET /v1/requests`. */
export interface ListPage {
  data: StatusResource[];
  has_more: boolean;
  next_cursor: string | null;
}

/** One attempt of a webhook delivery. */
export interface DeliveryAttempt {
  series: number;
  attempt: number;
  started_at: string;
  duration_ms: number | null;
  status_code: number | null;
  error: { type: string; message: string } | null;
  response_excerpt: string | null;
}

/** `GET /v1/requests/{id}/deliveries`: one entry of `data`. */
export interface Delivery {
  delivery_id: string;
  request_id: string;
  event: string;
  url: string;
  status: 'pending' | 'delivering' | 'delivered' | 'failed';
  series: number;
  attempt: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: { type: string; message: string } | null;
  created_at: string;
  finished_at: string | null;
  attempts: DeliveryAttempt[];
}

/** `GET /v1/requests/{id}/deliveries`. */
export interface DeliveryList {
  request_id: string;
  data: Delivery[];
}

/** `GET /v1/batches/{id}` (and the `202` of `POST /v1/batches`, which adds `location` and `request_ids`). */
export interface BatchStatus {
  batch_id: string;
  operation: string;
  status: 'pending' | 'processing' | 'completed';
  total: number;
  concurrency: number;
  counts: Record<RequestStatus | 'purged', number>;
  succeeded: number;
  failed: number;
  pending: number;
  success_rate: number | null;
  progress: number;
  webhook_url: string | null;
  metadata: Record<string, unknown> | null;
  created_at: string;
  completed_at: string | null;
  /** Every item's status resource, in submission order (`GET` only). */
  items?: StatusResource[];
  /** `POST` only. */
  location?: string;
  /** `POST` only: the items' request ids, in order. */
  request_ids?: string[];
}

/** The `error` object of the JSON error envelope `{"error": {...}}` (docs/errors.md). */
export interface ErrorEnvelope {
  error: {
    type: string;
    message: string;
    field?: string;
    /** Always sent by Errand (a proxy's own error may lack it: read it defensively). */
    retryable: boolean;
    request_id?: string;
    [key: string]: unknown;
  };
}

/** The event types of a request's event log (docs/sse.md#event-types-and-payloads). */
export type RequestEventType = 'status' | 'progress' | 'output' | 'completed' | 'failed' | 'cancelled';

/** The events after which a request's stream ends. */
export type TerminalEventType = 'completed' | 'failed' | 'cancelled';

/** `data` of a `status` event. */
export interface StatusEventData {
  status: RequestStatus;
  attempt: number;
  error?: ErrorBody;
  /** With a retry: when the next attempt may start, epoch milliseconds. */
  run_at?: number;
  released?: boolean;
}

/** `data` of a `progress` event: the attempt's progress so far. */
export interface ProgressEventData {
  percent?: number;
  message?: string;
  current_step?: string;
  total_steps?: number;
  completed_steps?: number;
}

/** One event of `GET /v1/requests/{id}/events`: `id` is its number in the request's event log (from 1, no gaps). */
export type RequestEventMessage =
  | { id: number; event: 'status'; data: StatusEventData }
  | { id: number; event: 'progress'; data: ProgressEventData }
  | { id: number; event: 'output'; data: unknown }
  | { id: number; event: TerminalEventType; data: StatusResource };

/** One message of `GET /v1/events` (live events of every request the key may see). */
export interface TailEvent {
  request_id: string;
  operation: string;
  tenant: string;
  /** The event's number in its request's log. */
  seq: number;
  /** The event-log entry's type (terminal states arrive as `status` entries). */
  type: 'status' | 'progress' | 'output';
  data: unknown;
  /** The request's status after this event. */
  status: RequestStatus;
  created_at: string;
}
