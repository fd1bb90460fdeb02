/**
 * Issue 11, item 3: with auth off (no API keys), a web page the operator visits
 * must not be able to drive Errand on 127.0.0.1, neither by posting a form to
 * it (CSRF: every content type is read as JSON) nor through a host name that
 * rebinds to 127.0.0.1 (DNS rebinding). Clients on the machine (curl, the SDK:
 * no Origin) and the same-origin dashboard keep working. And a node with auth
 * off refuses to listen on anything but loopback, whoever starts it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConfigError } from '../../src/config/index.js';
import { isLoopbackHost } from '../../src/http/index.js';
import { errorOf, json, listAllIds, startHttpServer, type TestHttpServer } from '../helpers/http.js';

const EVIL = 'https://evil.example';

describe('auth off: cross-site requests and rebound host names are refused', () => {
  let t: TestHttpServer;
  before(async () => {
    t = await startHttpServer();
  });
  after(() => t.close());

  function assertRefused(res: { statusCode: number; body: string }, field: string): void {
    assert.equal(res.statusCode, 403, res.body);
    const error = errorOf(res as Parameters<typeof errorOf>[0]);
    assert.equal(error.type, 'origin_not_allowed');
    assert.equal(error.field, field);
    assert.equal(error.retryable, false);
  }

  test('a form another site posts (text/plain or urlencoded, read as JSON) is refused and nothing is stored', async () => {
    const before = await listAllIds(t);
    const attacks = [
      {
        url: '/v1/chat',
        headers: { origin: EVIL, 'content-type': 'text/plain', 'sec-fetch-site': 'cross-site' },
        payload: '{"message":"pwned"}',
      },
      { url: '/v1/operations/echo', headers: { origin: EVIL, 'content-type': 'application/x-www-form-urlencoded' }, payload: '{"a":1}' },
      { url: '/v1/operations/echo', headers: { origin: 'null', 'content-type': 'text/plain' }, payload: '{"a":1}' },
      {
        url: '/v1/operations/echo',
        headers: { origin: 'http://127.0.0.1.evil.example:8001', 'content-type': 'text/plain' },
        payload: '{}',
      },
    ];
    for (const attack of attacks) assertRefused(await t.inject({ method: 'POST', ...attack }), 'Origin');
    // A browser that sends Sec-Fetch-Site but (for whatever reason) no Origin.
    assertRefused(
      await t.inject({
        method: 'POST',
        url: '/v1/chat',
        headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' },
        payload: '{"message":"x"}',
      }),
      'Sec-Fetch-Site',
    );
    assert.deepEqual(await listAllIds(t), before);
  });

  test('a cancel from another site is refused too', async () => {
    const created = await t.inject({ method: 'POST', url: '/v1/operations/slow', payload: {} });
    assert.equal(created.statusCode, 202, created.body);
    const id = json(created).request_id as string;
    assertRefused(await t.inject({ method: 'DELETE', url: `/v1/requests/${id}`, headers: { origin: EVIL } }), 'Origin');
    const status = json(await t.inject({ method: 'GET', url: `/v1/requests/${id}` }));
    assert.notEqual(status.status, 'cancelled');
    await t.inject({ method: 'DELETE', url: `/v1/requests/${id}` });
  });

  test('a rebound host name cannot read the request list, the dashboard or health', async () => {
    for (const host of [
      'rebind.evil.example:8001',
      'rebind.evil.example',
      'evil.example@127.0.0.1:8001',
      '10.0.0.5:8001',
      '[2001:db8::1]:8001',
      'localhost.evil.example',
    ]) {
      for (const url of ['/v1/requests', '/dashboard', '/health', '/openapi.json']) {
        assertRefused(await t.inject({ method: 'GET', url, headers: { host } }), 'Host');
      }
    }
  });

  test('a cross-site CORS preflight is refused like the request it announces', async () => {
    const res = await t.inject({
      method: 'OPTIONS',
      url: '/v1/requests',
      headers: { origin: EVIL, 'access-control-request-method': 'GET', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' },
    });
    assertRefused(res, 'Origin');
    assert.equal(res.headers['access-control-allow-origin'], undefined);
  });

  test('clients on this machine work: no Origin (curl, SDK), loopback hosts, the same-origin dashboard, a link to it', async () => {
    for (const host of [
      '127.0.0.1:8001',
      'localhost:8001',
      'localhost',
      '[::1]:8001',
      'app.localhost:3000',
      '127.8.9.10:80',
      'LOCALHOST.:8001',
    ]) {
      const res = await t.inject({ method: 'POST', url: '/v1/operations/echo', headers: { host }, payload: { host } });
      assert.ok(res.statusCode === 200 || res.statusCode === 202, `${host}: ${res.statusCode} ${res.body}`);
    }
    // The dashboard's own fetches: same origin, marked same-origin.
    const same = await t.inject({
      method: 'POST',
      url: '/v1/operations/echo',
      headers: {
        host: '127.0.0.1:8001',
        origin: 'http://127.0.0.1:8001',
        'sec-fetch-site': 'same-origin',
        'content-type': 'application/json',
      },
      payload: { from: 'dashboard' },
    });
    assert.ok(same.statusCode === 200 || same.statusCode === 202, same.body);
    const local = await t.inject({
      method: 'GET',
      url: '/v1/requests?limit=1',
      headers: { host: 'localhost:8001', origin: 'http://localhost:5173', 'sec-fetch-site': 'same-site' },
    });
    assert.equal(local.statusCode, 200, local.body);
    // Following a link from another site opens the page (it cannot read what it opened); /health needs no built dashboard.
    const link = await t.inject({
      method: 'GET',
      url: '/health',
      headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' },
    });
    assert.equal(link.statusCode, 200, link.body);
  });

  test('createServer().listen() refuses a non-loopback address with auth off', async () => {
    const open = await startHttpServer({ overrides: { server: { host: '0.0.0.0' } } });
    try {
      await assert.rejects(open.server.listen(0), (err: unknown) => err instanceof ConfigError && /server\.host/.test(err.message));
      assert.equal(open.server.app.server.listening, false);
    } finally {
      await open.close();
    }
  });
});

describe('auth on: keys are the protection', () => {
  let t: TestHttpServer;
  before(async () => {
    t = await startHttpServer({ overrides: { server: { host: '0.0.0.0' }, auth: { keys: [{ key: 'fmc_alpha_key', tenant: 'alpha' }] } } });
  });
  after(() => t.close());

  test('any Host and Origin is served with a key, and a cross-site request without one is 401', async () => {
    const headers = { host: 'errand.example.com', origin: EVIL, authorization: 'Bearer fmc_alpha_key' };
    const res = await t.inject({ method: 'POST', url: '/v1/operations/echo', headers, payload: { a: 1 } });
    assert.ok(res.statusCode === 200 || res.statusCode === 202, res.body);
    const anonymous = await t.inject({
      method: 'POST',
      url: '/v1/operations/echo',
      headers: { origin: EVIL, 'content-type': 'text/plain' },
      payload: '{}',
    });
    assert.equal(anonymous.statusCode, 401);
  });
});

test('isLoopbackHost', () => {
  for (const host of [
    '127.0.0.1',
    '127.255.0.9',
    '::1',
    '[::1]',
    '::ffff:127.0.0.1',
    '0:0:0:0:0:0:0:1',
    'localhost',
    'LocalHost.',
    'a.b.localhost',
  ]) {
    assert.equal(isLoopbackHost(host), true, host);
  }
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'localhost.example', 'notlocalhost', '::2', '::ffff:10.0.0.1', '']) {
    assert.equal(isLoopbackHost(host), false, host);
  }
});
