/** The SSE parser, against the WHATWG event-stream rules (no server needed). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SseParser, type SseMessage } from '../src/index.js';

/** Feeds `chunks` one by one and returns the events with the fields tests care about. */
function parse(...chunks: string[]): Pick<SseMessage, 'event' | 'data' | 'lastEventId' | 'hasId'>[] {
  const parser = new SseParser();
  return chunks.flatMap((c) => parser.push(c)).map(({ event, data, lastEventId, hasId }) => ({ event, data, lastEventId, hasId }));
}

describe('SseParser', () => {
  test('an event with id, type and data; comments ignored', () => {
    assert.deepEqual(parse(': keep-alive\n\nid: 3\nevent: progress\ndata: {"percent":50}\n\n'), [
      { event: 'progress', data: '{"percent":50}', lastEventId: '3', hasId: true },
    ]);
  });

  test('multi-line data joins with a newline; no type means "message"', () => {
    assert.deepEqual(parse('data: a\ndata: b\n\n'), [{ event: 'message', data: 'a\nb', lastEventId: '', hasId: false }]);
  });

  test('CRLF, CR and LF line ends, even split across chunks', () => {
    const expected = [
      { event: 'x', data: '1', lastEventId: '1', hasId: true },
      { event: 'y', data: '2', lastEventId: '2', hasId: true },
    ];
    assert.deepEqual(parse('id: 1\r\nevent: x\r\ndata: 1\r\n\r\nid: 2\revent: y\rdata: 2\r\r'), expected);
    assert.deepEqual(parse('id: 1\r', '\nevent: x\r', '\ndata: 1\r', '\n\r', '\nid: 2\nevent: y\ndata: 2\n\n'), expected);
    // Byte by byte.
    assert.deepEqual(parse(...'id: 1\r\nevent: x\r\ndata: 1\r\n\r\nid: 2\revent: y\rdata: 2\r\r'.split('')), expected);
  });

  test('a field without a colon, one leading space dropped only, unknown fields ignored', () => {
    // A `data` line with no value still makes an event (with empty data); no data line at all makes none.
    assert.deepEqual(parse('data\n\n'), [{ event: 'message', data: '', lastEventId: '', hasId: false }]);
    assert.deepEqual(parse('event: x\n\n'), []);
    assert.deepEqual(parse('data\ndata:  two spaces\nfoo: bar\n\n'), [
      { event: 'message', data: '\n two spaces', lastEventId: '', hasId: false },
    ]);
  });

  test('the last event id persists; an id with NUL is ignored; the event type resets', () => {
    assert.deepEqual(parse('id: 7\nevent: a\ndata: x\n\ndata: y\n\nid: 8\0\ndata: z\n\n'), [
      { event: 'a', data: 'x', lastEventId: '7', hasId: true },
      { event: 'message', data: 'y', lastEventId: '7', hasId: false },
      { event: 'message', data: 'z', lastEventId: '7', hasId: false },
    ]);
  });

  test('a leading BOM is skipped; an event without a blank line at the end is not dispatched', () => {
    assert.deepEqual(parse('\uFEFFdata: a\n\ndata: unfinished\n'), [{ event: 'message', data: 'a', lastEventId: '', hasId: false }]);
  });

  test('retry is read as a number', () => {
    const parser = new SseParser();
    assert.equal(parser.push('retry: 1500\ndata: x\n\n')[0]?.retry, 1500);
    assert.equal(parser.push('retry: soon\ndata: x\n\n')[0]?.retry, undefined);
  });
});
