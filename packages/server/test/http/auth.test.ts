/**
 * API keys and tenant isolation: every /v1 route needs a key (three header
 * spellings), a tenant sees only its own requests (another tenant's id is a
 * 404, never a 403), an admin key sees everything, /health and /ready are open.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorOf, json, listAllIds, startHttpServer, type TestHttpServer } from '../helpers/http.js';

const ALPHA = { authorization: 'Bearer fmc_alpha_key' };
const BETA = { authorization: 'Bearer fmc_beta_key' };
const ADMIN = { authorization: 'Bearer adm_secret_key' };

let t: TestHttpServer;
let alphaDone = '';
let alphaRunning = '';
let betaDone = '';

before(async () => {
  t = await startHttpServer({
    overrides: {
      auth: {
        keys: [
          { key: 'fmc_alpha_key', tenant: 'alpha' },
          { key: 'fmc_beta_key', tenant: 'beta' },
        ],
        admin_keys: ['adm_secret_key'],
      },
    },
  });
  const a = await t.inject({ method: 'POST', url: '/v1/chat', headers: ALPHA, payload: { message: 'alpha says hi' } });
  assert.equal(a.statusCode, 200, a.body);
  alphaDone = json(a).request_id as string;
  const r = await t.inject({ method: 'POST', url: '/v1/operations/slow', headers: ALPHA, payload: {} });
  assert.equal(r.statusCode, 202, r.body);
  alphaRunning = json(r).request_id as string;
  await t.slow.started(alphaRunning);
  const b = await t.inject({ method: 'POST', url: '/v1/chat', headers: BETA, payload: { message: 'beta says hi' } });
  assert.equal(b.statusCode, 200, b.body);
  betaDone = json(b).request_id as string;
});
after(async () => {
  await t?.close();
});

describe('API keys', () => {
  test('missing key → 401 unauthorized on every /v1 route, and nothing is stored', async () => {
    const before = await listAllIds(t, ADMIN);
    const routes = [
      { method: 'POST', url: '/v1/chat', payload: { message: 'x' } },
      { method: 'POST', url: '/v1/operations/echo', payload: {} },
      { method: 'POST', url: '/v1/triggers/echo-trigger', payload: { data: {} } },
      { method: 'POST', url: '/v1/bots/b/actions/echo', payload: {} },
      { method: 'GET', url: `/v1/requests/${alphaDone}` },
      { method: 'GET', url: `/v1/requests/${alphaDone}/result` },
      { method: 'DELETE', url: `/v1/requests/${alphaRunning}` },
      { method: 'GET', url: '/v1/requests' },
      { method: 'GET', url: `/v1/tasks/${alphaDone}` },
      { method: 'GET', url: '/v1/unknown-route' },
    ] as const;
    for (const route of routes) {
      const res = await t.inject({ ...route });
      assert.equal(res.statusCode, 401, `${route.method} ${route.url}: ${res.body}`);
      const err = errorOf(res);
      assert.equal(err.type, 'unauthorized');
      assert.equal(err.retryable, false);
    }
    assert.deepEqual(await listAllIds(t, ADMIN), before);
    // the running request was not cancelled by the unauthenticated DELETE
    const running = json(await t.inject({ method: 'GET', url: `/v1/requests/${alphaRunning}`, headers: ALPHA }));
    assert.equal(running.status, 'processing');
  });

  test('unknown key → 401 unauthorized (each header)', async () => {
    for (const headers of [
      { authorization: 'Bearer fmc_wrong_key' },
      { 'x-client-key': 'fmc_wrong_key' },
      { 'x-muxi-client-key': 'fmc_wrong_key' },
      { authorization: 'Basic Zm1jX2FscGhhX2tleTo=' },
      { authorization: 'Bearer ' },
      { 'x-client-key': '' },
    ]) {
      const res = await t.inject({ method: 'GET', url: '/v1/requests', headers });
      assert.equal(res.statusCode, 401, `${JSON.stringify(headers)}: ${res.body}`);
      assert.equal(errorOf(res).type, 'unauthorized');
    }
  });

  test('all three headers work', async () => {
    for (const headers of [
      { authorization: 'Bearer fmc_alpha_key' },
      { authorization: 'bearer   fmc_alpha_key' },
      { 'x-client-key': 'fmc_alpha_key' },
      { 'x-muxi-client-key': 'fmc_alpha_key' },
    ]) {
      const res = await t.inject({ method: 'GET', url: `/v1/requests/${alphaDone}`, headers });
      assert.equal(res.statusCode, 200, `${JSON.stringify(headers)}: ${res.body}`);
      assert.equal(json(res).request_id, alphaDone);
    }
  });

  test('a percent-encoded /v1 path is authenticated like the plain one (401 without a key, 200 with)', async () => {
    // The router decodes %76 to "v", so /%761/requests reaches the /v1/requests route.
    const res = await t.inject({ method: 'GET', url: '/%761/requests' });
    assert.equal(res.statusCode, 401, res.body);
    assert.equal(errorOf(res).type, 'unauthorized');
    const post = await t.inject({ method: 'POST', url: '/%761/chat', payload: { message: 'sneaky' } });
    assert.equal(post.statusCode, 401, post.body);
    assert.equal(errorOf(post).type, 'unauthorized');
    const ok = await t.inject({ method: 'GET', url: '/%761/requests', headers: ALPHA });
    assert.equal(ok.statusCode, 200, ok.body);
  });

  test('/health and /ready need no key', async () => {
    const health = await t.inject({ method: 'GET', url: '/health' });
    assert.equal(health.statusCode, 200, health.body);
    assert.equal(json(health).status, 'ok');
    const ready = await t.inject({ method: 'GET', url: '/ready' });
    assert.equal(ready.statusCode, 200, ready.body);
    assert.equal(json(ready).status, 'ready');
  });
});

describe('tenant isolation', () => {
  test("beta cannot GET, /result or DELETE alpha's request: 404 request_not_found", async () => {
    for (const req of [
      { method: 'GET', url: `/v1/requests/${alphaDone}` },
      { method: 'GET', url: `/v1/requests/${alphaDone}/result` },
      { method: 'GET', url: `/v1/tasks/${alphaDone}` },
      { method: 'DELETE', url: `/v1/requests/${alphaRunning}` },
      { method: 'DELETE', url: `/v1/requests/${alphaDone}` },
      { method: 'GET', url: `/v1/requests/${alphaRunning}/result` },
    ] as const) {
      const res = await t.inject({ ...req, headers: BETA });
      assert.equal(res.statusCode, 404, `${req.method} ${req.url}: ${res.body}`);
      assert.equal(errorOf(res).type, 'request_not_found');
    }
    // alpha's running request is untouched by beta's DELETE
    const running = json(await t.inject({ method: 'GET', url: `/v1/requests/${alphaRunning}`, headers: ALPHA }));
    assert.equal(running.status, 'processing');
    assert.equal(t.slow.wasAborted(alphaRunning), false);
  });

  test('each tenant lists only its own requests', async () => {
    const alpha = await listAllIds(t, ALPHA);
    assert.deepEqual([...alpha].sort(), [alphaDone, alphaRunning].sort());
    const beta = await listAllIds(t, BETA);
    assert.deepEqual(beta, [betaDone]);
    const betaFailed = json(await t.inject({ method: 'GET', url: '/v1/requests?status=processing', headers: BETA }));
    assert.deepEqual(betaFailed.data, []);
  });

  test('admin sees and reads every tenant', async () => {
    const all = await listAllIds(t, ADMIN);
    for (const id of [alphaDone, alphaRunning, betaDone]) assert.ok(all.includes(id), `${id} listed for admin`);
    const res = await t.inject({ method: 'GET', url: `/v1/requests/${betaDone}/result`, headers: ADMIN });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(json(res).result, { message: 'beta says hi' });
  });

  test('alpha can cancel its own running request', async () => {
    const res = await t.inject({ method: 'DELETE', url: `/v1/requests/${alphaRunning}`, headers: { 'x-client-key': 'fmc_alpha_key' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(json(res).status, 'cancelled');
    await t.slow.aborted(alphaRunning);
    assert.equal((await t.waitTerminal(alphaRunning)).status, 'cancelled');
  });

  test('admin can cancel another tenant’s request', async () => {
    const r = await t.inject({ method: 'POST', url: '/v1/operations/slow', headers: BETA, payload: {} });
    const id = json(r).request_id as string;
    await t.slow.started(id);
    const res = await t.inject({ method: 'DELETE', url: `/v1/requests/${id}`, headers: ADMIN });
    assert.equal(res.statusCode, 200, res.body);
    await t.slow.aborted(id);
    assert.equal((await t.waitTerminal(id)).status, 'cancelled');
  });
});
