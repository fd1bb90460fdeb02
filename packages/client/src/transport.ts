/**
 * One HTTP exchange with the server: URL and headers (key, JSON), network
 * retries where they are safe, and the error envelope turned into typed errors.
 *
 * A call is retried (up to `maxRetries` times) only when repeating it cannot do
 * anything twice: idempotent methods, and submissions that carry an
 * `Idempotency-Key` (the same key on every try, so the server answers the
 * retry with the original request). What is retried: a failed connection, and
 * `429` / `503` answers, after their `Retry-After` (else backoff with jitter).
 */
import { ErrandApiError, ErrandNetworkError, ErrandTimeoutError } from './errors.js';
import { abortReason, backoffDelay, parseRetryAfter, sleep } from './timing.js';

/** Retries after a network error or 429/503, for safe calls. @defaultValue 2 */
export const MAX_RETRIES_DEFAULT = 2;
/** The longest `Retry-After` honoured before a retry; a longer one is surfaced as the error instead. */
const RETRY_AFTER_MAX_MS = 60_000;
/** Per-call time limit for ordinary calls (not sync submissions, long-polls or streams), ms. @defaultValue 30000 */
export const REQUEST_TIMEOUT_DEFAULT_MS = 30_000;

export interface TransportOptions {
  baseUrl: string;
  apiKey: string | undefined;
  fetch: typeof fetch;
  maxRetries: number;
  headers: Record<string, string>;
  requestTimeoutMs: number;
  /** Backoff between network retries. */
  retryInitialMs: number;
}

export interface CallOptions {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined> | undefined;
  body?: unknown;
  headers?: Record<string, string | undefined> | undefined;
  signal?: AbortSignal | undefined;
  /** Whether a network error / 429 / 503 may be retried. */
  safe: boolean;
  /**
   * Time limit for this call, ms: a number, `'none'` (sync submissions, streams: they are bounded by
   * the server or by the caller's signal), or the client's default when omitted.
   */
  timeoutMs?: number | 'none' | undefined;
  /** Statuses that are not errors besides 2xx (e.g. 304). */
  accept?: number[] | undefined;
  /** Leave the body unread (event streams). */
  raw?: boolean | undefined;
}

export interface CallResult<T> {
  status: number;
  headers: Headers;
  /** The parsed JSON body; undefined for an empty body, 304/204, or `raw` calls. */
  body: T;
  response: Response;
}

export class Transport {
  constructor(readonly options: TransportOptions) {}

  url(path: string, query?: CallOptions['query']): string {
    const url = new URL(path.replace(/^\//, ''), this.options.baseUrl.endsWith('/') ? this.options.baseUrl : `${this.options.baseUrl}/`);
    for (const [name, value] of Object.entries(query ?? {})) if (value !== undefined) url.searchParams.set(name, String(value));
    return url.toString();
  }

  async call<T>(call: CallOptions): Promise<CallResult<T>> {
    const url = this.url(call.path, call.query);
    const headers: Record<string, string> = { accept: call.raw ? 'text/event-stream' : 'application/json', ...this.options.headers };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    for (const [name, value] of Object.entries(call.headers ?? {})) if (value !== undefined) headers[name.toLowerCase()] = value;
    let body: string | undefined;
    if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      headers['content-type'] = 'application/json';
    }
    const maxRetries = call.safe ? this.options.maxRetries : 0;
    for (let attempt = 0; ; attempt++) {
      const timeoutMs = call.timeoutMs === 'none' ? undefined : (call.timeoutMs ?? this.options.requestTimeoutMs);
      const timeout = timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs);
      const signals = [call.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
      const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
      let response: Response;
      try {
        response = await this.options.fetch(url, { method: call.method, headers, body, signal });
      } catch (err) {
        if (call.signal?.aborted) throw abortReason(call.signal);
        const timedOut = timeout?.aborted === true;
        if (attempt < maxRetries) {
          await sleep(backoffDelay(attempt, { initialMs: this.options.retryInitialMs, maxMs: 5_000 }), call.signal);
          continue;
        }
        if (timedOut) {
          throw new ErrandTimeoutError(`${call.method} ${url} got no answer within ${timeoutMs} ms`, { timeoutMs: timeoutMs ?? 0 });
        }
        throw new ErrandNetworkError('network_error', `${call.method} ${url} failed: ${describe(err)}`, { cause: err });
      }
      const ok = (response.status >= 200 && response.status < 300) || (call.accept ?? []).includes(response.status);
      if (ok) {
        if (call.raw) return { status: response.status, headers: response.headers, body: undefined as T, response };
        return { status: response.status, headers: response.headers, body: (await readJson(response, call, url)) as T, response };
      }
      const error = await toApiError(response, url, call.method);
      const retryAfterMs = error instanceof ErrandApiError ? error.retryAfterMs : undefined;
      const retryable = (response.status === 429 || response.status === 503) && (retryAfterMs ?? 0) <= RETRY_AFTER_MAX_MS;
      if (retryable && attempt < maxRetries) {
        await sleep(retryAfterMs ?? backoffDelay(attempt, { initialMs: this.options.retryInitialMs, maxMs: 5_000 }), call.signal);
        continue;
      }
      throw error;
    }
  }
}

async function readJson(response: Response, call: CallOptions, url: string): Promise<unknown> {
  if (response.status === 204 || response.status === 304 || call.method === ('HEAD' as string)) return undefined;
  const text = await response.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ErrandNetworkError(
      'invalid_response',
      `${call.method} ${url} answered ${response.status} with a body that is not JSON: ${excerpt(text)}`,
      { cause: err, status: response.status },
    );
  }
}

/** The error envelope as an {@link ErrandApiError}; anything else as `invalid_response`. */
export async function toApiError(response: Response, url: string, method: string): Promise<ErrandApiError | ErrandNetworkError> {
  const text = await response.text().catch(() => '');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const envelope = (parsed as { error?: unknown } | undefined)?.error;
  if (typeof envelope !== 'object' || envelope === null || typeof (envelope as { type?: unknown }).type !== 'string') {
    return new ErrandNetworkError(
      'invalid_response',
      `${method} ${url} answered ${response.status} without the JSON error envelope: ${excerpt(text)}`,
      {
        status: response.status,
      },
    );
  }
  const e = envelope as Record<string, unknown>;
  return new ErrandApiError({
    status: response.status,
    type: String(e.type),
    message: typeof e.message === 'string' ? e.message : '',
    field: typeof e.field === 'string' ? e.field : undefined,
    requestId: typeof e.request_id === 'string' ? e.request_id : (response.headers.get('x-request-id') ?? undefined),
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    retryable: typeof e.retryable === 'boolean' ? e.retryable : undefined,
    body: parsed,
  });
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat === '' ? '(empty)' : JSON.stringify(flat.length > 120 ? `${flat.slice(0, 120)}…` : flat);
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const message = err instanceof Error ? err.message : String(err);
  return cause?.code ? `${message} (${cause.code})` : cause?.message ? `${message} (${cause.message})` : message;
}
