/**
 * The dashboard's only way to the server: the public `/v1` API, called with
 * the key the user entered. Errors become `ApiError`s whose `plain` text is
 * what the page shows — a sentence, not a status code dump.
 */

import type { Delivery, ListPage as ClientListPage, StatusResource } from '@errand/client';

// The wire shapes are @errand/client's (checked against the OpenAPI document by the server's tests);
// the dashboard imports them as types only, so none of the SDK's code is bundled for them.
export { isTerminal, REQUEST_STATUSES } from '@errand/client';
export type { RequestStatus } from '@errand/client';
/** The status resource (docs/api.md#the-status-resource). */
export type RequestView = StatusResource;
export type ListPage = ClientListPage;
export type DeliveryView = Delivery;

interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

export interface OperationStatsView {
  operation: string;
  pending: number;
  processing: number;
  accepted: number;
  completed: number;
  failed: number;
  cancelled: number;
  success_rate: number | null;
  throughput_per_minute: number;
  duration_ms: Percentiles | null;
  run_ms: Percentiles | null;
  buckets: { start: string; completed: number; failed: number; cancelled: number; queued: number }[];
}

export interface StatsView {
  caller: { admin: boolean; tenant: string | null };
  window: { from: string; to: string; minutes: number; bucket_seconds: number };
  scanned: number;
  truncated: boolean;
  operations: OperationStatsView[];
}

/** An answer that was not 2xx, or no answer at all (`status` 0). */
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly plain: string,
  ) {
    super(message);
  }
}

/** What to show for an API error: plain words, with the server's message when it has one. */
function plainWords(status: number, type: string, message: string): string {
  if (status === 0) return 'The Errand server cannot be reached. Check that it is running, then try again.';
  if (status === 401) return 'This key was not accepted (401). Check the key and sign in again.';
  if (status === 403) return 'This key may not do that (403). Use an admin key, or a key of the right tenant.';
  if (type === 'request_not_found') return 'There is no request with this id that this key may see.';
  if (status >= 500) return `The server failed (${status}): ${message}`;
  return message || `The server answered ${status}.`;
}

export interface Api {
  get<T>(path: string): Promise<T>;
  send<T>(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<T>;
  /** Headers for a streaming fetch (SSE) made elsewhere. */
  headers(): Record<string, string>;
}

/** An API client for `key` (empty: no key, for a server with auth off). `onUnauthorized` runs on any 401. */
export function createApi(key: string, onUnauthorized: () => void): Api {
  const headers = (): Record<string, string> => (key === '' ? {} : { authorization: `Bearer ${key}` });
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        headers: { ...headers(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? null : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (cause) {
      throw new ApiError(0, 'network', String(cause), plainWords(0, 'network', ''));
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      parsed = null;
    }
    if (!res.ok) {
      const envelope = (parsed as { error?: { type?: unknown; message?: unknown } } | null)?.error;
      const type = typeof envelope?.type === 'string' ? envelope.type : 'http_error';
      const message = typeof envelope?.message === 'string' ? envelope.message : text.slice(0, 200);
      if (res.status === 401) onUnauthorized();
      throw new ApiError(res.status, type, message, plainWords(res.status, type, message));
    }
    return parsed as T;
  }
  return {
    get: (path) => call('GET', path),
    send: (method, path, body) => call(method, path, body),
    headers,
  };
}

/** `message` of anything thrown, preferring an ApiError's plain words. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) return err.plain;
  return err instanceof Error ? err.message : String(err);
}
