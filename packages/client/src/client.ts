/**
 * `Errand`: the client. Submits work (`submit`, `chat`, `chatAsync`,
 * `trigger`, `batch`), makes handles for existing requests, lists them and
 * tails the live events of all of them. Zero dependencies: global `fetch`,
 * `crypto.randomUUID`, `AbortSignal` (Node.js >= 20 and browsers).
 */
import { BatchHandle } from './batch.js';
import { ErrandError } from './errors.js';
import { RequestHandle, toEventMessage, type Callbacks, type WaitOptions } from './handle.js';
import type { ClientSettings } from './settings.js';
import { followSse } from './stream.js';
import { parseRetryAfter } from './timing.js';
import { MAX_RETRIES_DEFAULT, REQUEST_TIMEOUT_DEFAULT_MS, toApiError, Transport, type CallResult } from './transport.js';
import type { AcceptedResource, BatchStatus, ListPage, RequestEventMessage, RequestStatus, StatusResource, TailEvent } from './types.js';

/** Where the client talks to when neither `baseUrl` nor `ERRAND_URL` says. */
export const BASE_URL_DEFAULT = 'http://127.0.0.1:8001';

export interface ErrandOptions {
  /** The server. @defaultValue `ERRAND_URL` (where `process.env` exists), else `http://127.0.0.1:8001` */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer …`. @defaultValue `ERRAND_API_KEY` (where `process.env` exists) */
  apiKey?: string;
  /** @defaultValue `globalThis.fetch` */
  fetch?: typeof fetch;
  /** Retries of safe calls after a network error or a `429`/`503`. @defaultValue 2 */
  maxRetries?: number;
  /** Extra headers on every call. */
  headers?: Record<string, string>;
  /** Time limit of an ordinary call, ms (sync submissions and streams are not limited by it). @defaultValue 30000 */
  requestTimeoutMs?: number;
  /** Long-poll in `wait()` (`?wait=`); `false` polls with backoff. @defaultValue true */
  longPoll?: boolean;
  /** Seconds each long-poll asks the server to hold (it clamps to `server.long_poll_max`). @defaultValue 20 */
  longPollSeconds?: number;
  /** Polling backoff without long-poll: first delay, ms. @defaultValue 500 */
  pollInitialMs?: number;
  /** Polling backoff without long-poll: longest delay, ms. @defaultValue 10000 */
  pollMaxMs?: number;
  /** Event streams: reconnects in a row without an event before giving up. @defaultValue 10 */
  maxReconnects?: number;
  /** Event streams: silence (not even a keep-alive) after which the connection counts as dropped, ms. @defaultValue 45000 */
  idleTimeoutMs?: number;
}

export interface SubmitOptions extends Callbacks {
  /** `sync`: wait for the outcome (up to the server's wait limit); `async`: `202` at once; `auto` (default): the server decides. */
  mode?: 'sync' | 'async' | 'auto';
  /** Where the outcome is POSTed, signed (docs/webhooks.md). */
  webhookUrl?: string | null;
  /** Sent as `Idempotency-Key`. @defaultValue a new `crypto.randomUUID()` per call */
  idempotencyKey?: string;
  /** −100..100, higher runs first. */
  priority?: number;
  /** Delayed start, seconds from now. */
  delaySeconds?: number;
  /** Delayed start: a date, an ISO 8601 string or epoch ms. */
  runAt?: Date | string | number;
  /** Stored on the request (chat and triggers; the operations endpoint has no place for it). */
  metadata?: Record<string, unknown>;
  /** Aborts the call (and the wait of `chat()` / the callbacks). */
  signal?: AbortSignal;
  /** `chat()`: the longest wait in all, ms; callbacks: the longest background wait. */
  timeoutMs?: number;
}

export interface ChatOptions extends SubmitOptions {
  /** More fields for the operation's input besides `message` (for example `user_id`). */
  input?: Record<string, unknown>;
}

export interface BatchOptions {
  /** Most items of the batch running at once. */
  concurrency?: number;
  webhookUrl?: string | null;
  metadata?: Record<string, unknown>;
  priority?: number;
  /** Sent as `Idempotency-Key`; the batch endpoint does not replay on it yet, so `batch()` is never retried. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface ListOptions {
  /** Only these states. */
  status?: RequestStatus | RequestStatus[];
  /** Only this operation. */
  operation?: string;
  /** Page size (1–100). */
  limit?: number;
  signal?: AbortSignal;
}

export interface TailOptions {
  signal?: AbortSignal;
  /** Only this operation's events. */
  operation?: string;
}

/** One event of `chatStream()`: first `request` (the new request's id), then output chunks and the outcome. */
export type ChatStreamEvent =
  | { id: undefined; event: 'request'; data: { request_id: string; status: RequestStatus; location: string; events: string } }
  | RequestEventMessage;

export class Errand {
  private readonly settings: ClientSettings;

  constructor(options: ErrandOptions = {}) {
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
    const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.settings = {
      transport: new Transport({
        baseUrl: options.baseUrl ?? env.ERRAND_URL ?? BASE_URL_DEFAULT,
        apiKey: options.apiKey ?? env.ERRAND_API_KEY,
        fetch: fetchImpl,
        maxRetries: options.maxRetries ?? MAX_RETRIES_DEFAULT,
        headers: lowerCaseKeys(options.headers ?? {}),
        requestTimeoutMs: options.requestTimeoutMs ?? REQUEST_TIMEOUT_DEFAULT_MS,
        retryInitialMs: 200,
      }),
      longPoll: options.longPoll ?? true,
      longPollSeconds: options.longPollSeconds ?? 20,
      pollInitialMs: options.pollInitialMs ?? 500,
      pollMaxMs: options.pollMaxMs ?? 10_000,
      maxReconnects: options.maxReconnects ?? 10,
      idleTimeoutMs: options.idleTimeoutMs ?? 45_000,
    };
  }

  /** The server's base URL. */
  get baseUrl(): string {
    return this.settings.transport.options.baseUrl;
  }

  /** `POST /v1/operations/{operation}`: the input is the body. */
  async submit(operation: string, input: unknown, options: SubmitOptions = {}): Promise<RequestHandle> {
    if (options.metadata !== undefined) {
      throw new ErrandError(
        'invalid_option',
        'submit(): the operations endpoint takes no metadata; use trigger() or chat() to store metadata.',
      );
    }
    const key = options.idempotencyKey ?? crypto.randomUUID();
    const answer = await this.settings.transport.call<StatusResource | AcceptedResource>({
      method: 'POST',
      path: `/v1/operations/${encodeURIComponent(operation)}`,
      query: {
        mode: options.mode === 'sync' || options.mode === 'async' ? options.mode : undefined,
        webhook_url: options.webhookUrl ?? undefined,
        priority: options.priority,
        delay_seconds: options.delaySeconds,
        run_at: runAtOf(options.runAt),
      },
      body: input === undefined ? {} : input,
      headers: { 'idempotency-key': key },
      signal: options.signal,
      safe: true,
      timeoutMs: options.mode === 'async' ? undefined : (options.timeoutMs ?? 'none'),
    });
    return this.handleFrom(answer, key, options);
  }

  /** `POST /v1/triggers/{name}` with the envelope `{data, …}` (async unless `mode: 'sync'`). */
  async trigger(name: string, data: unknown, options: SubmitOptions = {}): Promise<RequestHandle> {
    const key = options.idempotencyKey ?? crypto.randomUUID();
    const answer = await this.settings.transport.call<StatusResource | AcceptedResource>({
      method: 'POST',
      path: `/v1/triggers/${encodeURIComponent(name)}`,
      body: {
        data: data === undefined ? {} : data,
        use_async: options.mode === 'sync' ? false : options.mode === 'async' ? true : undefined,
        ...controls(options),
      },
      headers: { 'idempotency-key': key },
      signal: options.signal,
      safe: true,
      timeoutMs: options.mode === 'sync' ? (options.timeoutMs ?? 'none') : undefined,
    });
    return this.handleFrom(answer, key, options);
  }

  /** `POST /v1/chat` with `"async": true`: answered `202` at once. */
  chatAsync(message: string, options: ChatOptions = {}): Promise<RequestHandle> {
    return this.postChat(message, { ...options, mode: 'async' });
  }

  /**
   * `POST /v1/chat`, the server deciding sync or async (or `mode`); resolves
   * with the terminal status resource whatever the outcome, waiting for it
   * if the server answered `202`.
   */
  async chat(message: string, options: ChatOptions = {}): Promise<StatusResource> {
    const started = Date.now();
    const { onProgress, onComplete, onError, ...rest } = options;
    const handle = await this.postChat(message, rest);
    const remaining = options.timeoutMs === undefined ? undefined : Math.max(0, options.timeoutMs - (Date.now() - started));
    const wait: WaitOptions = { onProgress };
    if (remaining !== undefined) wait.timeoutMs = remaining;
    if (options.signal) wait.signal = options.signal;
    try {
      const status = await handle.wait(wait);
      if (status.status === 'completed') onComplete?.(status);
      return status;
    } catch (err) {
      onError?.(err);
      throw err;
    }
  }

  /**
   * `POST /v1/chat` with `"stream": true`: the `request` event, the output
   * chunks and the outcome. If the connection drops, it resumes on the
   * request's events endpoint after the last chunk received (`status` and
   * `progress` events are left out there too, as on the chat stream).
   */
  async *chatStream(message: string, options: ChatOptions = {}): AsyncGenerator<ChatStreamEvent> {
    const key = options.idempotencyKey ?? crypto.randomUUID();
    const { transport } = this.settings;
    let requestId: string | undefined;
    const body = JSON.stringify({ ...options.input, message, stream: true, ...controls(options) });
    const post = async (signal: AbortSignal): Promise<Response> => {
      const headers: Record<string, string> = {
        ...transport.options.headers,
        'content-type': 'application/json',
        accept: 'text/event-stream',
        'idempotency-key': key,
      };
      if (transport.options.apiKey) headers.authorization = `Bearer ${transport.options.apiKey}`;
      const response = await transport.options.fetch(transport.url('/v1/chat'), { method: 'POST', headers, body, signal });
      if (!response.ok) throw await toApiError(response, transport.url('/v1/chat'), 'POST');
      return response;
    };
    const stream = followSse(transport, {
      path: '/v1/chat',
      signal: options.signal,
      maxReconnects: this.settings.maxReconnects,
      idleTimeoutMs: this.settings.idleTimeoutMs,
      isLast: (m) => m.event === 'completed' || m.event === 'failed' || m.event === 'cancelled',
      first: post,
      // Dropped before the `request` event: post again with the same key, which gets the same request, streamed
      // from its start. After it: resume on the request's events endpoint.
      beforeReconnect: () =>
        requestId === undefined ? { path: '/v1/chat', first: post } : { path: `/v1/requests/${encodeURIComponent(requestId)}/events` },
    });
    for await (const m of stream) {
      if (m.event === 'request') {
        const data = JSON.parse(m.data) as { request_id: string; status: RequestStatus; location: string; events: string };
        requestId = data.request_id;
        yield { id: undefined, event: 'request', data };
        continue;
      }
      const event = toEventMessage(m.lastEventId, m.event, m.data, '/v1/chat');
      // After a resume the events endpoint also sends progress and status; the chat stream shows only new attempts.
      if (event.event === 'progress') continue;
      if (event.event === 'status' && !(event.data.status === 'pending' && event.id > 1)) continue;
      yield event;
    }
  }

  /** `POST /v1/batches`: every input becomes a request; never retried (see {@link BatchOptions.idempotencyKey}). */
  async batch(operation: string, inputs: unknown[], options: BatchOptions = {}): Promise<BatchHandle> {
    const answer = await this.settings.transport.call<BatchStatus>({
      method: 'POST',
      path: '/v1/batches',
      body: {
        operation,
        items: inputs,
        concurrency: options.concurrency,
        webhook_url: options.webhookUrl,
        metadata: options.metadata,
        priority: options.priority,
      },
      headers: { 'idempotency-key': options.idempotencyKey },
      signal: options.signal,
      safe: false,
    });
    const handles = (answer.body.request_ids ?? []).map((id) => this.request(id));
    return new BatchHandle(this.settings.transport, answer.body, handles, {
      initialMs: this.settings.pollInitialMs,
      maxMs: this.settings.pollMaxMs,
    });
  }

  /** A handle for an existing request id (no network call). */
  request(id: string): RequestHandle {
    return new RequestHandle(this.settings, id);
  }

  /** A handle for an existing batch: reads its status once. */
  async getBatch(id: string, options: { signal?: AbortSignal } = {}): Promise<BatchHandle> {
    const answer = await this.settings.transport.call<BatchStatus>({
      method: 'GET',
      path: `/v1/batches/${encodeURIComponent(id)}`,
      signal: options.signal,
      safe: true,
    });
    const ids = (answer.body.items ?? []).map((item) => item.request_id);
    return new BatchHandle(
      this.settings.transport,
      { ...answer.body, request_ids: ids },
      ids.map((i) => this.request(i)),
      {
        initialMs: this.settings.pollInitialMs,
        maxMs: this.settings.pollMaxMs,
      },
    );
  }

  /** `GET /v1/requests/{id}` (the seeds' name). */
  getRequestStatus(id: string, options: { signal?: AbortSignal } = {}): Promise<StatusResource> {
    return this.request(id).status(options);
  }

  /** Cancels, then reads the status resource (the seeds' name). */
  cancelRequest(id: string, options: { signal?: AbortSignal } = {}): Promise<StatusResource> {
    return this.request(id).cancel(options);
  }

  /** `GET /v1/requests`, newest first, page after page (`next_cursor`) until the last. */
  async *list(options: ListOptions = {}): AsyncGenerator<StatusResource> {
    const status = options.status === undefined ? undefined : Array.isArray(options.status) ? options.status.join(',') : options.status;
    let cursor: string | undefined;
    const seen = new Set<string>();
    for (;;) {
      const answer = await this.settings.transport.call<ListPage>({
        method: 'GET',
        path: '/v1/requests',
        query: { status, operation: options.operation, limit: options.limit, cursor },
        signal: options.signal,
        safe: true,
      });
      yield* answer.body.data;
      const next = answer.body.next_cursor;
      if (!answer.body.has_more || next === null) return;
      if (seen.has(next)) throw new ErrandError('invalid_response', `GET /v1/requests gave the cursor ${next} twice; stopping.`);
      seen.add(next);
      cursor = next;
    }
  }

  /**
   * `GET /v1/events`: live events of every request the key may see, until the
   * signal aborts. Reconnects when the connection drops; the stream is live
   * only, so events during a gap are not replayed (a request's own `events()` is).
   */
  async *tail(options: TailOptions = {}): AsyncGenerator<TailEvent> {
    const stream = followSse(this.settings.transport, {
      path: '/v1/events',
      query: { operation: options.operation },
      signal: options.signal,
      maxReconnects: this.settings.maxReconnects,
      idleTimeoutMs: this.settings.idleTimeoutMs,
    });
    for await (const m of stream) {
      try {
        yield JSON.parse(m.data) as TailEvent;
      } catch (err) {
        if (err instanceof SyntaxError)
          throw new ErrandError('invalid_response', 'GET /v1/events sent an event whose data is not JSON', { cause: err });
        throw err;
      }
    }
  }

  private postChat(message: string, options: ChatOptions): Promise<RequestHandle> {
    const key = options.idempotencyKey ?? crypto.randomUUID();
    return this.settings.transport
      .call<StatusResource | AcceptedResource>({
        method: 'POST',
        path: '/v1/chat',
        body: {
          ...options.input,
          message,
          ...(options.mode === 'sync' || options.mode === 'async' ? { mode: options.mode } : {}),
          ...controls(options),
        },
        headers: { 'idempotency-key': key },
        signal: options.signal,
        safe: true,
        timeoutMs: options.mode === 'async' ? undefined : (options.timeoutMs ?? 'none'),
      })
      .then((answer) => this.handleFrom(answer, key, options));
  }

  private handleFrom(answer: CallResult<StatusResource | AcceptedResource>, key: string, options: SubmitOptions): RequestHandle {
    const body = answer.body;
    if (typeof body?.request_id !== 'string') {
      throw new ErrandError('invalid_response', `The server answered ${answer.status} without a request_id.`);
    }
    const sync = answer.status === 200;
    const handle = new RequestHandle(this.settings, body.request_id, {
      initial: sync ? (body as StatusResource) : undefined,
      accepted: sync ? undefined : (body as AcceptedResource),
      location: answer.headers.get('location') ?? undefined,
      retryAfterMs: parseRetryAfter(answer.headers.get('retry-after')),
      replayed: answer.headers.get('idempotent-replayed') === 'true',
      idempotencyKey: key,
    });
    if (options.onProgress || options.onComplete || options.onError) {
      void handle.watch({
        onProgress: options.onProgress,
        onComplete: options.onComplete,
        onError: options.onError,
        timeoutMs: options.timeoutMs,
        signal: options.signal,
      });
    }
    return handle;
  }
}

/** The body fields shared by chat and trigger envelopes. */
function controls(options: SubmitOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (options.webhookUrl !== undefined) out.webhook_url = options.webhookUrl;
  if (options.metadata !== undefined) out.metadata = options.metadata;
  if (options.priority !== undefined) out.priority = options.priority;
  if (options.delaySeconds !== undefined) out.delay_seconds = options.delaySeconds;
  const runAt = runAtOf(options.runAt);
  if (runAt !== undefined) out.run_at = runAt;
  return out;
}

function runAtOf(value: Date | string | number | undefined): string | number | undefined {
  return value instanceof Date ? value.toISOString() : value;
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}
