/**
 * Streaming chat: `POST /v1/chat` with `"stream": true` answers with Server-Sent
 * Events — `request` (the id), the handler's output chunks, the terminal event —
 * over a real listening server. Also: failure and cancellation, a client that
 * hangs up (the request keeps running; it resumes on the events endpoint),
 * idempotent replays, and bad bodies.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorOf, json, startHttpServer, type TestHttpServer } from '../helpers/http.js';
import { connectSse, dataOf, streamerOperation, type SseMessage, type Streamer } from '../helpers/sse.js';

let t: TestHttpServer;
let streamer: Streamer;
let base = '';

before(async () => {
  streamer = streamerOperation();
  const operations = { streamer: { ...streamer.override.operations.streamer, retry: { max_attempts: 2, initial_delay: 0 } } };
  t = await startHttpServer({ chatOperation: 'streamer', overrides: { operations, store: { synchronous: 'normal' } } });
  base = await t.server.listen(0);
});
after(async () => {
  await t?.close();
  streamer?.cleanup();
});

function chat(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return connectSse(`${base}/v1/chat`, { method: 'POST', body: { message: 'hello', stream: true, ...body }, headers });
}

const kinds = (events: SseMessage[]) => events.map((e) => e.event);

describe('POST /v1/chat with "stream": true', () => {
  test('answers text/event-stream: the request id first, then the chunks with their log ids, then `completed` with the result', async () => {
    const client = await chat({ chunks: 3, progress: true, user_id: 'u1' });
    assert.equal(client.status, 200);
    assert.match(String(client.headers['content-type']), /^text\/event-stream/);
    const events = await client.untilEnd();
    assert.deepEqual(kinds(events), ['request', 'output', 'output', 'output', 'completed']);
    const first = dataOf(events[0]);
    const id = first.request_id as string;
    assert.equal(events[0]?.id, undefined, 'the first event has no id: resuming from it replays everything');
    assert.equal(first.location, `/v1/requests/${id}`);
    assert.equal(first.events, `/v1/requests/${id}/events`);
    assert.equal(client.headers.location, `/v1/requests/${id}`);
    // pending (1), processing (2), progress (3), the chunks (4–6), progress (7), completed (8): status and progress are skipped.
    assert.deepEqual(
      events.slice(1).map((e) => e.id),
      ['4', '5', '6', '8'],
    );
    assert.deepEqual(events.slice(1, 4).map(dataOf), ['chunk 0', 'chunk 1', 'chunk 2']);
    const done = dataOf(events[4]);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { chunks: 3 });

    // An ordinary async request underneath; `stream` is not part of the operation's input.
    const status = json(await t.inject({ method: 'GET', url: `/v1/requests/${id}` }));
    assert.equal(status.status, 'completed');
    const stored = await t.server.store.requestGetById({ id });
    assert.equal(stored?.mode, 'async');
    assert.deepEqual(stored?.input, { message: 'hello', chunks: 3, progress: true, user_id: 'u1' });
  });

  test('a failing handler ends the stream with `failed` and its error', async () => {
    const events = await (await chat({ chunks: 2, fail: true })).untilEnd();
    assert.deepEqual(kinds(events), ['request', 'output', 'output', 'failed']);
    const error = dataOf(events[3]).error;
    assert.equal(error.type, 'tool_error');
    assert.equal(error.retryable, false);
  });

  test('a retried attempt is marked by a `status` event (pending, with the error) before the next attempt’s chunks', async () => {
    const events = await (await chat({ chunks: 2, failFirst: true })).untilEnd();
    assert.deepEqual(kinds(events), ['request', 'output', 'output', 'status', 'output', 'output', 'completed']);
    const retry = dataOf(events[3]);
    assert.equal(retry.status, 'pending');
    assert.equal(retry.attempt, 1);
    assert.equal(retry.error.type, 'flaky');
    assert.deepEqual(events.slice(4, 6).map(dataOf), ['chunk 0', 'chunk 1']);
    assert.equal(dataOf(events[6]).attempt, 2);
  });

  test('a cancelled request ends the stream with `cancelled`', async () => {
    const client = await chat({ chunks: 2, gateAt: 1 });
    const [first] = await client.waitFor((ev) => ev.length >= 2, 5000, 'the request event and the first chunk');
    const id = dataOf(first).request_id as string;
    await streamer.waitGate(id);
    assert.equal((await t.inject({ method: 'DELETE', url: `/v1/requests/${id}` })).statusCode, 200);
    const events = await client.untilEnd();
    assert.deepEqual(kinds(events), ['request', 'output', 'cancelled']);
    assert.equal(dataOf(events[2]).error.type, 'cancelled');
  });

  test('a client that hangs up leaves the request running; it resumes on the events endpoint from the last id', async () => {
    const client = await chat({ chunks: 5, gateAt: 2 });
    const got = await client.waitFor((ev) => ev.filter((e) => e.event === 'output').length >= 2, 5000, 'two chunks');
    const id = dataOf(got[0]).request_id as string;
    const lastId = got[got.length - 1]?.id;
    assert.equal(lastId, '4');
    await streamer.waitGate(id);
    client.destroy();
    streamer.open(id);
    const done = await t.waitTerminal(id);
    assert.equal(done.status, 'completed', 'the hang-up did not cancel the request');
    assert.deepEqual(done.result, { chunks: 5 });

    const resumed = await (await connectSse(`${base}/v1/requests/${id}/events`, { headers: { 'last-event-id': lastId ?? '' } })).untilEnd();
    assert.deepEqual(kinds(resumed), ['output', 'output', 'output', 'completed']);
    assert.deepEqual(
      resumed.map((e) => e.id),
      ['5', '6', '7', '8'],
    );
    assert.deepEqual(resumed.slice(0, 3).map(dataOf), ['chunk 2', 'chunk 3', 'chunk 4']);
  });

  test('the same Idempotency-Key streams the same request again from its first event', async () => {
    const headers = { 'idempotency-key': 'stream-once-1' };
    const first = await (await chat({ chunks: 2 }, headers)).untilEnd();
    const again = await chat({ chunks: 2 }, headers);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    const second = await again.untilEnd();
    assert.equal(dataOf(second[0]).request_id, dataOf(first[0]).request_id);
    assert.deepEqual(second.slice(1), first.slice(1));
  });

  test('stream with a sync choice, or a stream that is not a boolean, is 422 validation_error', async () => {
    for (const body of [
      { message: 'x', stream: true, async: false },
      { message: 'x', stream: true, mode: 'sync' },
      { message: 'x', stream: 'yes' },
    ]) {
      const res = await t.inject({ method: 'POST', url: '/v1/chat', payload: body });
      assert.equal(res.statusCode, 422, `${JSON.stringify(body)}: ${res.body}`);
      assert.equal(errorOf(res).type, 'validation_error');
      assert.equal(errorOf(res).field, 'stream');
    }
    // `stream: false` is an ordinary chat call.
    const plain = await t.inject({ method: 'POST', url: '/v1/chat', payload: { message: 'x', stream: false, chunks: 1 } });
    assert.equal(plain.statusCode, 200, plain.body);
    assert.deepEqual(json(plain).result, { chunks: 1 });
  });
});
