/**
 * A handle on one request: read it, wait for it, follow its events, cancel or
 * re-run it. Creating one makes no network call.
 */
import { ErrandNetworkError, ErrandTimeoutError, RequestCancelledError, RequestFailedError } from './errors.js';
import type { ClientSettings } from './settings.js';
import { followSse } from './stream.js';
import { abortReason, backoffDelay, parseRetryAfter, sleep } from './timing.js';
import {
  isTerminal,
  type AcceptedResource,
  type CancelAnswer,
  type Delivery,
  type DeliveryList,
  type RequestEventMessage,
  type RetryAnswer,
  type StatusResource,
} from './types.js';

export interface WaitOptions {
  /** Give up after this long (→ {@link ErrandTimeoutError}); the request keeps running. Default: no limit. */
  timeoutMs?: number;
  /** Abort the wait (→ the signal's reason); the request keeps running. */
  signal?: AbortSignal;
  /** Called with each new state seen before the end. */
  onProgress?: (status: StatusResource) => void;
  /** Override the client's `longPoll` for this wait. */
  longPoll?: boolean;
}

export interface EventsOptions {
  signal?: AbortSignal;
  /** Start after this event id (0: from the first event). */
  after?: number;
}

export interface Callbacks {
  /** Each new state before the end. */
  onProgress?: ((status: StatusResource) => void) | undefined;
  /** The request completed: its status resource, with `result`. */
  onComplete?: ((status: StatusResource) => void) | undefined;
  /** It failed ({@link RequestFailedError}), was cancelled ({@link RequestCancelledError}), or the wait broke (network, timeout). */
  onError?: ((error: unknown) => void) | undefined;
}

/** What a submission answered, when a handle comes from one. */
export interface HandleOrigin {
  initial?: StatusResource | undefined;
  accepted?: AcceptedResource | undefined;
  retryOf?: string | undefined;
  location?: string | undefined;
  retryAfterMs?: number | undefined;
  replayed?: boolean | undefined;
  idempotencyKey?: string | undefined;
}

export class RequestHandle {
  readonly id: string;
  /** The status resource a sync submission answered (`200`); undefined for a `202` or a handle made from an id. */
  readonly initial: StatusResource | undefined;
  /** The `202 Accepted` body, when that is what the submission answered. */
  readonly accepted: AcceptedResource | undefined;
  /** For a handle from `retry()`: the request it re-runs. */
  readonly retryOf: string | undefined;
  /** The `Location` the server gave (`/v1/requests/{id}` or `/v1/tasks/{id}`). */
  readonly location: string | undefined;
  /** The server's first `Retry-After`, ms. */
  readonly retryAfterMs: number | undefined;
  /** True when the server answered an earlier submission with the same `Idempotency-Key`. */
  readonly replayed: boolean;
  /** The `Idempotency-Key` the submission was sent with. */
  readonly idempotencyKey: string | undefined;
  /** Set when callbacks were given at submission: settles once they have been called. Never rejects. */
  watching: Promise<void> | undefined;

  constructor(
    private readonly settings: ClientSettings,
    id: string,
    origin: HandleOrigin = {},
  ) {
    this.id = id;
    this.initial = origin.initial;
    this.accepted = origin.accepted;
    this.retryOf = origin.retryOf;
    this.location = origin.location;
    this.retryAfterMs = origin.retryAfterMs;
    this.replayed = origin.replayed ?? false;
    this.idempotencyKey = origin.idempotencyKey;
  }

  private get path(): string {
    return `/v1/requests/${encodeURIComponent(this.id)}`;
  }

  /** `GET /v1/requests/{id}`. */
  async status(options: { signal?: AbortSignal } = {}): Promise<StatusResource> {
    const answer = await this.settings.transport.call<StatusResource>({
      method: 'GET',
      path: this.path,
      signal: options.signal,
      safe: true,
    });
    return answer.body;
  }

  /**
   * Waits until the request is terminal and resolves with its status resource,
   * whatever the outcome. Long-polls (`?wait=` with the last `ETag` as
   * `If-None-Match`) while the server holds the calls; if it answers at once
   * without a change (it does not long-poll), polls instead with exponential
   * backoff and jitter, never sooner than the server's `Retry-After`.
   */
  async wait(options: WaitOptions = {}): Promise<StatusResource> {
    if (this.initial && isTerminal(this.initial.status)) return this.initial;
    const timeout = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(Math.max(0, options.timeoutMs));
    const signals = [options.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    const { transport, longPollSeconds, pollInitialMs, pollMaxMs } = this.settings;
    const requestTimeoutMs = transport.options.requestTimeoutMs;
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    let last: StatusResource | undefined;
    let lastBody = '';
    let etag: string | undefined;
    let retryAfterMs: number | undefined;
    let longPoll = options.longPoll ?? this.settings.longPoll;
    let polls = 0;

    /** Reads once; returns true when the resource changed. */
    const read = async (waitSeconds: number | undefined): Promise<boolean> => {
      const answer = await transport.call<StatusResource>({
        method: 'GET',
        path: this.path,
        query: { wait: waitSeconds },
        headers: { 'if-none-match': etag },
        accept: [304],
        signal,
        safe: true,
        timeoutMs: waitSeconds === undefined ? undefined : waitSeconds * 1000 + requestTimeoutMs,
      });
      retryAfterMs = parseRetryAfter(answer.headers.get('retry-after'));
      if (answer.status === 304) return false;
      const body = JSON.stringify(answer.body);
      etag = answer.headers.get('etag') ?? undefined;
      if (etag === undefined) longPoll = false; // no ETag: the server cannot tell us "unchanged", so do not long-poll it
      if (body === lastBody) return false;
      lastBody = body;
      last = answer.body;
      if (!isTerminal(last.status)) options.onProgress?.(last);
      return true;
    };

    try {
      await read(undefined);
      for (;;) {
        if (last && isTerminal(last.status)) return last;
        if (longPoll) {
          const waitSeconds = Math.max(0.1, Math.min(longPollSeconds, (deadline - Date.now()) / 1000));
          const started = Date.now();
          const changed = await read(Math.round(waitSeconds * 10) / 10);
          // Answered at once with nothing new: this server (or a proxy) does not hold the call.
          if (!changed && Date.now() - started < (waitSeconds * 1000) / 2) longPoll = false;
        } else {
          const delay = Math.max(retryAfterMs ?? 0, backoffDelay(polls++, { initialMs: pollInitialMs, maxMs: pollMaxMs, factor: 1.5 }));
          await sleep(delay, signal);
          await read(undefined);
        }
      }
    } catch (err) {
      if (options.signal?.aborted) throw abortReason(options.signal);
      if (timeout?.aborted) {
        throw new ErrandTimeoutError(
          `Request ${this.id} was not finished after ${options.timeoutMs} ms (last seen: ${last?.status ?? 'nothing'}); it keeps running.`,
          { timeoutMs: options.timeoutMs!, requestId: this.id, lastStatus: last },
        );
      }
      throw err;
    }
  }

  /**
   * Waits, then resolves with the result of a completed request; a failed one
   * rejects with {@link RequestFailedError}, a cancelled one with {@link RequestCancelledError}.
   */
  async result<T = unknown>(options: WaitOptions = {}): Promise<T> {
    const status = await this.wait(options);
    if (status.status === 'completed') return status.result as T;
    if (status.status === 'cancelled') throw new RequestCancelledError(status);
    throw new RequestFailedError(status);
  }

  /**
   * The request's events (`GET /v1/requests/{id}/events`): its log replayed,
   * then live, ending after the terminal event. A dropped connection is
   * resumed with `Last-Event-ID`, so no event is lost or repeated.
   */
  async *events(options: EventsOptions = {}): AsyncGenerator<RequestEventMessage> {
    const stream = followSse(this.settings.transport, {
      path: `${this.path}/events`,
      lastEventId: options.after ? String(options.after) : undefined,
      signal: options.signal,
      maxReconnects: this.settings.maxReconnects,
      idleTimeoutMs: this.settings.idleTimeoutMs,
      isLast: (m) => m.event === 'completed' || m.event === 'failed' || m.event === 'cancelled',
    });
    for await (const message of stream) yield toEventMessage(message.lastEventId, message.event, message.data, this.path);
  }

  /** `DELETE /v1/requests/{id}`, then the status resource (now `cancelled`). A finished request → `409 request_already_finished`. */
  async cancel(options: { signal?: AbortSignal } = {}): Promise<StatusResource> {
    await this.settings.transport.call<CancelAnswer>({ method: 'DELETE', path: this.path, signal: options.signal, safe: true });
    return this.status(options);
  }

  /** `POST /v1/requests/{id}/retry`: re-runs a failed or cancelled request as a new one (the same one on every call). */
  async retry(options: { signal?: AbortSignal } = {}): Promise<RequestHandle> {
    const answer = await this.settings.transport.call<RetryAnswer>({
      method: 'POST',
      path: `${this.path}/retry`,
      signal: options.signal,
      safe: true,
    });
    return new RequestHandle(this.settings, answer.body.request_id, {
      retryOf: answer.body.retry_of,
      location: answer.headers.get('location') ?? answer.body.location,
      retryAfterMs: parseRetryAfter(answer.headers.get('retry-after')),
    });
  }

  /** `GET /v1/requests/{id}/deliveries`: the webhook deliveries, oldest first, each with its attempts. */
  async deliveries(options: { signal?: AbortSignal } = {}): Promise<Delivery[]> {
    const answer = await this.settings.transport.call<DeliveryList>({
      method: 'GET',
      path: `${this.path}/deliveries`,
      signal: options.signal,
      safe: true,
    });
    return answer.body.data;
  }

  /** Waits in the background and calls the callbacks; the promise never rejects (errors go to `onError`). */
  watch(callbacks: Callbacks & Pick<WaitOptions, 'timeoutMs' | 'signal'>): Promise<void> {
    const settled = (async () => {
      try {
        const status = await this.wait({ timeoutMs: callbacks.timeoutMs, signal: callbacks.signal, onProgress: callbacks.onProgress });
        if (status.status === 'completed') callbacks.onComplete?.(status);
        else callbacks.onError?.(status.status === 'cancelled' ? new RequestCancelledError(status) : new RequestFailedError(status));
      } catch (err) {
        callbacks.onError?.(err);
      }
    })();
    this.watching = settled;
    return settled;
  }
}

/** One SSE message of a request's stream, with its JSON data parsed. */
export function toEventMessage(id: string, event: string, data: string, path: string): RequestEventMessage {
  try {
    return { id: Number(id), event, data: JSON.parse(data) as unknown } as RequestEventMessage;
  } catch (err) {
    throw new ErrandNetworkError('invalid_response', `${path}/events sent an event whose data is not JSON`, { cause: err });
  }
}
