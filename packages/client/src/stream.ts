/**
 * Follows a Server-Sent Events endpoint across dropped connections: when the
 * stream breaks (reset, cut off as a slow consumer, idle for too long, or
 * simply ended before the last event), it reconnects after a short backoff,
 * sending `Last-Event-ID` so the server resumes right after the last event
 * received — nothing lost, nothing repeated. Gives up with `network_error`
 * after `maxReconnects` reconnects in a row without receiving an event.
 */
import { ErrandApiError, ErrandNetworkError } from './errors.js';
import { readSse, type SseMessage } from './sse.js';
import { abortReason, backoffDelay, sleep } from './timing.js';
import type { Transport } from './transport.js';

export interface FollowOptions {
  path: string;
  query?: Record<string, string | number | undefined>;
  /** Resume after this event id (sent as `Last-Event-ID`). */
  lastEventId?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Reconnects in a row without an event before giving up. */
  maxReconnects: number;
  /** No byte (not even a keep-alive comment) for this long counts as a dropped connection, ms. */
  idleTimeoutMs: number;
  /** True for the event after which the stream is complete. */
  isLast?: (message: SseMessage) => boolean;
  /**
   * Opens the first connection instead of a `GET` (streaming chat `POST`s);
   * its stream is followed like the others. Reconnects always `GET` `path`.
   */
  first?: ((signal: AbortSignal) => Promise<Response>) | undefined;
  /**
   * Called before each reconnect; may change the path (streaming chat learns its request id from the stream)
   * or open the next connection itself again (`first`).
   */
  beforeReconnect?: () => { path: string; first?: ((signal: AbortSignal) => Promise<Response>) | undefined } | undefined;
}

/** Reconnect backoff: 100 ms doubling to 5 s, with jitter. */
const RECONNECT_INITIAL_MS = 100;
const RECONNECT_MAX_MS = 5_000;

export async function* followSse(transport: Transport, options: FollowOptions): AsyncGenerator<SseMessage> {
  let lastEventId = options.lastEventId;
  let path = options.path;
  let failures = 0;
  let first = options.first;
  for (;;) {
    if (options.signal?.aborted) throw abortReason(options.signal);
    const connection = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, connection.signal]) : connection.signal;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const arm = (): void => {
      clearTimeout(idle);
      idle = setTimeout(
        () => connection.abort(new ErrandNetworkError('network_error', `no data for ${options.idleTimeoutMs} ms on ${path}`)),
        options.idleTimeoutMs,
      );
    };
    let dropped: unknown;
    try {
      arm();
      let response: Response;
      if (first) {
        response = await first(signal);
        first = undefined;
      } else {
        const answer = await transport.call({
          method: 'GET',
          path,
          query: options.query,
          headers: { 'last-event-id': lastEventId },
          signal,
          safe: false,
          timeoutMs: 'none',
          raw: true,
          accept: [204],
        });
        response = answer.response;
      }
      if (response.status === 204) return; // resumed after the last event: nothing more will come
      const type = response.headers.get('content-type') ?? '';
      if (!type.includes('text/event-stream') || !response.body) {
        await response.body?.cancel().catch(() => {});
        throw new ErrandNetworkError(
          'invalid_response',
          `${path} answered ${response.status} ${type || '(no content type)'}, not an event stream`,
          {
            status: response.status,
          },
        );
      }
      for await (const message of readSse(response.body, arm)) {
        if (message.hasId) lastEventId = message.lastEventId;
        failures = 0;
        yield message;
        if (options.signal?.aborted) throw abortReason(options.signal);
        if (options.isLast?.(message)) return;
      }
      dropped = new ErrandNetworkError('network_error', `${path}: the stream ended before its last event`);
    } catch (err) {
      if (options.signal?.aborted) throw abortReason(options.signal);
      if (!isDrop(err)) throw err;
      dropped = err;
    } finally {
      clearTimeout(idle);
      connection.abort();
    }
    failures++;
    if (failures > options.maxReconnects) {
      throw new ErrandNetworkError('network_error', `${path}: gave up after ${options.maxReconnects} reconnects in a row`, {
        cause: dropped,
      });
    }
    const retryAfterMs = dropped instanceof ErrandApiError ? dropped.retryAfterMs : undefined;
    await sleep(retryAfterMs ?? backoffDelay(failures - 1, { initialMs: RECONNECT_INITIAL_MS, maxMs: RECONNECT_MAX_MS }), options.signal);
    const next = options.beforeReconnect?.();
    if (next) {
      path = next.path;
      first = next.first;
    }
  }
}

/** A broken connection (worth a reconnect), as opposed to an answer that will not change (4xx, not a stream). */
function isDrop(err: unknown): boolean {
  if (err instanceof ErrandApiError) return err.status === 429 || err.status === 503;
  if (err instanceof ErrandNetworkError) return err.type === 'network_error';
  return true; // fetch's TypeError ("terminated", "fetch failed"), an aborted read
}
