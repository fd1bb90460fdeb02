/**
 * Reads the `data` of each event of a Server-Sent Events response body (the
 * WHATWG event-stream format: `data:` lines joined with "\n", an event ends at
 * a blank line; comments, `event:`, `id:` and `retry:` are skipped). Bounded:
 * a body longer than `limitBytes` fails with `upstream_response_too_large`.
 * (undici's EventSource only speaks GET, so the POST stream is read here.)
 */
import { tooLarge } from './upstream.js';

export async function* readSseData(response: Response, limitBytes: number, what: string): AsyncGenerator<string> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let total = 0;
  let buffer = '';
  let data: string[] = [];
  for await (const chunk of response.body) {
    total += chunk.byteLength;
    if (total > limitBytes) throw tooLarge(what, limitBytes);
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.search(/\r\n|\r|\n/)) !== -1) {
      // A lone "\r" at the end may be the first half of "\r\n": wait for the next chunk.
      if (newline === buffer.length - 1 && buffer.endsWith('\r')) break;
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
      if (line === '') {
        if (data.length > 0) yield data.join('\n');
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
      }
    }
  }
  buffer += decoder.decode();
  if (buffer.startsWith('data:')) data.push(buffer.slice(buffer.startsWith('data: ') ? 6 : 5));
  if (data.length > 0) yield data.join('\n');
}
