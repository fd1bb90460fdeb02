/**
 * Abuse tests of the limits layer from its security review (issue 11, item 7):
 *
 * - A client that hangs up while its event-stream route is still reading the
 *   store must not leak its stream slot (the hold comes after the hang-up).
 * - Behind a trusted proxy (`server.trust_proxy`) the failed-key throttle
 *   counts the forwarded client, not the proxy; without it, X-Forwarded-For is
 *   ignored (no spoofing out of a throttle); `failed_auth.max: 0` turns it off.
 * - Unknown `/v1` paths are throttled and counted like every other `/v1` path.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { ManualClock } from '../helpers/clock.js';
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
const BAD = { authorization: 'Bearer guess_xxxxxxx' };

async function start(t: TestContext, overrides: Record<string, unknown> = {}): Promise<TestHttpServer> {
  const h = await startHttpServer({ clock: new ManualClock(T0), overrides: { ...KEYS, ...overrides } });
  t.after(() => h.close());
  return h;
}

/** One store read held by the test. */
interface Gate {
  /** Resolves once the gated call has started. */
  entered: Promise<void>;
  /** Lets the gated call go on; resolves once it has returned to its caller. */
  open(): Promise<void>;
}

test('a client that hangs up while its stream route reads the store does not leak its stream slot', async (t) => {
  const h = await start(t, { limits: { streams_per_caller: 2 } });
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
  const h = await start(t, { server: { trust_proxy: ['127.0.0.1'] }, limits: { failed_auth: { max: 3, window: '1m' } } });
  const via = (client: string, headers: Record<string, string>) =>
    h.inject({ method: 'GET', url: '/v1/requests', remoteAddress: '127.0.0.1', headers: { ...headers, 'x-forwarded-for': client } });
  for (let i = 0; i < 3; i++) assert.equal((await via('198.51.100.1', BAD)).statusCode, 401);
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
  for (let i = 0; i < 3; i++) assert.equal((await direct(BAD)).statusCode, 401);
  assert.equal((await direct(ALPHA)).statusCode, 429, 'the untrusted peer itself is throttled');
  assert.equal((await via('198.51.100.3', ALPHA)).statusCode, 200, 'the client it named was never counted');
});

test('without server.trust_proxy, X-Forwarded-For is ignored: a throttled client cannot spoof its way out', async (t) => {
  const h = await start(t, { limits: { failed_auth: { max: 3, window: '1m' } } });
  const from = (forwarded: string, headers: Record<string, string>) =>
    h.inject({ method: 'GET', url: '/v1/requests', remoteAddress: '203.0.113.7', headers: { ...headers, 'x-forwarded-for': forwarded } });
  for (let i = 0; i < 3; i++) assert.equal((await from(`198.51.100.${i}`, BAD)).statusCode, 401);
  assert.equal((await from('198.51.100.99', ALPHA)).statusCode, 429);
});

test('limits.failed_auth.max 0 turns the throttle off', async (t) => {
  const h = await start(t, { limits: { failed_auth: { max: 0 } } });
  const from = (headers: Record<string, string>) => h.inject({ method: 'GET', url: '/v1/requests', remoteAddress: '203.0.113.7', headers });
  for (let i = 0; i < 50; i++) assert.equal((await from(BAD)).statusCode, 401);
  assert.equal((await from(ALPHA)).statusCode, 200);
});

test('unknown /v1 paths are throttled, and their 401s count, like every /v1 path', async (t) => {
  const h = await start(t, { limits: { failed_auth: { max: 3, window: '1m' } } });
  const from = (url: string, headers: Record<string, string>) => h.inject({ method: 'GET', url, remoteAddress: '203.0.113.7', headers });
  for (let i = 0; i < 3; i++) assert.equal((await from(`/v1/nope${i}`, BAD)).statusCode, 401);
  const guessed = await from('/v1/requests', ALPHA);
  assert.equal(guessed.statusCode, 429, '401s on unknown paths counted');
  assert.equal(errorOf(guessed).type, 'too_many_auth_failures');
  assert.equal((await from('/v1/nope', ALPHA)).statusCode, 429, 'a good key on an unknown path learns nothing either');
  assert.equal((await from('/v1/nope', BAD)).statusCode, 429);
  assert.equal(
    (await h.inject({ method: 'GET', url: '/v1/nope', remoteAddress: '203.0.113.8', headers: ALPHA })).statusCode,
    404,
    'elsewhere: a good key gets 404',
  );
});
