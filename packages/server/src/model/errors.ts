/**
 * The error catalog: every error that can cross a boundary (an HTTP response or a
 * request's recorded `error`). Types are stable API; a retired type is never reused.
 * `docs/errors.md` lists each one and a test keeps the two in step.
 *
 * `scope: 'http'` errors are answered as `{"error": {...}}` with `status`;
 * `scope: 'request'` errors are recorded on a failed request (`status` is the
 * HTTP status they would map to if a sync caller surfaced them).
 */

export interface CatalogEntry {
  readonly status: number;
  readonly retryable: boolean;
  readonly scope: 'http' | 'request';
  /** Default message; call sites usually give a more specific one. */
  readonly message: string;
}

export const ERROR_CATALOG = {
  invalid_json: { status: 400, retryable: false, scope: 'http', message: 'The request body is not valid JSON.' },
  invalid_cursor: {
    status: 400,
    retryable: false,
    scope: 'http',
    message: 'The cursor is not one this server issued; start again without it.',
  },
  invalid_parameter: { status: 400, retryable: false, scope: 'http', message: 'A query parameter or header is invalid.' },
  unauthorized: {
    status: 401,
    retryable: false,
    scope: 'http',
    message: 'Missing or unknown API key: send it as "Authorization: Bearer <key>" or "X-Client-Key: <key>".',
  },
  origin_not_allowed: {
    status: 403,
    retryable: false,
    scope: 'http',
    message: 'Auth is off (no API keys), so this server answers only requests addressed to a loopback host, from no page of another site.',
  },
  forbidden: { status: 403, retryable: false, scope: 'http', message: 'This API key may not use this endpoint: it needs an admin key.' },
  route_not_found: { status: 404, retryable: false, scope: 'http', message: 'No such endpoint.' },
  request_not_found: { status: 404, retryable: false, scope: 'http', message: 'No request with this id.' },
  batch_not_found: { status: 404, retryable: false, scope: 'http', message: 'No batch with this id.' },
  delivery_not_found: { status: 404, retryable: false, scope: 'http', message: 'The request has no webhook delivery with this id.' },
  delivery_in_progress: {
    status: 409,
    retryable: true,
    scope: 'http',
    message: 'The delivery is being sent right now; redeliver it once this attempt has ended.',
  },
  operation_not_found: { status: 404, retryable: false, scope: 'http', message: 'No operation with this name is declared in the config.' },
  trigger_not_found: { status: 404, retryable: false, scope: 'http', message: 'No trigger with this name is declared in the config.' },
  model_not_found: {
    status: 404,
    retryable: false,
    scope: 'http',
    message: 'No operation is exposed as a model with this name (openai.models).',
  },
  chat_not_configured: {
    status: 404,
    retryable: false,
    scope: 'http',
    message: 'Chat is not configured: set chat.operation in the config.',
  },
  request_not_retryable: { status: 409, retryable: false, scope: 'http', message: 'Only a failed or cancelled request can be retried.' },
  request_gone: {
    status: 410,
    retryable: false,
    scope: 'http',
    message: 'The request finished and was purged by retention; its final status is given.',
  },
  idempotency_conflict: {
    status: 422,
    retryable: false,
    scope: 'http',
    message: 'This Idempotency-Key was already used with a different request; use a new key for a new request.',
  },
  request_already_finished: { status: 409, retryable: false, scope: 'http', message: 'The request has already finished.' },
  request_not_finished: {
    status: 409,
    retryable: true,
    scope: 'http',
    message: 'The request has not finished yet; poll its status and try again.',
  },
  result_unavailable: { status: 409, retryable: false, scope: 'http', message: 'The request finished without a result.' },
  payload_too_large: { status: 413, retryable: false, scope: 'http', message: 'The request body is larger than server.body_limit.' },
  unsupported_media_type: { status: 415, retryable: false, scope: 'http', message: 'Send the body as application/json.' },
  validation_error: { status: 422, retryable: false, scope: 'http', message: 'The request body is invalid.' },
  rate_limited: {
    status: 429,
    retryable: true,
    scope: 'http',
    message:
      'Too many submissions: this tenant (or this operation for it) is over its rate limit (limits.submissions); retry after Retry-After seconds.',
  },
  too_many_streams: {
    status: 429,
    retryable: true,
    scope: 'http',
    message: 'This API key already holds limits.streams_per_caller open event streams on this node; close one, or retry later.',
  },
  too_many_waits: {
    status: 429,
    retryable: true,
    scope: 'http',
    message:
      'This API key already holds limits.waits_per_caller long-polls and sync waits on this node; poll without waiting, or retry later.',
  },
  too_many_auth_failures: {
    status: 429,
    retryable: true,
    scope: 'http',
    message:
      'Too many requests with a missing or unknown API key came from this address (limits.failed_auth); retry after Retry-After seconds.',
  },
  internal_error: { status: 500, retryable: true, scope: 'http', message: 'Something went wrong on the server; nothing was changed.' },
  store_unavailable: { status: 503, retryable: true, scope: 'http', message: 'The store is unavailable; retry later.' },
  shutting_down: {
    status: 503,
    retryable: true,
    scope: 'http',
    message: 'The server is shutting down and accepts no new work; retry on another node or later.',
  },

  handler_error: { status: 500, retryable: true, scope: 'request', message: 'The operation handler failed.' },
  invalid_result: {
    status: 500,
    retryable: false,
    scope: 'request',
    message: 'The operation returned a value that is not JSON-serialisable.',
  },
  task_timeout: { status: 504, retryable: false, scope: 'request', message: 'Task exceeded timeout.' },
  workflow_timeout: { status: 504, retryable: false, scope: 'request', message: 'Workflow exceeded timeout.' },
  lease_expired: {
    status: 500,
    retryable: true,
    scope: 'request',
    message: 'The worker running the request stopped (crash or restart) before it finished.',
  },
  operation_unavailable: {
    status: 500,
    retryable: false,
    scope: 'request',
    message: 'The operation is no longer declared in the config, or its module failed to load.',
  },
  upstream_error: {
    status: 502,
    retryable: true,
    scope: 'request',
    message: 'The upstream of an http or llm operation answered 5xx or 429, or broke off its answer.',
  },
  upstream_rejected: {
    status: 502,
    retryable: false,
    scope: 'request',
    message: 'The upstream of an http or llm operation refused the call with a 4xx status.',
  },
  upstream_timeout: {
    status: 504,
    retryable: true,
    scope: 'request',
    message: 'The upstream of an http or llm operation did not answer within its timeout.',
  },
  upstream_unreachable: {
    status: 502,
    retryable: true,
    scope: 'request',
    message: 'The upstream of an http or llm operation could not be reached.',
  },
  upstream_invalid_response: {
    status: 502,
    retryable: false,
    scope: 'request',
    message: 'The upstream of an http or llm operation answered something that cannot be a result.',
  },
  upstream_response_too_large: {
    status: 502,
    retryable: false,
    scope: 'request',
    message: 'The upstream of an http or llm operation answered more than its size limit.',
  },
  fetch_invalid_url: {
    status: 422,
    retryable: false,
    scope: 'request',
    message: 'ctx.fetch was given a URL that is not http(s), not absolute, or too long.',
  },
  fetch_forbidden: {
    status: 422,
    retryable: false,
    scope: 'request',
    message: 'ctx.fetch refused the target: a loopback, private, link-local, metadata or other internal address.',
  },
  fetch_redirect_refused: {
    status: 502,
    retryable: false,
    scope: 'request',
    message: 'ctx.fetch was redirected more than fetch.max_redirects times, or in a way it does not follow.',
  },
  fetch_response_too_large: {
    status: 502,
    retryable: false,
    scope: 'request',
    message: 'The response to ctx.fetch was larger than its limit.',
  },
  fetch_timeout: { status: 504, retryable: true, scope: 'request', message: 'ctx.fetch did not complete within its timeout.' },
  fetch_unreachable: {
    status: 502,
    retryable: true,
    scope: 'request',
    message: 'ctx.fetch could not reach the URL: DNS failure, refused or reset connection, TLS error.',
  },
  invalid_chat_input: {
    status: 422,
    retryable: false,
    scope: 'request',
    message: 'An llm operation needs "message" (a string) or "messages" (a list of chat messages) as input.',
  },
  command_not_found: {
    status: 500,
    retryable: false,
    scope: 'request',
    message: 'The program of a command operation could not be started.',
  },
  command_failed: { status: 500, retryable: false, scope: 'request', message: 'The program of a command operation exited with an error.' },
  command_invalid_output: {
    status: 500,
    retryable: false,
    scope: 'request',
    message: 'The program of a command operation printed no JSON result.',
  },
  command_output_too_large: {
    status: 500,
    retryable: false,
    scope: 'request',
    message: 'The program of a command operation wrote more than command.max_output to stdout.',
  },
} as const satisfies Record<string, CatalogEntry>;

/** A stable error type from the catalog. */
export type ErrorType = keyof typeof ERROR_CATALOG;

/** True when `value` is a catalog type. */
export function isErrorType(value: string): value is ErrorType {
  return Object.hasOwn(ERROR_CATALOG, value);
}

export interface ErrandErrorOptions {
  /** The input field at fault, as a dotted path (`webhook_url`, `items.3.input`). */
  field?: string | undefined;
  details?: Record<string, unknown> | undefined;
  /** Seconds a client should wait before retrying (sent as `Retry-After`). */
  retryAfterSeconds?: number | undefined;
  cause?: unknown;
}

/** An error from the catalog, carrying its HTTP status. Thrown anywhere; mapped to the envelope in `http/`. */
export class ErrandError extends Error {
  readonly type: ErrorType;
  readonly status: number;
  readonly retryable: boolean;
  readonly field: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(type: ErrorType, message?: string, options: ErrandErrorOptions = {}) {
    const entry: CatalogEntry = ERROR_CATALOG[type];
    super(message ?? entry.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ErrandError';
    this.type = type;
    this.status = entry.status;
    this.retryable = entry.retryable;
    this.field = options.field;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** The body of the JSON error envelope. */
  toEnvelope(): { error: Record<string, unknown> } {
    const error: Record<string, unknown> = { type: this.type, message: this.message };
    if (this.field !== undefined) error.field = this.field;
    if (this.details !== undefined) Object.assign(error, this.details);
    error.retryable = this.retryable;
    return { error };
  }
}
