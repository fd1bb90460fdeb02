import type { RequestError } from './request.js';

/**
 * How a handler steers the engine when it fails. Throw one of these (or any
 * error/object with `retryable: true|false` and an optional `type`):
 *
 * ```ts
 * throw RequestFailure.retryable('Web search API rate limit exceeded', { type: 'tool_error' });
 * throw RequestFailure.nonRetryable('Document has no text', { type: 'invalid_document' });
 * ```
 *
 * Anything else thrown is classified by {@link classifyFailure}, the one place
 * that decides whether a failure is retried.
 */
export class RequestFailure extends Error {
  readonly type: string;
  readonly retryable: boolean;
  readonly details: unknown;
  /** Overrides the backoff for the next attempt, in ms. */
  readonly retryAfterMs: number | undefined;

  private constructor(message: string, retryable: boolean, options: RequestFailureOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RequestFailure';
    this.type = options.type ?? (retryable ? 'retryable_error' : 'non_retryable_error');
    this.retryable = retryable;
    this.details = options.details;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** A failure worth another attempt (a rate limit, a flaky upstream). */
  static retryable(message: string, options?: RequestFailureOptions): RequestFailure {
    return new RequestFailure(message, true, options);
  }

  /** A failure no retry can fix (bad input, a missing resource). */
  static nonRetryable(message: string, options?: RequestFailureOptions): RequestFailure {
    return new RequestFailure(message, false, options);
  }
}

export interface RequestFailureOptions {
  /** Stable machine-readable type shown to callers, e.g. `tool_error`. */
  type?: string;
  details?: unknown;
  retryAfterMs?: number;
  cause?: unknown;
}

/** The outcome of classifying a thrown value. */
export interface ClassifiedFailure {
  error: RequestError;
  retryAfterMs: number | undefined;
}

/** Errors that are programming mistakes: retrying runs the same bug again. */
const BUG_ERRORS = new Set(['TypeError', 'ReferenceError', 'SyntaxError', 'RangeError']);
const TYPE_PATTERN = /^[a-z][a-z0-9_.-]{0,63}$/;

/**
 * Decides whether a thrown value is retried. The rule (documented in docs/operations.md):
 *
 * 1. A value with a boolean `retryable` property (a {@link RequestFailure}, an Error
 *    with the property set, or a plain object) is retried exactly when it is `true`.
 * 2. Otherwise a `TypeError`, `ReferenceError`, `SyntaxError` or `RangeError` is a bug
 *    in the handler and is not retried — except a network failure that Node reports
 *    as a TypeError (`fetch failed`, whose `cause` carries a system error `code`).
 * 3. Any other unexpected error is treated as transient and retried.
 *
 * The error `type` is the value's own `type` (when it is a short lowercase identifier)
 * or `handler_error`.
 *
 * The recorded error is shown to the tenant, so only a failure written for them
 * (one with a boolean `retryable`, as rule 1) keeps its `message` and `details`.
 * Anything else thrown (a `TypeError`, a driver or `fetch` error) can name
 * files, hosts, upstream URLs or secrets in its message and stack: the tenant
 * gets a plain message naming only the error's kind, and the runner logs the
 * thrown value in full under the request id.
 */
export function classifyFailure(thrown: unknown): ClassifiedFailure {
  const obj = typeof thrown === 'object' && thrown !== null ? (thrown as Record<string, unknown>) : undefined;
  const deliberate = typeof obj?.retryable === 'boolean';
  const message = deliberate ? messageOf(thrown) : unexpectedMessage(thrown);
  const ownType = typeof obj?.type === 'string' && TYPE_PATTERN.test(obj.type) ? obj.type : undefined;
  let retryable: boolean;
  if (typeof obj?.retryable === 'boolean') retryable = obj.retryable;
  else retryable = !(thrown instanceof Error && BUG_ERRORS.has(thrown.name) && !isNetworkError(thrown));
  const retryAfterMs =
    typeof obj?.retryAfterMs === 'number' && Number.isFinite(obj.retryAfterMs) && obj.retryAfterMs >= 0 ? obj.retryAfterMs : undefined;
  const error: RequestError = { type: ownType ?? 'handler_error', message, retryable };
  const details = deliberate ? obj?.details : undefined;
  if (details !== undefined && isJsonSafe(details)) error.details = details;
  return { error, retryAfterMs };
}

/** `fetch()` rejects with `TypeError: fetch failed` whose cause is the system error (ECONNREFUSED, ENOTFOUND…). */
function isNetworkError(error: Error): boolean {
  const cause = (error as { cause?: unknown }).cause;
  return typeof cause === 'object' && cause !== null && typeof (cause as { code?: unknown }).code === 'string';
}

/** Error kinds named to the tenant; any other name (a library's class, something made up) is just "an error". */
const PLAIN_ERROR_NAMES = new Set([
  'Error',
  'TypeError',
  'ReferenceError',
  'SyntaxError',
  'RangeError',
  'AggregateError',
  'AbortError',
  'TimeoutError',
]);

/** What the tenant reads for a failure nobody wrote for them: its kind and where the details are, nothing of its text. */
function unexpectedMessage(thrown: unknown): string {
  const kind = thrown instanceof Error && PLAIN_ERROR_NAMES.has(thrown.name) ? thrown.name : 'an error';
  const network = thrown instanceof Error && isNetworkError(thrown) ? ' (a network failure)' : '';
  return `The operation handler failed with ${kind}${network}; the details are in the server log under this request's id.`;
}

function messageOf(thrown: unknown): string {
  if (thrown instanceof Error) return thrown.message || thrown.name;
  if (typeof thrown === 'string') return thrown;
  if (typeof thrown === 'object' && thrown !== null && typeof (thrown as { message?: unknown }).message === 'string') {
    return (thrown as { message: string }).message;
  }
  try {
    return `Handler threw ${JSON.stringify(thrown)}`;
  } catch {
    return 'Handler threw a value that is not an Error';
  }
}

function isJsonSafe(value: unknown): boolean {
  try {
    return JSON.stringify(value) !== undefined;
  } catch {
    return false;
  }
}
