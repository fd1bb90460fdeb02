/** Inputs at the edges of parsing and routing: each gets the one envelope and a 4xx, never a 500. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorOf, json, startHttpServer, type TestHttpServer } from '../helpers/http.js';

describe('edge cases', () => {
  let t: TestHttpServer;
  before(async () => {
    t = await startHttpServer();
  });
  after(() => t.close());

  async function countRequests(): Promise<number> {
    return json<{ data: unknown[] }>(await t.inject({ method: 'GET', url: '/v1/requests?limit=100' })).data.length;
  }

  test('a body nested deeper than 128 levels is 400 invalid_json and stores nothing', async () => {
    const before = await countRequests();
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const res = await t.inject({
      method: 'POST',
      url: '/v1/operations/echo',
      headers: { 'content-type': 'application/json' },
      payload: deep,
    });
    assert.equal(res.statusCode, 400);
    assert.equal(errorOf(res).type, 'invalid_json');
    assert.equal(await countRequests(), before);
    const ok = await t.inject({ method: 'POST', url: '/v1/operations/echo?async=false', payload: { a: { b: { c: [1, [2, [3]]] } } } });
    assert.equal(ok.statusCode, 200);
  });

  test('a malformed %-escape in the URL is 400 invalid_parameter in the envelope', async () => {
    const res = await t.inject({ method: 'GET', url: '/v1/requests/%ZZ' });
    assert.equal(res.statusCode, 400);
    assert.equal(errorOf(res).type, 'invalid_parameter');
  });

  test('a JSON null body is the input null, not {}', async () => {
    const res = await t.inject({
      method: 'POST',
      url: '/v1/operations/echo?async=false',
      headers: { 'content-type': 'application/json' },
      payload: 'null',
    });
    assert.equal(res.statusCode, 200);
    assert.equal(json(res).status, 'completed');
    assert.equal(json(res).result, null);
    const trig = await t.inject({ method: 'POST', url: '/v1/triggers/echo-trigger', payload: { data: null, use_async: false } });
    assert.equal(json(trig).result, null);
  });
});
