/**
 * Server-Sent Events over fetch(). `EventSource` cannot send an
 * `Authorization` header, and the key must not go into a URL (logs, history),
 * so the dashboard reads the stream itself: the text/event-stream format
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html) is a few
 * line rules, parsed here. Reconnects are the caller's (see `follow`).
 */

export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

interface SseOpenOptions {
  headers: Record<string, string>;
  signal: AbortSignal;
  lastEventId?: string | null;
  onMessage(message: SseMessage): void;
  /** Called when the server has answered 200 and the stream is open. */
  onOpen?(): void;
}

/** How a stream ended. */
type SseEnd = { kind: 'done' } | { kind: 'http'; status: number; body: string } | { kind: 'dropped' };

/** Reads one connection until it ends. Never throws for network trouble: it says how it ended. */
async function readSse(url: string, options: SseOpenOptions): Promise<SseEnd> {
  const headers: Record<string, string> = { ...options.headers, accept: 'text/event-stream' };
  if (options.lastEventId) headers['last-event-id'] = options.lastEventId;
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: options.signal });
  } catch {
    return { kind: 'dropped' };
  }
  if (res.status === 204) return { kind: 'done' };
  if (!res.ok || !res.body) return { kind: 'http', status: res.status, body: await res.text().catch(() => '') };
  options.onOpen?.();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser(options.onMessage);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { kind: 'done' };
      parser.push(value);
    }
  } catch {
    return { kind: 'dropped' };
  }
}

/** Incremental text/event-stream parser. */
export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private id: string | null = null;

  constructor(private readonly emit: (message: SseMessage) => void) {}

  push(chunk: string): void {
    this.buffer += chunk;
    let newline = this.buffer.search(/\r\n|\r|\n/);
    // A CR at the very end may be the first half of a CRLF split across chunks: wait for the next chunk.
    while (newline >= 0 && !(newline === this.buffer.length - 1 && this.buffer.endsWith('\r'))) {
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith('\r\n', newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + width);
      this.line(line);
      newline = this.buffer.search(/\r\n|\r|\n/);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.emit({ id: this.id, event: this.event || 'message', data: this.data.join('\n') });
      this.event = '';
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id') this.id = value;
  }
}

export interface FollowOptions extends Omit<SseOpenOptions, 'lastEventId'> {
  /** Called when the server refuses the stream (4xx/5xx): following stops. */
  onRefused(status: number, body: string): void;
  /** Called when a connection dropped and a reconnect is coming. */
  onDrop?(): void;
  /** Called once the server ends the stream for good (204, or a clean end after a terminal event). */
  onDone?(): void;
  /** True when a clean end means "finished" (a request's stream closes after its terminal event). */
  endsWhenDone: boolean;
}

/** Retry delays after a dropped connection, ms (then the last one, until aborted). */
const RECONNECT_DELAYS_MS = [500, 1000, 2000, 5000];

/**
 * Follows a stream across dropped connections, resuming with `Last-Event-ID`
 * from the last `id:` seen. Stops when `signal` aborts, the server refuses, or
 * (with `endsWhenDone`) the stream ends cleanly.
 */
export async function follow(url: string, options: FollowOptions): Promise<void> {
  let lastEventId: string | null = null;
  let failures = 0;
  while (!options.signal.aborted) {
    const end = await readSse(url, {
      ...options,
      lastEventId,
      onMessage: (m) => {
        if (m.id !== null) lastEventId = m.id;
        failures = 0;
        options.onMessage(m);
      },
    });
    if (options.signal.aborted) return;
    if (end.kind === 'http') return options.onRefused(end.status, end.body);
    if (end.kind === 'done' && options.endsWhenDone) return options.onDone?.();
    options.onDrop?.();
    const delay = RECONNECT_DELAYS_MS[Math.min(failures, RECONNECT_DELAYS_MS.length - 1)] as number;
    failures++;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delay);
      options.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
}
