/**
 * Every error the SDK throws extends {@link ErrandError}; branch on the class
 * or on `type`, never on the message.
 */
import type { ErrorBody, StatusResource } from './types.js';

/** The base class: `type` is a stable code (the server's error type for {@link ErrandApiError}). */
export class ErrandError extends Error {
  readonly type: string;

  constructor(type: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.type = type;
    this.name = new.target.name;
  }
}

export interface ErrandApiErrorInit {
  status: number;
  type: string;
  message: string;
  field?: string | undefined;
  requestId?: string | undefined;
  retryAfterMs?: number | undefined;
  retryable?: boolean | undefined;
  body: unknown;
}

/** The server answered with its JSON error envelope (`{"error": {"type", "message", "field"?, …}}`). */
export class ErrandApiError extends ErrandError {
  /** The HTTP status code. */
  readonly status: number;
  /** The input field at fault (`message`, `wait`, `Idempotency-Key`, …), when the server names one. */
  readonly field: string | undefined;
  /** The request the error is about (`request_id` in the envelope, else the `X-Request-Id` header). */
  readonly requestId: string | undefined;
  /** The server's `Retry-After`, in milliseconds. */
  readonly retryAfterMs: number | undefined;
  /** The envelope's `retryable`. */
  readonly retryable: boolean | undefined;
  /** The parsed response body, as sent. */
  readonly body: unknown;

  constructor(init: ErrandApiErrorInit) {
    super(init.type, `${init.status} ${init.type}: ${init.message}`);
    this.status = init.status;
    this.field = init.field;
    this.requestId = init.requestId;
    this.retryAfterMs = init.retryAfterMs;
    this.retryable = init.retryable;
    this.body = init.body;
  }
}

/**
 * The server could not be reached or the exchange broke: `type` is
 * `network_error` (refused, reset, dropped stream after the reconnect budget)
 * or `invalid_response` (not the JSON or event stream the API sends; `status`
 * then says what came back).
 */
export class ErrandNetworkError extends ErrandError {
  readonly status: number | undefined;

  constructor(type: 'network_error' | 'invalid_response', message: string, options?: { cause?: unknown; status?: number | undefined }) {
    super(type, message, options);
    this.status = options?.status;
  }
}

/** A wait (or a call given `timeoutMs`) ran out of time; `type` is `timeout`. The request itself keeps running. */
export class ErrandTimeoutError extends ErrandError {
  readonly requestId: string | undefined;
  readonly timeoutMs: number;
  /** The last status resource seen, if any. */
  readonly lastStatus: StatusResource | undefined;

  constructor(message: string, init: { timeoutMs: number; requestId?: string | undefined; lastStatus?: StatusResource | undefined }) {
    super('timeout', message);
    this.timeoutMs = init.timeoutMs;
    this.requestId = init.requestId;
    this.lastStatus = init.lastStatus;
  }
}

/** `result()` of a request that ended `failed`: `error` is the request's error (`error.type` says why). */
export class RequestFailedError extends ErrandError {
  readonly requestId: string;
  readonly error: ErrorBody;
  readonly resource: StatusResource;

  constructor(resource: StatusResource) {
    const error = resource.error ?? { type: 'unknown', message: 'The request failed without an error body.', retryable: false };
    super('request_failed', `Request ${resource.request_id} failed: ${error.type}: ${error.message}`);
    this.requestId = resource.request_id;
    this.error = error;
    this.resource = resource;
  }
}

/** `result()` of a request that ended `cancelled`. */
export class RequestCancelledError extends ErrandError {
  readonly requestId: string;
  readonly resource: StatusResource;

  constructor(resource: StatusResource) {
    super('request_cancelled', `Request ${resource.request_id} was cancelled.`);
    this.requestId = resource.request_id;
    this.resource = resource;
  }
}
