/**
 * Abuse tests of the limits layer (issue 11, items 7 and 8): what one client
 * can hold or send, and that nobody else notices.
 *
 * - 500 event streams from one key: past `limits.streams_per_caller` each is a
 *   429; another tenant still streams; a closed stream frees its slot.
 * - Long-polls and sync waits past `limits.waits_per_caller`: 429, nothing submitted.
 * - Slow-loris: headers or a body sent too slowly are cut off at
 *   `limits.headers_timeout` / `limits.request_timeout`, while a long-poll and
 *   an event stream on quiet connections outlive every timeout.
 * - A spray of bad keys: the address is throttled (good key included), other
 *   addresses are not, and the window ends.
 * - A submission flood: 429 `rate_limited` with Retry-After and RateLimit-*
 *   headers past the burst; other tenants unaffected; batches count items;
 *   per-operation and per-tenant overrides.
 *
 * - Review findings: a client that hangs up while its stream route still reads
 *   the store gives its slot back; behind a trusted proxy (`server.trust_proxy`)
 *   the throttle counts each forwarded client, without it X-Forwarded-For is
 *   ignored; `failed_auth.max: 0` is off; unknown `/v1` paths are throttled.
 *
 * Time is a ManualClock (buckets, windows, long-poll timers); the connection
 * timeouts are Node's own timers, awaited as socket events with a bound.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { ManualClock, settle } from '../helpers/clock.js';
import { T0 } from '../helpers/factories.js';
import { errorOf, json, startHttpServer, type TestHttpServer } from '../helpers/http.js';
import { connectSse, type SseClient } from '../helpers/sse.js';

const KEYS = {
  auth: {
    keys: [
      { key: 'key_alpha_123', tenant: 'alpha' },
      { key: 'key_beta_1234', tenant: 'beta' },
    ],
  },
};
const ALPHA = { authorization: 'Bearer key_alpha_123' };
const BETA = { authorization: 'Bearer key_beta_1234' };

async function start(t: TestContext, overrides: Record<string, unknown> = {}): Promise<{ h: TestHttpServer; clock: ManualClock }> {
  const clock = new ManualClock(T0);
  const h = await startHttpServer({ clock, overrides: { ...KEYS, ...overrides } });
  t.after(() => h.close());
  return { h, clock };
}

/** Resolves when `socket` closes; rejects after `ms` (the bound of a test that waits on a server timeout). */
function closed(socket: net.Socket, ms: number, what: string): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} was not cut off within ${ms} ms`)), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

test('500 event streams from one key: 429 too_many_streams past the cap, another tenant unaffected, a closed stream frees its slot', async (t) => {
  const { h } = await start(t);
  const base = await h.server.listen(0);
  const agent = new http.Agent({ keepAlive: false, maxSockets: 600 });
  const clients: SseClient[] = [];
  t.after(() => {
    for (const c of clients) c.destroy();
    agent.destroy();
  });
  const CAP = h.server.config.limits.streams_per_caller;
  assert.equal(CAP, 100, 'the default cap');
  for (let i = 0; i < 500; i++) clients.push(await connectSse(`${base}/v1/events`, { headers: ALPHA, agent }));
  const open = clients.filter((c) => c.status === 200);
  const refused = clients.filter((c) => c.status === 429);
  assert.equal(open.length, CAP);
  assert.equal(refused.length, 500 - CAP);
  const sample = refused[0]!;
  assert.equal(sample.headers['retry-after'], '1');
  const envelope = JSON.parse(await sample.body()) as { error: { type: string; retryable: boolean } };
  assert.equal(envelope.error.type, 'too_many_streams');
  assert.equal(envelope.error.retryable, true);

  const beta = await connectSse(`${base}/v1/events`, { headers: BETA, agent });
  clients.push(beta);
  assert.equal(beta.status, 200, "another tenant's streams are not counted against alpha's");

  // One alpha stream goes away: its slot comes back once the server has seen the close.
  open[0]!.destroy();
  let again: SseClient | undefined;
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    again = await connectSse(`${base}/v1/events`, { headers: ALPHA, agent });
    clients.push(again);
    if (again.status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(again?.status, 200, 'the freed slot was given back');
});

test('every kind of event stream counts against the same per-key cap: request events, GET /v1/events, streaming chat and completions', async (t) => {
  const { h } = await start(t, { limits: { streams_per_caller: 2 }, openai: { models: ['echo'] } });
  const base = await h.server.listen(0);
  const clients: SseClient[] = [];
  t.after(() => {
    for (const c of clients) c.destroy();
  });
  const submitted = await h.inject({ method: 'POST', url: '/v1/operations/slow?async=true', headers: ALPHA, payload: {} });
  const id = json(submitted).request_id as string;
  clients.push(await connectSse(`${base}/v1/requests/${id}/events`, { headers: ALPHA }));
  clients.push(await connectSse(`${base}/v1/events`, { headers: ALPHA }));
  assert.deepEqual(
    clients.map((c) => c.status),
    [200, 200],
  );
  const before = (await h.server.store.requestList({ tenant: 'alpha', limit: 100 })).length;
  const chat = await connectSse(`${base}/v1/chat`, { method: 'POST', headers: ALPHA, body: { message: 'hi', stream: true } });
  clients.push(chat);
  assert.equal(chat.status, 429);
  assert.equal((JSON.parse(await chat.body()) as { error: { type: string } }).error.type, 'too_many_streams');
  const completion = await connectSse(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: ALPHA,
    body: { model: 'echo', stream: true, messages: [{ role: 'user', content: 'hi' }] },
  });
  clients.push(completion);
  assert.equal(completion.status, 429);
  assert.equal((await h.server.store.requestList({ tenant: 'alpha', limit: 100 })).length, before, 'nothing was submitted');
  const third = await connectSse(`${base}/v1/requests/${id}/events`, { headers: ALPHA });
  clients.push(third);
  assert.equal(third.status, 429);
});

test('long-polls and sync waits past limits.waits_per_caller: 429 too_many_waits, nothing submitted; answered waits free their slots', async (t) => {
  const { h, clock } = await start(t, { limits: { waits_per_caller: 3 } });
  const submitted = await h.inject({ method: 'POST', url: '/v1/operations/slow?async=true', headers: ALPHA, payload: {} });
  assert.equal(submitted.statusCode, 202);
  const id = json(submitted).request_id as string;
  await h.slow.started(id);

  const polls = [1, 2, 3].map(() => h.inject({ method: 'GET', url: `/v1/requests/${id}?wait=30`, headers: ALPHA }));
  await settle(20);
  const fourth = await h.inject({ method: 'GET', url: `/v1/requests/${id}?wait=30`, headers: ALPHA });
  assert.equal(fourth.statusCode, 429);
  assert.equal(errorOf(fourth).type, 'too_many_waits');
  assert.equal(fourth.headers['retry-after'], '1');

  const before = await h.server.store.requestList({ tenant: 'alpha', limit: 100 });
  const sync = await h.inject({ method: 'POST', url: '/v1/operations/echo?mode=sync', headers: ALPHA, payload: { x: 1 } });
  assert.equal(sync.statusCode, 429);
  assert.equal(errorOf(sync).type, 'too_many_waits');
  assert.equal(
    (await h.server.store.requestList({ tenant: 'alpha', limit: 100 })).length,
    before.length,
    'a refused sync submission wrote nothing',
  );

  const other = await h.inject({ method: 'GET', url: `/v1/requests/${id}?wait=0`, headers: ALPHA });
  assert.equal(other.statusCode, 200, 'a read without wait is not a wait');
  const betaSync = await h.inject({ method: 'POST', url: '/v1/operations/echo?mode=sync', headers: BETA, payload: { x: 2 } });
  assert.equal(betaSync.statusCode, 200, "beta's waits are its own");

  await clock.advance(30_000);
  for (const res of await Promise.all(polls)) assert.equal(res.statusCode, 200);
  const afterwards = await h.inject({ method: 'POST', url: '/v1/operations/echo?mode=sync', headers: ALPHA, payload: { x: 3 } });
  assert.equal(afterwards.statusCode, 200, 'answered waits gave their slots back');
});

test('slow-loris headers and bodies are cut off, while a long-poll and an event stream on quiet connections outlive every timeout', async (t) => {
  // Registered before the server's own close (hooks run in order): a connection left open would hold that close.
  const sockets: net.Socket[] = [];
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  const { h, clock } = await start(t, {
    limits: { headers_timeout: '600ms', request_timeout: '600ms', idle_timeout: '200ms' },
  });
  const base = await h.server.listen(0);
  const url = new URL(base);
  const connect = async () => {
    const socket = net.connect(Number(url.port), url.hostname);
    sockets.push(socket);
    await once(socket, 'connect');
    return socket;
  };

  // Legitimate quiet connections: a long-poll (held on the manual clock) and an event stream.
  const submitted = await h.inject({ method: 'POST', url: '/v1/operations/slow?async=true', headers: ALPHA, payload: {} });
  const id = json(submitted).request_id as string;
  await h.slow.started(id);
  const poll = fetch(`${base}/v1/requests/${id}?wait=30`, { headers: ALPHA });
  const stream = await connectSse(`${base}/v1/events`, { headers: ALPHA });
  t.after(() => stream.destroy());
  assert.equal(stream.status, 200);

  // Headers that never end, and a body that never arrives.
  const slowHeaders = await connect();
  slowHeaders.write(`GET /health HTTP/1.1\r\nHost: ${url.host}\r\nX-Slow: 1\r\n`);
  const slowBody = await connect();
  slowBody.write(
    `POST /v1/operations/echo HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer key_alpha_123\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":`,
  );
  await Promise.all([
    closed(slowHeaders, 10_000, 'a client sending its headers slowly'),
    closed(slowBody, 10_000, 'a client sending its body slowly'),
  ]);

  // 600 ms and more have passed: three times the idle timeout, the headers and request timeouts.
  assert.equal(stream.ended, false, 'the event stream is still open');
  let pollDone = false;
  void poll.then(() => {
    pollDone = true;
  });
  await settle();
  assert.equal(pollDone, false, 'the long-poll is still waiting');
  await clock.advance(30_000);
  const answered = await poll;
  assert.equal(answered.status, 200, 'the long-poll answered at the end of its wait');
  assert.equal(((await answered.json()) as { status: string }).status, 'processing');
});

test('a spray of bad keys throttles that address (good key included) until its window ends; other addresses are unaffected', async (t) => {
  const { h, clock } = await start(t, { limits: { failed_auth: { max: 5, window: '1m' } } });
  const from = (remoteAddress: string, headers: Record<string, string>) =>
    h.inject({ method: 'GET', url: '/v1/requests', headers, remoteAddress });
  for (let i = 0; i < 5; i++) assert.equal((await from('203.0.113.7', { authorization: `Bearer guess_${i}_xxxxx` })).statusCode, 401);
  const blocked = await from('203.0.113.7', { authorization: 'Bearer guess_6_xxxxx' });
  assert.equal(blocked.statusCode, 429);
  assert.equal(errorOf(blocked).type, 'too_many_auth_failures');
  assert.equal(blocked.headers['retry-after'], '60');
  const goodKeyThere = await from('203.0.113.7', ALPHA);
  assert.equal(goodKeyThere.statusCode, 429, 'a right key from a throttled address teaches the guesser nothing');
  assert.equal((await from('203.0.113.8', ALPHA)).statusCode, 200, 'another address is not locked out');
  assert.equal((await h.inject({ method: 'GET', url: '/health', remoteAddress: '203.0.113.7' })).statusCode, 200, '/health checks no key');

  // IPv6 counts per /64.
  for (let i = 1; i <= 5; i++) await from(`2001:db8:1:2::${i}`, { authorization: 'Bearer wrong_key_xx' });
  assert.equal((await from('2001:db8:1:2:ffff::9', ALPHA)).statusCode, 429, 'the same /64');
  assert.equal((await from('2001:db8:1:3::1', ALPHA)).statusCode, 200, 'another /64');

  await clock.advance(60_000);
  assert.equal((await from('203.0.113.7', ALPHA)).statusCode, 200, 'the window ended');
});

test('a submission flood gets 429 rate_limited with Retry-After and RateLimit headers; other tenants are unaffected; batches count their items', async (t) => {
  const { h, clock } = await start(t, {
    limits: {
      submissions: { rate: 10, burst: 20, tenants: { beta: { rate: 1, burst: 50 } }, operations: { fail: { rate: 1, burst: 2 } } },
    },
  });
  const submit = (headers: Record<string, string>, operation = 'echo') =>
    h.inject({ method: 'POST', url: `/v1/operations/${operation}?async=true`, headers, payload: {} });
  for (let i = 0; i < 20; i++) {
    const res = await submit(ALPHA);
    assert.equal(res.statusCode, 202);
    assert.equal(res.headers['ratelimit-limit'], '20');
    assert.equal(res.headers['ratelimit-remaining'], String(19 - i));
  }
  const count = async () => (await h.server.store.requestList({ tenant: 'alpha', limit: 100 })).length;
  const flood = await submit(ALPHA);
  assert.equal(flood.statusCode, 429);
  const error = errorOf(flood);
  assert.equal(error.type, 'rate_limited');
  assert.equal(error.limit, 'tenant');
  assert.equal(flood.headers['retry-after'], '1');
  assert.equal(flood.headers['ratelimit-limit'], '20');
  assert.equal(flood.headers['ratelimit-remaining'], '0');
  assert.equal(flood.headers['ratelimit-reset'], '2', 'seconds until the bucket is full');
  assert.equal(await count(), 20, 'the refused submission wrote nothing');
  for (const url of ['/v1/chat', '/v1/triggers/echo-trigger', '/v1/bots/b1/actions/echo', '/v1/chat/completions']) {
    const payload = url === '/v1/chat/completions' ? { model: 'echo', messages: [{ role: 'user', content: 'hi' }] } : { message: 'hi' };
    const res = await h.inject({ method: 'POST', url, headers: ALPHA, payload });
    assert.equal(res.statusCode, 429, `${url} is a submission too`);
    assert.equal(res.headers['retry-after'], '1');
  }

  const beta = await submit(BETA);
  assert.equal(beta.statusCode, 202, 'beta has its own bucket');
  assert.equal(beta.headers['ratelimit-limit'], '50', "beta's override");

  await clock.advance(100);
  assert.equal((await submit(ALPHA)).statusCode, 202, 'one token back after 100 ms at 10/s');
  assert.equal((await submit(ALPHA)).statusCode, 429);

  // A batch costs one token per item: 5 items need 5 tokens (500 ms at 10/s).
  await clock.advance(400);
  const batch = () =>
    h.inject({ method: 'POST', url: '/v1/batches', headers: ALPHA, payload: { operation: 'echo', items: [1, 2, 3, 4, 5] } });
  assert.equal((await batch()).statusCode, 429, '4 tokens are not enough for 5 items');
  await clock.advance(100);
  const accepted = await batch();
  assert.equal(accepted.statusCode, 202);
  assert.equal(accepted.headers['ratelimit-remaining'], '0');

  // Per-operation buckets sit on top of the tenant's.
  await clock.advance(10_000);
  assert.equal((await submit(ALPHA, 'fail')).statusCode, 202);
  assert.equal((await submit(ALPHA, 'fail')).statusCode, 202);
  const limited = await submit(ALPHA, 'fail');
  assert.equal(limited.statusCode, 429);
  assert.equal(errorOf(limited).limit, 'operation');
  assert.equal((await submit(ALPHA, 'echo')).statusCode, 202, 'other operations keep the tenant rate');
});

test('with auth off (one local user) the per-caller limits do not apply', async (t) => {
  const clock = new ManualClock(T0);
  const h = await startHttpServer({ clock, overrides: { limits: { submissions: { rate: 1, burst: 1 }, waits_per_caller: 1 } } });
  t.after(() => h.close());
  for (let i = 0; i < 5; i++) {
    const res = await h.inject({ method: 'POST', url: '/v1/operations/echo?async=true', payload: {} });
    assert.equal(res.statusCode, 202);
    assert.equal(res.headers['ratelimit-limit'], undefined);
  }
});

// Review findings (issue 11, item 7): slots after an early hang-up, the throttle behind a proxy, unknown /v1 paths.

const BAD_KEY = { authorization: 'Bearer guess_xxxxxxx' };

/** One store read held by the test. */
interface Gate {
  /** Resolves once the gated call has started. */
  entered: Promise<void>;
  /** Lets the gated call go on; resolves once it has returned to its caller. */
  open(): Promise<void>;
}

test('a client that hangs up while its stream route reads the store does not leak its stream slot', async (t) => {
  const { h } = await start(t, { limits: { streams_per_caller: 2 } });
  const base = await h.server.listen(0);
  const port = Number(new URL(base).port);
  const clients: SseClient[] = [];
  t.after(() => {
    for (const c of clients) c.destroy();
  });
  const id = json(await h.inject({ method: 'POST', url: '/v1/operations/slow?async=true', headers: ALPHA, payload: {} }))
    .request_id as string;

  // The seam: the route's last store read before its hold waits until the test opens it.
  const store = h.server.engine.store;
  const original = store.eventListAfter.bind(store);
  interface Pending {
    started: () => void;
    proceed: Promise<void>;
    returned: () => void;
  }
  let pending: Pending | undefined;
  store.eventListAfter = async (params) => {
    const gate = pending;
    pending = undefined;
    if (gate === undefined) return original(params);
    gate.started();
    await gate.proceed;
    try {
      return await original(params);
    } finally {
      gate.returned();
    }
  };
  t.after(() => {
    store.eventListAfter = original;
  });
  /** Holds the next read until `open()`. */
  const arm = (): Gate => {
    let started!: () => void;
    let proceed!: () => void;
    let returned!: () => void;
    const entered = new Promise<void>((resolve) => (started = resolve));
    const proceeding = new Promise<void>((resolve) => (proceed = resolve));
    const done = new Promise<void>((resolve) => (returned = resolve));
    pending = { started, proceed: proceeding, returned };
    return {
      entered,
      async open() {
        proceed();
        await done;
        // From the read's return to the hold the route runs on microtasks only: all done before this.
        await new Promise((resolve) => setImmediate(resolve));
      },
    };
  };

  const serverSockets: net.Socket[] = [];
  h.server.app.server.on('connection', (socket: net.Socket) => serverSockets.push(socket));
  for (let i = 0; i < 2; i++) {
    const gate = arm();
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.write(
      `GET /v1/requests/${id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: ${ALPHA.authorization}\r\n\r\n`,
    );
    await gate.entered;
    const serverSide = serverSockets.at(-1)!;
    // Not once(): that would reject on the socket's ECONNRESET error, which comes first.
    const serverClosed = new Promise<void>((resolve) => (serverSide.destroyed ? resolve() : serverSide.once('close', () => resolve())));
    socket.resetAndDestroy();
    await serverClosed;
    await gate.open();
  }

  for (let i = 0; i < 2; i++) clients.push(await connectSse(`${base}/v1/requests/${id}/events`, { headers: ALPHA }));
  assert.deepEqual(
    clients.map((c) => c.status),
    [200, 200],
    'both slots are free again: the hung-up clients gave theirs back',
  );
  clients.push(await connectSse(`${base}/v1/requests/${id}/events`, { headers: ALPHA }));
  assert.equal(clients[2]!.status, 429, 'the cap still holds');
});

test('behind a trusted proxy the failed-key throttle counts each forwarded client; a good client is not locked out', async (t) => {
  const { h } = await start(t, { server: { trust_proxy: ['127.0.0.1'] }, limits: { failed_auth: { max: 3, window: '1m' } } });
  const via = (client: string, headers: Record<string, string>) =>
    h.inject({ method: 'GET', url: '/v1/requests', remoteAddress: '127.0.0.1', headers: { ...headers, 'x-forwarded-for': client } });
  for (let i = 0; i < 3; i++) assert.equal((await via('198.51.100.1', BAD_KEY)).statusCode, 401);
  const throttled = await via('198.51.100.1', ALPHA);
  assert.equal(throttled.statusCode, 429);
  assert.equal(errorOf(throttled).type, 'too_many_auth_failures');
  assert.equal((await via('198.51.100.2', ALPHA)).statusCode, 200, 'another client behind the same proxy still gets in');
  // A peer that is not the trusted proxy cannot name another client.
  const direct = (headers: Record<string, string>) =>
    h.inject({
      method: 'GET',
      url: '/v1/requests',
      remoteAddress: '203.0.113.9',
      headers: { ...headers, 'x-forwarded-for': '198.51.100.3' },
    });
  for (let i = 0; i < 3; i++) assert.equal((await direct(BAD_KEY)).statusCode, 401);
  assert.equal((await direct(ALPHA)).statusCode, 429, 'the untrusted peer itself is throttled');
  assert.equal((await via('198.51.100.3', ALPHA)).statusCode, 200, 'the client it named was never counted');
});

test('without server.trust_proxy, X-Forwarded-For is ignored: a throttled client cannot spoof its way out', async (t) => {
  const { h } = await start(t, { limits: { failed_auth: { max: 3, window: '1m' } } });
  const from = (forwarded: string, headers: Record<string, string>) =>
    h.inject({ method: 'GET', url: '/v1/requests', remoteAddress: '203.0.113.7', headers: { ...headers, 'x-forwarded-for': forwarded } });
  for (let i = 0; i < 3; i++) assert.equal((await from(`198.51.100.${i}`, BAD_KEY)).statusCode, 401);
  assert.equal((await from('198.51.100.99', ALPHA)).statusCode, 429);
});

test('limits.failed_auth.max 0 turns the throttle off', async (t) => {
  const { h } = await start(t, { limits: { failed_auth: { max: 0 } } });
  const from = (headers: Record<string, string>) => h.inject({ method: 'GET', url: '/v1/requests', remoteAddress: '203.0.113.7', headers });
  for (let i = 0; i < 50; i++) assert.equal((await from(BAD_KEY)).statusCode, 401);
  assert.equal((await from(ALPHA)).statusCode, 200);
});

test('unknown /v1 paths are throttled, and their 401s count, like every /v1 path', async (t) => {
  const { h } = await start(t, { limits: { failed_auth: { max: 3, window: '1m' } } });
  const from = (url: string, headers: Record<string, string>) => h.inject({ method: 'GET', url, remoteAddress: '203.0.113.7', headers });
  for (let i = 0; i < 3; i++) assert.equal((await from(`/v1/nope${i}`, BAD_KEY)).statusCode, 401);
  const guessed = await from('/v1/requests', ALPHA);
  assert.equal(guessed.statusCode, 429, '401s on unknown paths counted');
  assert.equal(errorOf(guessed).type, 'too_many_auth_failures');
  assert.equal((await from('/v1/nope', ALPHA)).statusCode, 429, 'a good key on an unknown path learns nothing either');
  assert.equal((await from('/v1/nope', BAD_KEY)).statusCode, 429);
  assert.equal(
    (await h.inject({ method: 'GET', url: '/v1/nope', remoteAddress: '203.0.113.8', headers: ALPHA })).statusCode,
    404,
    'elsewhere: a good key gets 404',
  );
});
