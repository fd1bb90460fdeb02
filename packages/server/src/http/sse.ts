/**
 * Server-Sent Events over a Fastify reply: the one writer every streaming
 * endpoint uses (request events, streaming chat, OpenAI-compatible streams).
 *
 * - The reply is hijacked: Fastify no longer serialises or ends it.
 * - `send()` frames one event (`id:`, `event:`, one `data:` line per line of
 *   data, blank line); `sendFrame()` queues an event framed once with
 *   `frameSse()` and shared by many streams (fan-out).
 * - A comment line (`: keep-alive`) every `keepAliveMs` keeps proxies from
 *   closing an idle stream; its timer comes from the injected clock.
 *
 * **Writes are queued, not made by the caller.** `send()` appends to the
 * stream's own queue and returns at once; one shared flusher writes the queues
 * to their sockets later, at most `FLUSH_SLICE` streams per event-loop turn
 * (`setImmediate`), each stream's queue in one `write()`. So an event fanned
 * out to N subscribers costs its emitter N array pushes, not N socket writes,
 * and when writing cannot keep up, the events that arrive meanwhile coalesce:
 * a subscriber gets several events in one write. The queue is written in
 * order and a stream's end (`close()`) writes what is queued first.
 *
 * **Backpressure.** While a socket's buffer is full (`write()` returned
 * false), its stream is not flushed again until `'drain'`; events queue up.
 * **Slow consumers are cut off, not buffered:** when more than
 * `maxBufferedBytes` wait (queued here plus in the socket's buffer), the stream
 * is closed (the client resumes with `Last-Event-ID`), so a client that never
 * reads cannot grow the server's memory without bound.
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
  /** Bytes allowed to wait (queued and in the socket's buffer) before the stream is cut (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Extra response headers (e.g. the request id). */
  headers?: Record<string, string>;
}

export interface SseStream {
  /** Queues one event; false when the stream is closed (or was just cut for a slow consumer). */
  send(event: SseEvent): boolean;
  /** Queues one event already framed by `frameSse()` (shared by every stream it goes to). */
  sendFrame(frame: string): boolean;
  /** Queues a comment line (ignored by clients). */
  comment(text: string): boolean;
  /** Writes what is queued, then ends the response. Idempotent. */
  close(): void;
  readonly closed: boolean;
  /** Called once when the stream ends, whoever ended it. */
  onClose(listener: () => void): void;
}

const SSE_KEEP_ALIVE_DEFAULT_MS = 15_000;
const SSE_MAX_BUFFERED_DEFAULT_BYTES = 1024 * 1024;
/**
 * Streams written per event-loop turn. A flush of 1,000 subscribers then takes
 * several turns, between which the emitter's own work (its next commit) goes
 * on; events arriving meanwhile join the queues not yet written.
 */
const FLUSH_SLICE = 128;

/** One event as it goes on the wire. */
export function frameSse(event: SseEvent): string {
  let text = '';
  if (event.id !== undefined) text += `id: ${event.id}\n`;
  if (event.event !== undefined) text += `event: ${event.event}\n`;
  const data = event.data;
  if (!/[\r\n]/.test(data)) return `${text}data: ${data}\n\n`;
  for (const line of data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
  return `${text}\n`;
}

let openStreams = 0;

/** Event streams open in this process now (the `errand_sse_subscribers` gauge). */
export function openSseStreamCount(): number {
  return openStreams;
}

/** A stream's side of the shared flusher. */
interface Flushable {
  flush(): void;
}

/** Streams with something queued, in the order they got it. */
const dirty = new Set<Flushable>();
let flushScheduled = false;

function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flushSome);
}

function flushSome(): void {
  flushScheduled = false;
  let n = 0;
  for (const stream of dirty) {
    if (n++ >= FLUSH_SLICE) break;
    dirty.delete(stream);
    stream.flush();
  }
  if (dirty.size > 0) scheduleFlush();
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
  /** Queued, not yet written. */
  let queue: string[] = [];
  let queuedBytes = 0;
  /** The socket's buffer is full: wait for 'drain' before writing more. */
  let blocked = false;

  const takeQueue = (): string => {
    const text = queue.length === 1 ? (queue[0] as string) : queue.join('');
    queue = [];
    queuedBytes = 0;
    return text;
  };
  const flushable: Flushable = {
    flush() {
      if (closed || blocked || queue.length === 0 || raw.destroyed) return;
      if (!raw.write(takeQueue())) blocked = true;
    },
  };
  const onDrain = () => {
    blocked = false;
    if (queue.length > 0) {
      dirty.add(flushable);
      scheduleFlush();
    }
  };
  raw.on('drain', onDrain);

  openStreams += 1;
  const finish = () => {
    if (closed) return;
    closed = true;
    openStreams -= 1;
    dirty.delete(flushable);
    queue = [];
    queuedBytes = 0;
    raw.off('drain', onDrain);
    if (timer !== undefined) clock.clearTimeout(timer);
    for (const listener of listeners.splice(0)) listener();
  };
  raw.on('close', finish);
  // The client may have hung up while the route was still working: its 'close' already fired.
  if (raw.destroyed || raw.socket === null || raw.socket.destroyed) finish();

  const enqueue = (text: string): boolean => {
    if (closed || raw.destroyed) return false;
    if (queuedBytes + raw.writableLength > maxBuffered) {
      // The client is not reading: cut it off instead of buffering without bound.
      raw.destroy();
      finish();
      return false;
    }
    queue.push(text);
    queuedBytes += text.length;
    if (!blocked) {
      dirty.add(flushable);
      scheduleFlush();
    }
    return true;
  };
  const keepAlive = () => {
    if (closed) return;
    enqueue(': keep-alive\n\n');
    timer = clock.setTimeout(keepAlive, keepAliveMs);
  };
  timer = clock.setTimeout(keepAlive, keepAliveMs);

  return {
    send(event) {
      return enqueue(frameSse(event));
    },
    sendFrame(frame) {
      return enqueue(frame);
    },
    comment(text) {
      return enqueue(`: ${text.replace(/[\r\n]+/g, ' ')}\n\n`);
    },
    close() {
      if (closed) return;
      if (raw.destroyed) {
        finish();
        return;
      }
      // What is queued goes out first, whatever the socket's buffer holds (at most maxBufferedBytes).
      if (queue.length > 0) raw.end(takeQueue());
      else raw.end();
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
