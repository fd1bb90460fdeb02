/**
 * `GET /v1/requests/{id}/events` over a real listening server: event order and
 * payloads, resume by `Last-Event-ID` / `?after=` with no gap or duplicate
 * (also across a dropped connection while the handler keeps emitting), replay
 * after completion, bad resume points, tenants, keep-alives, a reader that
 * stops reading, and 1,000 subscribers fed from one fan-out.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Store } from '../../src/store/index.js';
import { startEngine } from '../helpers/engine.js';
import { waitForEvent } from '../helpers/events.js';
import { errorOf, json, startHttpServer, type TestHttpServer } from '../helpers/http.js';
import { connectSse, dataOf, streamerOperation, type SseMessage, type Streamer } from '../helpers/sse.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

const ALPHA = { authorization: 'Bearer key_alpha' };
const BETA = { authorization: 'Bearer key_beta' };

let t: TestHttpServer;
let streamer: Streamer;
let base = '';

before(async () => {
  streamer = streamerOperation();
  t = await startHttpServer({
    overrides: {
      ...streamer.override,
      auth: {
        keys: [
          { key: 'key_alpha', tenant: 'alpha' },
          { key: 'key_beta', tenant: 'beta' },
        ],
      },
      store: { synchronous: 'normal' },
      // The fan-out test below holds 1,000 streams of one key: above the default per-key cap.
      limits: { streams_per_caller: 2000 },
    },
  });
  base = await t.server.listen(0);
});
after(async () => {
  await t?.close();
  streamer?.cleanup();
});

async function submit(input: Record<string, unknown>, headers: Record<string, string> = ALPHA): Promise<string> {
  const res = await t.inject({ method: 'POST', url: '/v1/operations/streamer?async=true', headers, payload: input });
  assert.equal(res.statusCode, 202, res.body);
  return json(res).request_id as string;
}

const ids = (events: SseMessage[]) => events.map((e) => Number(e.id));
const kinds = (events: SseMessage[]) => events.map((e) => e.event);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const isEnd = (e: SseMessage) => ['completed', 'failed', 'cancelled'].includes(e.event);

/** The whole log of a request that emits 3 chunks with progress around them. */
const FULL = ['status', 'status', 'progress', 'output', 'output', 'output', 'progress', 'completed'];

describe('event order and payloads', () => {
  test('a live request streams status, progress, output and the terminal event in log order, then the stream ends', async () => {
    const id = await submit({ chunks: 3, progress: true, gateAt: 0 });
    await streamer.waitGate(id);
    const client = await connectSse(`${base}/v1/requests/${id}/events`, { headers: ALPHA });
    assert.equal(client.status, 200);
    assert.match(String(client.headers['content-type']), /^text\/event-stream/);
    assert.equal(client.headers['x-request-id'], id);
    await client.waitFor((ev) => ev.length >= 3, 5000, 'the replayed entries');
    streamer.open(id);
    const events = await client.untilEnd();
    assert.deepEqual(kinds(events), FULL);
    assert.deepEqual(ids(events), range(1, 8));
    assert.deepEqual(dataOf(events[0]), { status: 'pending', attempt: 0 });
    assert.deepEqual(dataOf(events[1]), { status: 'processing', attempt: 1 });
    assert.equal(dataOf(events[2]).percent, 10);
    assert.deepEqual(events.slice(3, 6).map(dataOf), ['chunk 0', 'chunk 1', 'chunk 2']);
    const done = dataOf(events[7]);
    assert.equal(done.request_id, id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { chunks: 3 });
  });

  test('a finished request is replayed from the log and the stream closed; the terminal event carries the result or error', async () => {
    const ok = await submit({ chunks: 3, progress: true });
    await t.waitTerminal(ok);
    const events = await (await connectSse(`${base}/v1/requests/${ok}/events`, { headers: ALPHA })).untilEnd();
    assert.deepEqual(kinds(events), FULL);
    assert.deepEqual(ids(events), range(1, 8));
    assert.deepEqual(dataOf(events[7]).result, { chunks: 3 });

    const bad = await submit({ chunks: 1, fail: true });
    await t.waitTerminal(bad);
    const failed = await (await connectSse(`${base}/v1/tasks/${bad}/events`, { headers: ALPHA })).untilEnd();
    assert.deepEqual(kinds(failed), ['status', 'status', 'output', 'failed']);
    const last = dataOf(failed[3]);
    assert.equal(last.task_id, bad, 'the /v1/tasks alias presents task_id');
    assert.equal(last.error.type, 'tool_error');
  });

  test('a cancelled request ends with `cancelled`', async () => {
    const id = await submit({ chunks: 2, gateAt: 1 });
    await streamer.waitGate(id);
    const client = await connectSse(`${base}/v1/requests/${id}/events`, { headers: ALPHA });
    await client.waitFor((ev) => ev.some((e) => e.event === 'output'), 5000, 'the first chunk');
    const res = await t.inject({ method: 'DELETE', url: `/v1/requests/${id}`, headers: ALPHA });
    assert.equal(res.statusCode, 200, res.body);
    const events = await client.untilEnd();
    assert.deepEqual(kinds(events), ['status', 'status', 'output', 'cancelled']);
    assert.equal(dataOf(events[3]).error.type, 'cancelled');
  });

  test('idle streams get keep-alive comments', async () => {
    const quick = await startHttpServer({ overrides: { ...streamer.override, server: { sse_keep_alive: 0.02 } } });
    try {
      const url = await quick.server.listen(0);
      const res = await quick.inject({ method: 'POST', url: '/v1/operations/streamer?async=true', payload: { chunks: 1, gateAt: 0 } });
      const id = json(res).request_id as string;
      await streamer.waitGate(id);
      const client = await connectSse(`${url}/v1/requests/${id}/events`);
      await client.waitFor(() => client.parser.comments >= 2, 5000, 'two keep-alive comments');
      streamer.open(id);
      assert.deepEqual(kinds(await client.untilEnd()), ['status', 'status', 'output', 'completed']);
    } finally {
      await quick.close();
    }
  });
});

describe('resuming', () => {
  test('?after=N and Last-Event-ID send only what follows; the header wins over the query; after the last id, 204', async () => {
    const id = await submit({ chunks: 3, progress: true });
    await t.waitTerminal(id);
    const url = `${base}/v1/requests/${id}/events`;
    assert.deepEqual(ids(await (await connectSse(`${url}?after=3`, { headers: ALPHA })).untilEnd()), range(4, 8));
    assert.deepEqual(ids(await (await connectSse(url, { headers: { ...ALPHA, 'last-event-id': '6' } })).untilEnd()), [7, 8]);
    assert.deepEqual(
      ids(await (await connectSse(`${url}?after=1`, { headers: { ...ALPHA, 'last-event-id': '5' } })).untilEnd()),
      [6, 7, 8],
    );
    assert.deepEqual(ids(await (await connectSse(`${url}?after=0`, { headers: ALPHA })).untilEnd()), range(1, 8));
    // Resuming after the terminal event: nothing will ever come, and 204 stops EventSource from reconnecting.
    const none = await connectSse(url, { headers: { ...ALPHA, 'last-event-id': '8' } });
    assert.equal(none.status, 204);
    assert.equal(await none.body(), '');
  });

  test('a connection dropped mid-stream while the handler keeps emitting resumes with no gap and no duplicate', async () => {
    const CHUNKS = 40;
    const id = await submit({ chunks: CHUNKS, gateAt: 0, gateEvery: 10 });
    await streamer.waitGate(id);
    const first = await connectSse(`${base}/v1/requests/${id}/events`, { headers: ALPHA });
    await first.waitFor((ev) => ev.length >= 2, 5000, 'the status events');
    streamer.open(id);
    await first.waitFor((ev) => ev.some((e) => e.data === '"chunk 3"'), 5000, 'chunk 3');
    first.destroy();
    const seen = [...first.events];
    const lastId = seen[seen.length - 1]?.id ?? '0';
    // The handler is still emitting chunks 4–9 while the client reconnects.
    const second = await connectSse(`${base}/v1/requests/${id}/events`, { headers: { ...ALPHA, 'last-event-id': lastId } });
    for (const gate of [10, 20, 30]) {
      await streamer.waitGate(id);
      await second.waitFor((ev) => ev.some((e) => e.data === `"chunk ${gate - 1}"`), 5000, `chunk ${gate - 1}`);
      streamer.open(id);
    }
    const rest = await second.untilEnd();
    const all = [...seen, ...rest];
    const total = 2 + CHUNKS + 1;
    assert.deepEqual(ids(all), range(1, total), 'every id exactly once, in order');
    assert.deepEqual(
      all.filter((e) => e.event === 'output').map(dataOf),
      range(0, CHUNKS - 1).map((i) => `chunk ${i}`),
    );
    assert.equal(all[all.length - 1]?.event, 'completed');
  });

  test('live events that arrive while the log is being replayed are neither lost nor sent twice', async () => {
    const id = await submit({ chunks: 30, gateAt: 0, gateEvery: 10 });
    await streamer.waitGate(id);
    const store = t.server.store;
    const read = store.eventListAfter.bind(store);
    let calls = 0;
    // The stream's first read of the log: let the handler emit chunks 0–5 live first (they are buffered),
    // then read (the log now holds them too: the buffered copies must be dropped).
    (store as { eventListAfter: Store['eventListAfter'] }).eventListAfter = async (params) => {
      if (params.id === id && calls++ === 0) {
        const sixth = waitForOutput(id, 'chunk 5');
        streamer.open(id);
        await sixth;
      }
      return read(params);
    };
    try {
      const client = await connectSse(`${base}/v1/requests/${id}/events`, { headers: ALPHA });
      for (const gate of [10, 20]) {
        await streamer.waitGate(id);
        await client.waitFor((ev) => ev.some((e) => e.data === `"chunk ${gate - 1}"`), 5000, `chunk ${gate - 1}`);
        streamer.open(id);
      }
      const events = await client.untilEnd();
      assert.ok(calls >= 1);
      assert.deepEqual(ids(events), range(1, 2 + 30 + 1));
    } finally {
      delete (store as Partial<Store>).eventListAfter;
    }
  });

  test('a live event published out of order is filled in from the log, not skipped', async () => {
    const id = await submit({ chunks: 6, gateAt: 0 });
    await streamer.waitGate(id);
    const client = await connectSse(`${base}/v1/requests/${id}/events`, { headers: ALPHA });
    await client.waitFor((ev) => ev.length >= 2, 5000, 'the status events');
    // Hold back the output event of chunk 1 and publish it after chunk 2's.
    const events = t.server.engine.events;
    const emit = events.emit.bind(events);
    let held: Parameters<typeof emit> | undefined;
    (events as { emit: typeof emit }).emit = (...args) => {
      const [name, payload] = args;
      if (name === 'request:output' && payload.event.request_id === id && payload.event.data === 'chunk 1') {
        held = args;
        return;
      }
      emit(...args);
      if (held && name === 'request:output' && payload.event.data === 'chunk 2') emit(...held);
    };
    try {
      streamer.open(id);
      const got = await client.untilEnd();
      assert.ok(held, 'the event was held back');
      assert.deepEqual(ids(got), range(1, 2 + 6 + 1));
      assert.deepEqual(
        got.filter((e) => e.event === 'output').map(dataOf),
        range(0, 5).map((i) => `chunk ${i}`),
      );
    } finally {
      delete (events as Partial<typeof events>).emit;
    }
  });

  test('a resume point that is not a whole number ≥ 0, or is beyond the log, is a 400 invalid_parameter', async () => {
    const id = await submit({ chunks: 1 });
    await t.waitTerminal(id);
    const url = `/v1/requests/${id}/events`;
    for (const value of ['abc', '-1', '1.5', '', ' ', '1e3', '0x10', '12abc', '9999999999999999999']) {
      const res = await t.inject({ method: 'GET', url, headers: { ...ALPHA, 'last-event-id': value } });
      assert.equal(res.statusCode, 400, `Last-Event-ID ${JSON.stringify(value)}: ${res.body}`);
      assert.equal(errorOf(res).type, 'invalid_parameter');
      assert.equal(errorOf(res).field, 'Last-Event-ID');
    }
    for (const query of ['after=abc', 'after=-2', 'after=', 'after=1&after=2']) {
      const res = await t.inject({ method: 'GET', url: `${url}?${query}`, headers: ALPHA });
      assert.equal(res.statusCode, 400, `${query}: ${res.body}`);
      assert.equal(errorOf(res).field, 'after');
    }
    // The log has 4 entries (pending, processing, output, completed).
    for (const [headers, query, field] of [
      [{ 'last-event-id': '5' }, '', 'Last-Event-ID'],
      [{}, '?after=5', 'after'],
      [{}, '?after=100000', 'after'],
    ] as const) {
      const res = await t.inject({ method: 'GET', url: `${url}${query}`, headers: { ...ALPHA, ...headers } });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(errorOf(res).type, 'invalid_parameter');
      assert.equal(errorOf(res).field, field);
    }
    const ok = await t.inject({ method: 'GET', url: `${url}?after=4`, headers: ALPHA });
    assert.equal(ok.statusCode, 204, 'the last id is within the log');
  });
});

describe('who may read', () => {
  test('another tenant’s request and unknown ids are 404 request_not_found', async () => {
    const id = await submit({ chunks: 1 }, ALPHA);
    await t.waitTerminal(id);
    for (const url of [
      `/v1/requests/${id}/events`,
      `/v1/tasks/${id}/events`,
      '/v1/requests/req_00000000000000000000000000/events',
      '/v1/requests/nope/events',
    ]) {
      const res = await t.inject({ method: 'GET', url, headers: BETA });
      assert.equal(res.statusCode, 404, `${url}: ${res.body}`);
      assert.equal(errorOf(res).type, 'request_not_found');
    }
    const noKey = await t.inject({ method: 'GET', url: `/v1/requests/${id}/events` });
    assert.equal(noKey.statusCode, 401);
  });

  test('a request purged by retention is 410 request_gone', async () => {
    const h = await startEngine(
      { echo: 'export default { async run(input) { return input; } };\n' },
      { retention: { ttl: 60, tombstone_ttl: 120, sweep_interval: '1d' } },
    );
    try {
      const res = await h.server.app.inject({ method: 'POST', url: '/v1/operations/echo?async=true', payload: { a: 1 } });
      const id = json(res).request_id as string;
      const done = await h.server.engine.waitForTerminal(id, 5000);
      assert.equal(done?.status, 'completed');
      await h.clock.advance(61_000);
      assert.equal(await h.server.engine.services.retention.sweep(), 1);
      const gone = await h.server.app.inject({ method: 'GET', url: `/v1/requests/${id}/events` });
      assert.equal(gone.statusCode, 410, gone.body);
      assert.equal(errorOf(gone).type, 'request_gone');
    } finally {
      await h.close();
    }
  });
});

describe('shutdown', () => {
  test('closing the server ends open streams (the client resumes later) instead of waiting for them', async () => {
    const own = await startHttpServer({ overrides: { ...streamer.override } });
    const url = await own.server.listen(0);
    const res = await own.inject({ method: 'POST', url: '/v1/operations/streamer?async=true', payload: { chunks: 1, gateAt: 0 } });
    const id = json(res).request_id as string;
    await streamer.waitGate(id);
    const client = await connectSse(`${url}/v1/requests/${id}/events`);
    await client.waitFor((ev) => ev.length >= 2, 5000, 'the status events');
    const closed = own.close();
    const events = await client.untilEnd();
    await closed;
    assert.ok(!events.some(isEnd), 'the request did not finish: the stream was ended by the shutdown');
  });
});

describe('slow consumers and many subscribers', () => {
  test('a client that stops reading is cut off by the buffer cap; the request finishes regardless', async () => {
    const slow = await startHttpServer({
      overrides: { ...streamer.override, server: { sse_max_buffer: '64kb' }, store: { synchronous: 'normal' } },
    });
    try {
      const url = new URL(await slow.server.listen(0));
      const res = await slow.inject({
        method: 'POST',
        url: '/v1/operations/streamer?async=true',
        payload: { chunks: 120, size: 256 * 1024, gateAt: 0 },
      });
      const id = json(res).request_id as string;
      await streamer.waitGate(id);
      const accepted = once(slow.server.app.server, 'connection') as Promise<[net.Socket]>;
      const socket = net.connect(Number(url.port), url.hostname);
      socket.write(`GET /v1/requests/${id}/events HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`);
      const [serverSide] = await accepted;
      // Read the headers, then stop reading for good.
      await once(socket, 'data');
      socket.pause();
      const cut = once(serverSide, 'close');
      streamer.open(id);
      const done = await slow.waitTerminal(id, SAFETY_NET_MS * 2);
      assert.equal(done.status, 'completed', '30 MB of output did not stall the handler');
      await Promise.race([
        cut,
        new Promise((_, reject) => setTimeout(() => reject(new Error('the stream was not cut off')), SAFETY_NET_MS).unref()),
      ]);
      assert.ok(serverSide.destroyed);
      socket.destroy();
    } finally {
      await slow.close();
    }
  });

  test('1,000 concurrent subscribers each get every event in order from one fan-out, with no store reads per event', async () => {
    const SUBSCRIBERS = 1000;
    const CHUNKS = 20;
    const id = await submit({ chunks: CHUNKS, progress: true, gateAt: 0 });
    await streamer.waitGate(id);
    const agent = new http.Agent({ keepAlive: false, maxSockets: SUBSCRIBERS + 100 });
    try {
      const clients = await Promise.all(
        Array.from({ length: SUBSCRIBERS }, () => connectSse(`${base}/v1/requests/${id}/events`, { headers: ALPHA, agent })),
      );
      // Everyone has replayed pending, processing and the first progress report.
      await Promise.all(clients.map((c) => c.waitFor((ev) => ev.length >= 3, 15_000, 'the replayed entries')));
      const counts = countReads(t.server.store);
      streamer.open(id);
      const results = await Promise.all(clients.map((c) => c.untilEnd(15_000)));
      counts.restore();
      const expected = range(1, 3 + CHUNKS + 2);
      for (const events of results) {
        assert.deepEqual(ids(events), expected);
        assert.ok(isEnd(events[events.length - 1] as SseMessage));
      }
      assert.deepEqual(dataOf(results[0]?.[expected.length - 1]).result, { chunks: CHUNKS });
      assert.deepEqual(counts.reads, { eventListAfter: 0, requestGetById: 0 }, 'live events reach subscribers without store reads');
    } finally {
      agent.destroy();
    }
  });
});

/** Resolves when the output chunk `data` of `id` is published (bounded). */
function waitForOutput(id: string, data: string): Promise<unknown> {
  return waitForEvent(t.server.engine.events, 'request:output', (p) => p.event.request_id === id && p.event.data === data);
}

/** Counts store reads a stream could make per event, until restored. */
function countReads(store: Store): { reads: { eventListAfter: number; requestGetById: number }; restore(): void } {
  const reads = { eventListAfter: 0, requestGetById: 0 };
  const eventListAfter = store.eventListAfter.bind(store);
  const requestGetById = store.requestGetById.bind(store);
  const patched = store as { eventListAfter: Store['eventListAfter']; requestGetById: Store['requestGetById'] };
  patched.eventListAfter = (params) => {
    reads.eventListAfter++;
    return eventListAfter(params);
  };
  patched.requestGetById = (params) => {
    reads.requestGetById++;
    return requestGetById(params);
  };
  return {
    reads,
    restore() {
      // The methods live on the class prototype: dropping the own properties restores them.
      delete (patched as Partial<typeof patched>).eventListAfter;
      delete (patched as Partial<typeof patched>).requestGetById;
    },
  };
}
