/**
 * The SSE writer (src/http/sse.ts) on a real socket: sending queues and
 * returns without writing; the shared flusher writes each stream's queue in
 * one write (events sent meanwhile coalesce), in order; `close()` writes what
 * is queued before ending; a full socket is not written until it drains, and
 * a stream whose waiting bytes pass the cap is cut off.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { systemClock } from '../../src/clock/index.js';
import { frameSse, openSse, type SseStream } from '../../src/http/sse.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

interface Opened {
  stream: SseStream;
  /** Every chunk handed to the response's `write()` / `end()`, in order. */
  writes: string[];
}

let app: FastifyInstance;
let port: number;
/** The next stream opened by `GET /sse`, with its write log. */
let nextOpened: ((opened: Opened) => void) | undefined;
let maxBufferedBytes = 1024 * 1024;

before(async () => {
  app = Fastify();
  app.get('/sse', async (_request, reply) => {
    const writes: string[] = [];
    const raw = reply.raw;
    const write = raw.write.bind(raw) as (chunk: string) => boolean;
    const end = raw.end.bind(raw) as (chunk?: string) => typeof raw;
    raw.write = ((chunk: string) => {
      writes.push(String(chunk));
      return write(chunk);
    }) as typeof raw.write;
    raw.end = ((chunk?: string) => {
      if (chunk !== undefined) writes.push(String(chunk));
      return end(chunk);
    }) as typeof raw.end;
    const stream = openSse(reply, { clock: systemClock, maxBufferedBytes, keepAliveMs: 3_600_000 });
    nextOpened?.({ stream, writes });
    return reply;
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as net.AddressInfo).port;
});

after(() => app.close());

/** Opens `GET /sse` on a raw socket; resolves with the server side once the headers arrived. */
async function open(): Promise<{ opened: Opened; socket: net.Socket; received: () => string }> {
  const opened = new Promise<Opened>((resolve) => (nextOpened = resolve));
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.write(`GET /sse HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
  const result = await bounded(opened, 'the stream to open');
  await until(() => text.includes('\r\n\r\n'), 'the response headers');
  return { opened: result, socket, received: () => text.slice(text.indexOf('\r\n\r\n') + 4) };
}

function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), SAFETY_NET_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `check` on each turn of the event loop (bounded). */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100_000; i++) {
    if (check()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`never saw ${what}`);
}

/** Strips chunked transfer-encoding framing (size lines) from what a raw socket received. */
function dechunk(text: string): string {
  return text.replace(/(^|\r\n)[0-9a-f]+\r\n/g, '$1').replace(/\r\n/g, '');
}

describe('SSE writer', () => {
  test('frameSse frames one event; a multi-line payload becomes several data lines', () => {
    assert.equal(frameSse({ id: 3, event: 'output', data: '{"a":1}' }), 'id: 3\nevent: output\ndata: {"a":1}\n\n');
    assert.equal(frameSse({ data: 'one\ntwo\r\nthree' }), 'data: one\ndata: two\ndata: three\n\n');
  });

  test('send() queues without writing; the events sent in one turn go out in one write, in order', async () => {
    const { opened, socket, received } = await open();
    try {
      const before = opened.writes.length;
      assert.ok(opened.stream.send({ id: 1, event: 'a', data: 'x' }));
      assert.ok(opened.stream.sendFrame(frameSse({ id: 2, event: 'b', data: 'y' })));
      assert.ok(opened.stream.comment('note\nmore'));
      assert.equal(opened.writes.length, before, 'nothing written by the sender');
      const expected = 'id: 1\nevent: a\ndata: x\n\nid: 2\nevent: b\ndata: y\n\n: note more\n\n';
      await until(() => dechunk(received()).includes(expected), 'the three events');
      assert.deepEqual(opened.writes.slice(before), [expected], 'one write for the three');
    } finally {
      socket.destroy();
    }
  });

  test('close() writes what is queued, then ends the response', async () => {
    const { opened, socket, received } = await open();
    try {
      opened.stream.send({ id: 7, event: 'completed', data: '{}' });
      opened.stream.close();
      assert.equal(opened.stream.closed, true);
      assert.equal(opened.stream.send({ data: 'late' }), false, 'nothing after close');
      // The response ends with the last chunk of chunked transfer-encoding (the connection is kept alive).
      await until(() => received().endsWith('\r\n0\r\n\r\n'), 'the end of the response');
      assert.ok(dechunk(received()).includes('id: 7\nevent: completed\ndata: {}\n\n'));
      assert.ok(!received().includes('late'));
    } finally {
      socket.destroy();
    }
  });

  test('a client that stops reading is written no more than the socket takes, then cut off at the cap', async () => {
    maxBufferedBytes = 256 * 1024;
    const { opened, socket } = await open();
    try {
      socket.pause();
      const closed = new Promise<void>((resolve) => opened.stream.onClose(resolve));
      const chunk = 'x'.repeat(16 * 1024);
      let sent = 0;
      // Each turn queues one chunk; the flusher writes until the socket is full, then the queue grows to the cap.
      for (let i = 0; i < 10_000 && opened.stream.send({ data: chunk }); i++) {
        sent++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await bounded(closed, 'the stream to be cut off');
      assert.equal(opened.stream.closed, true);
      assert.ok(sent > 0 && sent < 10_000, `cut off after ${sent} chunks`);
      const written = opened.writes.join('').length;
      assert.ok(written < sent * chunk.length, 'the last chunks were queued, not written to the full socket');
    } finally {
      maxBufferedBytes = 1024 * 1024;
      socket.destroy();
    }
  });
});
