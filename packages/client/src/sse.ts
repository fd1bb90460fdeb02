/**
 * A Server-Sent Events parser, per the WHATWG HTML "event stream
 * interpretation" rules: lines end in CRLF, LF or CR (also split across
 * chunks); `data:` lines join with "\n"; a blank line dispatches; `:` lines
 * are comments; a field without a colon has an empty value; one leading space
 * after the colon is dropped; an `id` containing NUL is ignored; an event with
 * no data is not dispatched; a partial event at end of stream is discarded.
 */

export interface SseMessage {
  /** The `event:` field, `message` when absent. */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The last event id seen so far (it persists across events, as in EventSource). */
  lastEventId: string;
  /** True when this event carried its own `id:` field. */
  hasId: boolean;
  /** `retry:` if this event set it, ms. */
  retry: number | undefined;
}

/** Feed it decoded text as it arrives; it returns the events each chunk completes. */
export class SseParser {
  private buffer = '';
  /** The previous chunk ended in CR: a LF at the start of the next one belongs to it. */
  private skipLf = false;
  private first = true;
  private data: string[] = [];
  private event = '';
  private hasId = false;
  private retry: number | undefined;
  lastEventId = '';

  push(text: string): SseMessage[] {
    if (this.first && text.length > 0) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.skipLf && text.startsWith('\n')) text = text.slice(1);
    this.skipLf = false;
    this.buffer += text;
    const out: SseMessage[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(this.buffer.slice(start, i), out);
      if (c === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          this.skipLf = true;
        }
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  private line(line: string, out: SseMessage[]): void {
    if (line === '') {
      this.dispatch(out);
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) {
          this.lastEventId = value;
          this.hasId = true;
        }
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  private dispatch(out: SseMessage[]): void {
    if (this.data.length > 0) {
      out.push({
        event: this.event || 'message',
        data: this.data.join('\n'),
        lastEventId: this.lastEventId,
        hasId: this.hasId,
        retry: this.retry,
      });
    }
    this.data = [];
    this.event = '';
    this.hasId = false;
    this.retry = undefined;
  }
}

/**
 * Reads an event stream body to its end, yielding each event. `onChunk` is
 * called on every chunk of bytes (comments included), which is how idle
 * detection knows the connection is alive.
 */
export async function* readSse(body: ReadableStream<Uint8Array>, onChunk?: () => void): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      onChunk?.();
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
    yield* parser.push(decoder.decode());
  } finally {
    // Ends the HTTP response when the consumer stops early (break, throw, abort). Not awaited: cancelling
    // the body of a connection that is already broken may never settle, and nothing depends on it.
    reader.cancel().catch(() => {});
  }
}
