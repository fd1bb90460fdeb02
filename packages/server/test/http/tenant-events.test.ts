/**
 * `GET /v1/events` over a real listening server: the live events of every
 * request the key may see — tenant isolation, the admin key seeing all, the
 * `?operation=` filter, message payloads in log order, 401/400, keep-alives,
 * a reader that stops reading, and shutdown ending the streams.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { errorOf, json, startHttpServer, type TestHttpServer } from '../helpers/http.js';
import { connectSse, dataOf, streamerOperation, type SseClient, type SseMessage, type Streamer } from '../helpers/sse.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

const ALPHA = { authorization: 'Bearer key_alpha' };
const BETA = { authorization: 'Bearer key_beta' };
const ADMIN = { authorization: 'Bearer adm_secret_key' };

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
        admin_keys: ['adm_secret_key'],
      },
      store: { synchronous: 'normal' },
    },
  });
  base = await t.server.listen(0);
});
after(async () => {
  await t?.close();
  streamer?.cleanup();
});

async function submit(operation: string, input: Record<string, unknown>, headers: Record<string, string>): Promise<string> {
  const res = await t.inject({ method: 'POST', url: `/v1/operations/${operation}?async=true`, headers, payload: input });
  assert.equal(res.statusCode, 202, res.body);
  return json(res).request_id as string;
}

/** Opens `/v1/events` and waits for its headers (the subscription exists once they arrive). */
async function tail(headers: Record<string, string>, query = ''): Promise<SseClient> {
  const client = await connectSse(`${base}/v1/events${query}`, { headers });
  assert.equal(client.status, 200);
  assert.match(String(client.headers['content-type']), /^text\/event-stream/);
  return client;
}

const of = (id: string) => (events: SseMessage[]) => events.filter((e) => dataOf(e).request_id === id);
const finished = (id: string) => (events: SseMessage[]) =>
  of(id)(events).some((e) => ['completed', 'failed', 'cancelled'].includes(dataOf(e).status));

describe('what a stream carries', () => {
  test("a tenant's stream has every event of its requests in log order, with the documented fields", async () => {
    const client = await tail(ALPHA);
    const id = await submit('streamer', { chunks: 2, progress: true }, ALPHA);
    await client.waitFor(finished(id), 5000, 'the request to finish');
    const mine = of(id)(client.events);
    assert.deepEqual(
      mine.map((e) => e.event),
      ['status', 'status', 'progress', 'output', 'output', 'progress', 'status'],
    );
    assert.ok(
      mine.every((e) => e.id === undefined),
      'live only: no ids to resume from',
    );
    const seqs = mine.map((e) => dataOf(e).seq as number);
    assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(
      mine.map((e) => dataOf(e).status),
      ['pending', 'processing', 'processing', 'processing', 'processing', 'processing', 'completed'],
    );
    const chunk = dataOf(mine[3]);
    assert.deepEqual(Object.keys(chunk).sort(), ['created_at', 'data', 'operation', 'request_id', 'seq', 'status', 'tenant', 'type']);
    assert.equal(chunk.operation, 'streamer');
    assert.equal(chunk.tenant, 'alpha');
    assert.equal(chunk.type, 'output');
    assert.equal(chunk.data, 'chunk 0');
    assert.ok(!Number.isNaN(Date.parse(chunk.created_at as string)));
    assert.equal(dataOf(mine[2]).data.percent, 10);
    assert.deepEqual(dataOf(mine[6]).data.status, 'completed');
    client.destroy();
  });

  test('a cancelled request ends with a status event whose status is cancelled', async () => {
    const client = await tail(ALPHA);
    const id = await submit('streamer', { chunks: 1, gateAt: 0 }, ALPHA);
    await streamer.waitGate(id);
    const res = await t.inject({ method: 'DELETE', url: `/v1/requests/${id}`, headers: ALPHA });
    assert.equal(res.statusCode, 200, res.body);
    await client.waitFor(finished(id), 5000, 'the cancel');
    assert.equal(dataOf(of(id)(client.events).at(-1)).status, 'cancelled');
    client.destroy();
  });
});

describe('who sees what', () => {
  test("a tenant never sees another tenant's events; the admin key sees both", async () => {
    const alpha = await tail(ALPHA);
    const beta = await tail(BETA);
    const admin = await tail(ADMIN);
    const a = await submit('streamer', { chunks: 1 }, ALPHA);
    const b = await submit('streamer', { chunks: 1 }, BETA);
    await admin.waitFor((ev) => finished(a)(ev) && finished(b)(ev), 5000, 'both requests in the admin stream');
    await alpha.waitFor(finished(a), 5000, "alpha's request");
    await beta.waitFor(finished(b), 5000, "beta's request");
    assert.ok(
      alpha.events.every((e) => dataOf(e).tenant === 'alpha'),
      'alpha saw only alpha',
    );
    assert.ok(
      beta.events.every((e) => dataOf(e).tenant === 'beta'),
      'beta saw only beta',
    );
    assert.equal(of(b)(alpha.events).length, 0);
    assert.equal(of(a)(beta.events).length, 0);
    assert.equal(of(a)(admin.events).length, of(a)(alpha.events).length);
    assert.equal(of(b)(admin.events).length, of(b)(beta.events).length);
    for (const client of [alpha, beta, admin]) client.destroy();
  });

  test('?operation=NAME keeps only that operation', async () => {
    const client = await tail(ALPHA, '?operation=echo');
    const streamed = await submit('streamer', { chunks: 1 }, ALPHA);
    await t.waitTerminal(streamed);
    const echoed = await submit('echo', { hello: 1 }, ALPHA);
    await client.waitFor(finished(echoed), 5000, 'the echo request');
    assert.ok(client.events.length > 0);
    assert.ok(
      client.events.every((e) => dataOf(e).operation === 'echo'),
      'only echo events',
    );
    assert.equal(of(streamed)(client.events).length, 0);
    client.destroy();
  });

  test('without a valid key: 401 unauthorized', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope' }]) {
      const res = await t.inject({ method: 'GET', url: '/v1/events', headers });
      assert.equal(res.statusCode, 401);
      assert.equal(errorOf(res).type, 'unauthorized');
    }
  });

  test('an unknown operation or query field is a 400 invalid_parameter naming the field', async () => {
    const unknownOp = await t.inject({ method: 'GET', url: '/v1/events?operation=nope', headers: ALPHA });
    assert.equal(unknownOp.statusCode, 400);
    assert.equal(errorOf(unknownOp).type, 'invalid_parameter');
    assert.equal(errorOf(unknownOp).field, 'operation');
    const unknownField = await t.inject({ method: 'GET', url: '/v1/events?after=3', headers: ALPHA });
    assert.equal(unknownField.statusCode, 400);
    assert.equal(errorOf(unknownField).type, 'invalid_parameter');
  });
});

describe('stream lifecycle', () => {
  test('an idle stream gets keep-alive comments, and closing the server ends it', async () => {
    const quick = await startHttpServer({ overrides: { server: { sse_keep_alive: 0.02 } } });
    const url = await quick.server.listen(0);
    const client = await connectSse(`${url}/v1/events`);
    try {
      await client.waitFor(() => client.parser.comments >= 2, 5000, 'two keep-alive comments');
    } finally {
      await quick.close();
    }
    await client.untilEnd();
    assert.ok(client.ended);
  });

  test('a client that stops reading is cut off by the buffer cap; the request finishes regardless', async () => {
    const slow = await startHttpServer({
      overrides: { ...streamer.override, server: { sse_max_buffer: '64kb' }, store: { synchronous: 'normal' } },
    });
    try {
      const url = new URL(await slow.server.listen(0));
      const accepted = once(slow.server.app.server, 'connection') as Promise<[net.Socket]>;
      const socket = net.connect(Number(url.port), url.hostname);
      socket.write(`GET /v1/events HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`);
      const [serverSide] = await accepted;
      // Read the headers (the subscription exists), then stop reading for good.
      await once(socket, 'data');
      socket.pause();
      const cut = once(serverSide, 'close');
      const res = await slow.inject({
        method: 'POST',
        url: '/v1/operations/streamer?async=true',
        payload: { chunks: 120, size: 256 * 1024 },
      });
      const id = json(res).request_id as string;
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
});
