/**
 * The dashboard's SSE reader (src/dashboard/app/sse.ts), which replaces
 * EventSource so the key can travel in a header: the line rules of the
 * format, and resuming with Last-Event-ID against a real HTTP server.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { follow, SseParser, type SseMessage } from '../../src/dashboard/app/sse.js';

test('parses events split anywhere, CRLF and CR line ends, multi-line data, comments and ids', () => {
  const got: SseMessage[] = [];
  const parser = new SseParser((m) => got.push(m));
  const text =
    ': keep-alive\n\nid: 1\nevent: status\ndata: {"a":\r\ndata: 1}\r\n\r\nid: 2\revent: progress\rdata:{"p":5}\r\rdata: plain\n\nevent: nodata\n\n';
  for (const ch of text) parser.push(ch);
  assert.deepEqual(got, [
    { id: '1', event: 'status', data: '{"a":\n1}' },
    { id: '2', event: 'progress', data: '{"p":5}' },
    { id: '2', event: 'message', data: 'plain' },
  ]);
});

test('follow() sends the key header, resumes with Last-Event-ID after a drop, and stops at the clean end', async (t) => {
  const seen: { auth: string | undefined; lastEventId: string | undefined }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push({ auth: req.headers.authorization, lastEventId: req.headers['last-event-id'] as string | undefined });
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (seen.length === 1) {
      // Dropped mid-stream: the chunked body never ends properly.
      res.write('id: 1\nevent: progress\ndata: {}\n\n', () => res.socket?.end());
    } else {
      res.end('id: 2\nevent: completed\ndata: {}\n\n');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/requests/x/events`;
  const ids: (string | null)[] = [];
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  t.after(() => clearTimeout(timer));
  let done = false;
  await follow(url, {
    headers: { authorization: 'Bearer k1' },
    signal: abort.signal,
    endsWhenDone: true,
    onMessage: (m) => ids.push(m.id),
    onRefused: (status) => assert.fail(`refused ${status}`),
    onDone: () => (done = true),
  });
  assert.equal(done, true);
  assert.deepEqual(ids, ['1', '2']);
  assert.deepEqual(seen, [
    { auth: 'Bearer k1', lastEventId: undefined },
    { auth: 'Bearer k1', lastEventId: '1' },
  ]);
});

test('follow() reports a refused stream (401) and stops', async (t) => {
  const server = createServer((_req, res) => {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end('{"error":{"type":"unauthorized","message":"no"}}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  let refused: number | undefined;
  await follow(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`, {
    headers: {},
    signal: AbortSignal.timeout(10_000),
    endsWhenDone: false,
    onMessage: () => assert.fail('no message expected'),
    onRefused: (status) => (refused = status),
  });
  assert.equal(refused, 401);
});
