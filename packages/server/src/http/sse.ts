/**
 * Server-Sent Events over a Fastify reply: the one writer every streaming
 * endpoint uses (request events, streaming chat, OpenAI-compatible streams).
 *
 * - The reply is hijacked: Fastify no longer serialises or ends it.
 * - `send()` writes one event (`id:`, `event:`, one `data:` line per line of
 *   data, blank line).
 * - A comment line (`: keep-alive`) every `keepAliveMs` keeps proxies from
 *   closing an idle stream; its timer comes from the injected clock.
 * - **Slow consumers are cut off, not buffered:** when more than
 *   `maxBufferedBytes` are waiting to be written to the socket, the stream is
 *   closed (the client resumes with `Last-Event-ID`), so a client that never
 *   reads cannot grow the server's memory without bound.
 */
import type { FastifyReply } from 'fastify';
import type { Clock, TimerHandle } from '../clock/index.js';

export interface SseEvent {
  id?: string | number | undefined;
  event?: string | undefined;
  /** The payload; usually JSON. Newlines are sent as several `data:` lines. */
  data: string;
}

export interface SseOptions {
  clock: Clock;
  /** Interval of `: keep-alive` comments, ms (default 15 s). */
  keepAliveMs?: number;
  /** Bytes allowed to wait in the socket's buffer before the stream is cut (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Extra response headers (e.g. the request id). */
  headers?: Record<string, string>;
}

export interface SseStream {
  /** Writes one event; false when the stream is closed (or was just cut for a slow consumer). */
  send(event: SseEvent): boolean;
  /** Writes a comment line (ignored by clients). */
  comment(text: string): boolean;
  /** Ends the response. Idempotent. */
  close(): void;
  readonly closed: boolean;
  /** Called once when the stream ends, whoever ended it. */
  onClose(listener: () => void): void;
}

const SSE_KEEP_ALIVE_DEFAULT_MS = 15_000;
const SSE_MAX_BUFFERED_DEFAULT_BYTES = 1024 * 1024;

let openStreams = 0;

/** Event streams open in this process now (the `errand_sse_subscribers` gauge). */
export function openSseStreamCount(): number {
  return openStreams;
}

/** Starts an event stream on `reply` (status 200, `text/event-stream`). */
export function openSse(reply: FastifyReply, options: SseOptions): SseStream {
  const { clock } = options;
  const keepAliveMs = options.keepAliveMs ?? SSE_KEEP_ALIVE_DEFAULT_MS;
  const maxBuffered = options.maxBufferedBytes ?? SSE_MAX_BUFFERED_DEFAULT_BYTES;
  const raw = reply.raw;
  void reply.hijack();
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    ...options.headers,
  });
  raw.flushHeaders();

  let closed = false;
  let timer: TimerHandle | undefined;
  const listeners: (() => void)[] = [];
  openStreams += 1;
  const finish = () => {
    if (closed) return;
    closed = true;
    openStreams -= 1;
    if (timer !== undefined) clock.clearTimeout(timer);
    for (const listener of listeners.splice(0)) listener();
  };
  raw.on('close', finish);
  // The client may have hung up while the route was still working: its 'close' already fired.
  if (raw.destroyed || raw.socket === null || raw.socket.destroyed) finish();

  const write = (text: string): boolean => {
    if (closed || raw.destroyed) return false;
    if (raw.writableLength > maxBuffered) {
      // The client is not reading: cut it off instead of buffering without bound.
      raw.destroy();
      finish();
      return false;
    }
    raw.write(text);
    return true;
  };
  const keepAlive = () => {
    if (closed) return;
    write(': keep-alive\n\n');
    timer = clock.setTimeout(keepAlive, keepAliveMs);
  };
  timer = clock.setTimeout(keepAlive, keepAliveMs);

  return {
    send(event) {
      let text = '';
      if (event.id !== undefined) text += `id: ${event.id}\n`;
      if (event.event !== undefined) text += `event: ${event.event}\n`;
      for (const line of event.data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
      return write(`${text}\n`);
    },
    comment(text) {
      return write(`: ${text.replace(/[\r\n]+/g, ' ')}\n\n`);
    },
    close() {
      if (closed) return;
      raw.end();
      finish();
    },
    get closed() {
      return closed;
    },
    onClose(listener) {
      if (closed) listener();
      else listeners.push(listener);
    },
  };
}
