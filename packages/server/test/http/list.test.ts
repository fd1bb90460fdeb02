/**
 * GET /v1/requests: filters (status list, operation), cursor pagination and
 * invalid parameters.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorOf, json, startHttpServer, type JsonBody, type TestHttpServer } from '../helpers/http.js';

let t: TestHttpServer;
const echoIds: string[] = [];
const failIds: string[] = [];
let slowId = '';

before(async () => {
  t = await startHttpServer();
  for (let i = 0; i < 20; i++) {
    const res = await t.inject({ method: 'POST', url: '/v1/operations/echo?async=true', payload: { i } });
    assert.equal(res.statusCode, 202, res.body);
    echoIds.push(json(res).request_id as string);
  }
  for (let i = 0; i < 4; i++) {
    const res = await t.inject({ method: 'POST', url: '/v1/operations/fail?async=true', payload: { i } });
    assert.equal(res.statusCode, 202, res.body);
    failIds.push(json(res).request_id as string);
  }
  const res = await t.inject({ method: 'POST', url: '/v1/operations/slow?async=true', payload: {} });
  slowId = json(res).request_id as string;
  for (const id of [...echoIds, ...failIds]) await t.waitTerminal(id);
  await t.slow.started(slowId);
});
after(async () => {
  await t?.close();
});

const list = (qs = '') => t.inject({ method: 'GET', url: `/v1/requests${qs ? `?${qs}` : ''}` });

describe('GET /v1/requests', () => {
  test('default page: newest first, page shape', async () => {
    const res = await list();
    assert.equal(res.statusCode, 200, res.body);
    const body = json(res);
    assert.ok(Array.isArray(body.data));
    assert.equal(body.data.length, 20);
    assert.equal(body.has_more, true);
    assert.equal(typeof body.next_cursor, 'string');
    assert.equal(body.data[0].request_id, slowId);
    const ids = body.data.map((r: { request_id: string }) => r.request_id);
    assert.deepEqual(ids, [...ids].sort().reverse(), 'newest first');
  });

  test('cursor pagination walks all 25 with limit 10: no duplicates, no gaps', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    const sizes: number[] = [];
    for (let page = 0; page < 10; page++) {
      const res = await list(`limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(res.statusCode, 200, res.body);
      const body = json(res);
      sizes.push(body.data.length);
      for (const r of body.data) seen.push(r.request_id);
      if (!body.has_more) {
        assert.equal(body.next_cursor, null);
        cursor = null;
        break;
      }
      cursor = body.next_cursor;
    }
    assert.equal(cursor, null, 'pagination ended');
    assert.deepEqual(sizes, [10, 10, 5]);
    assert.equal(new Set(seen).size, seen.length, 'no duplicates');
    const all = [...echoIds, ...failIds, slowId];
    assert.deepEqual([...seen].sort(), [...all].sort(), 'every request exactly once');
    assert.deepEqual(seen, [...all].sort().reverse(), 'newest first across pages');
  });

  test('filter by one status', async () => {
    const body = json(await list('status=failed&limit=100'));
    assert.deepEqual(body.data.map((r: { request_id: string }) => r.request_id).sort(), [...failIds].sort());
    for (const r of body.data) assert.equal(r.status, 'failed');
  });

  test('filter by a comma-separated status list', async () => {
    const body = json(await list('status=failed,processing&limit=100'));
    assert.deepEqual(body.data.map((r: { request_id: string }) => r.request_id).sort(), [...failIds, slowId].sort());
    assert.equal(body.has_more, false);
  });

  test('filter by operation (and combined with status)', async () => {
    const echo = json(await list('operation=echo&limit=100'));
    assert.equal(echo.data.length, 20);
    for (const r of echo.data) assert.equal(r.operation, 'echo');
    const none = json(await list('operation=echo&status=failed'));
    assert.deepEqual(none.data, []);
    assert.equal(none.has_more, false);
    assert.equal(none.next_cursor, null);
    const unknown = json(await list('operation=nope'));
    assert.deepEqual(unknown.data, []);
  });

  test('filters hold across pages', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const body: JsonBody = json(await list(`operation=echo&limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`));
      for (const r of body.data) seen.push(r.request_id);
      if (!body.has_more) break;
      cursor = body.next_cursor;
    }
    assert.deepEqual([...seen].sort(), [...echoIds].sort());
  });

  test('limit > 100 → 400 invalid_parameter; limit 0 / non-number → 400', async () => {
    for (const qs of ['limit=101', 'limit=0', 'limit=abc', 'limit=1.5']) {
      const res = await list(qs);
      assert.equal(res.statusCode, 400, `${qs}: ${res.body}`);
      const err = errorOf(res);
      assert.equal(err.type, 'invalid_parameter', qs);
      assert.equal(err.field, 'limit', qs);
    }
    const max = await list('limit=100');
    assert.equal(max.statusCode, 200);
  });

  test('bad status → 400 invalid_parameter', async () => {
    for (const qs of ['status=done', 'status=failed,bogus']) {
      const res = await list(qs);
      assert.equal(res.statusCode, 400, `${qs}: ${res.body}`);
      const err = errorOf(res);
      assert.equal(err.type, 'invalid_parameter', qs);
      assert.match(String(err.field), /^status/);
    }
  });

  test('garbage cursor → 400 invalid_cursor', async () => {
    for (const cursor of [
      'garbage',
      Buffer.from('v1:not-an-id').toString('base64url'),
      Buffer.from(`v2:${echoIds[0]}`).toString('base64url'),
    ]) {
      const res = await list(`cursor=${encodeURIComponent(cursor)}`);
      assert.equal(res.statusCode, 400, `${cursor}: ${res.body}`);
      const err = errorOf(res);
      assert.equal(err.type, 'invalid_cursor');
      assert.equal(err.field, 'cursor');
    }
  });

  test('unknown query parameters → 400 invalid_parameter', async () => {
    const res = await list('stauts=failed');
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(errorOf(res).type, 'invalid_parameter');
  });

  test('/v1/tasks lists the same requests with task_id', async () => {
    const body = json(await t.inject({ method: 'GET', url: '/v1/tasks?limit=5' }));
    assert.equal(body.data.length, 5);
    for (const r of body.data) assert.equal(r.task_id, r.request_id);
  });
});
