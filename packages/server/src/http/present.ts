/**
 * The status resource: how a request looks over HTTP. Field names follow the
 * seeds (`request_id`, `progress` as a percentage, `message`, `current_step`,
 * `total_steps`, `completed_steps`, `result`, `error`, `duration_ms`).
 */
import { isTerminal, type Request } from '../model/index.js';
import type { RequestSummary } from '../store/index.js';

/**
 * Longest result (bytes of its JSON) carried by an entry of a list
 * (`GET /v1/requests`, a batch's items); a longer one is left out
 * (`result_omitted: true`) and read with `GET /v1/requests/{id}/result`, so a
 * page's size does not grow with the results stored.
 */
export const LIST_RESULT_MAX_BYTES = 16_384;

export interface PresentOptions {
  /** Also name the id `task_id` and the percentage `progress_percent` (the /v1/tasks alias). */
  taskAlias?: boolean;
}

export function presentRequest(request: RequestSummary, options: PresentOptions = {}): Record<string, unknown> {
  const progress = request.progress ?? {};
  const body: Record<string, unknown> = { request_id: request.id };
  if (options.taskAlias) body.task_id = request.id;
  body.status = request.status;
  body.operation = request.operation;
  body.progress = request.status === 'completed' ? 100 : (progress.percent ?? null);
  if (options.taskAlias) body.progress_percent = body.progress;
  body.message = progress.message ?? null;
  body.current_step = progress.current_step ?? null;
  body.total_steps = progress.total_steps ?? null;
  body.completed_steps = progress.completed_steps ?? null;
  if (request.status === 'completed' && request.result_omitted) body.result_omitted = true;
  else if (request.status === 'completed') body.result = request.result;
  if (request.status === 'failed' || request.status === 'cancelled') body.error = request.error;
  else if (request.error) body.last_error = request.error;
  body.attempt = request.attempt;
  body.max_attempts = request.max_attempts;
  body.created_at = iso(request.created_at);
  body.started_at = iso(request.started_at);
  body.completed_at = iso(request.completed_at);
  body.duration_ms = request.completed_at === null ? null : request.completed_at - request.created_at;
  if (request.status === 'pending' && request.attempt > 0) body.next_attempt_at = iso(request.run_at);
  if (request.metadata) body.metadata = request.metadata;
  if (request.retry_of) body.retry_of = request.retry_of;
  body.estimated_ms = request.estimated_ms;
  return body;
}

/** Longest `Retry-After` suggested, in seconds. */
const RETRY_AFTER_MAX_SECONDS = 30;

/**
 * Seconds a poller should wait before asking again (sent as `Retry-After` while
 * not terminal). A request that starts later: until its start. With an
 * estimate: half the time expected to remain (so about two polls before it is
 * done), 1–30 s. Past its estimate, or with none: 1 s, growing by 1 s every 10 s
 * of age, at most 5 s.
 */
export function retryAfterSeconds(
  request: Pick<Request, 'status' | 'run_at' | 'created_at' | 'estimated_ms'>,
  now: number,
): number | undefined {
  if (isTerminal(request.status)) return undefined;
  if (request.status === 'pending' && request.run_at > now)
    return clamp(Math.ceil((request.run_at - now) / 1000), 1, RETRY_AFTER_MAX_SECONDS);
  const elapsed = now - request.created_at;
  if (request.estimated_ms !== null && request.estimated_ms > elapsed) {
    return clamp(Math.ceil((request.estimated_ms - elapsed) / 2000), 1, RETRY_AFTER_MAX_SECONDS);
  }
  return clamp(Math.ceil(elapsed / 10_000), 1, 5);
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
