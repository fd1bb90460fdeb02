/**
 * Submission endpoints over HTTP: sync and async answers, the trigger and
 * operation variants, the bots/tasks alias, and the content types clients send.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { json, startHttpServer, type TestHttpServer } from '../helpers/http.js';

const ID = /^req_[0-9a-z]{26}$/;

let t: TestHttpServer;
before(async () => {
  t = await startHttpServer();
});
after(async () => {
  await t?.close();
});

function assertAccepted(res: Awaited<ReturnType<TestHttpServer['inject']>>, base = '/v1/requests'): string {
  assert.equal(res.statusCode, 202, res.body);
  const body = json(res);
  assert.match(body.request_id, ID);
  assert.equal(res.headers.location, `${base}/${body.request_id}`);
  assert.match(String(res.headers['retry-after']), /^\d+$/);
  assert.ok(Number(res.headers['retry-after']) >= 1);
  assert.ok(['pending', 'processing'].includes(body.status), `status ${body.status}`);
  assert.ok('estimated_time' in body, 'estimated_time present');
  return body.request_id as string;
}

describe('POST /v1/chat', () => {
  test('sync by default: 200 completed with the result', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/chat', payload: { message: 'hello' } });
    assert.equal(res.statusCode, 200, res.body);
    const body = json(res);
    assert.match(body.request_id, ID);
    assert.equal(body.status, 'completed');
    assert.deepEqual(body.result, { message: 'hello' });
    assert.equal(res.headers['retry-after'], undefined);
  });

  test('async: true → 202 with Location, Retry-After, request_id, status, estimated_time', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/chat', payload: { message: 'later', async: true } });
    const id = assertAccepted(res);
    const done = await t.waitTerminal(id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { message: 'later' });
  });

  test('Prefer: respond-async → 202', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/chat', headers: { prefer: 'respond-async' }, payload: { message: 'pref' } });
    const id = assertAccepted(res);
    await t.waitTerminal(id);
  });

  test('extra chat fields reach the operation; control fields do not', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/chat', payload: { message: 'hi', user_id: 'u1', async: false } });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(json(res).result, { message: 'hi', user_id: 'u1' });
  });
});

describe('POST /v1/triggers/{name}', () => {
  test('default async → 202', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/triggers/echo-trigger', payload: { data: { issue: 42 } } });
    const id = assertAccepted(res);
    const done = await t.waitTerminal(id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { issue: 42 });
  });

  test('use_async: false → 200 completed with data as the input', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/triggers/echo-trigger', payload: { data: { issue: 7 }, use_async: false } });
    assert.equal(res.statusCode, 200, res.body);
    const body = json(res);
    assert.equal(body.status, 'completed');
    assert.deepEqual(body.result, { issue: 7 });
  });

  test('a raw JSON body without `data` is the input itself', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/triggers/echo-trigger?use_async=false', payload: { repo: 'x/y', number: 3 } });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(json(res).result, { repo: 'x/y', number: 3 });
  });

  test('?use_async=false → 200', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/triggers/echo-trigger?use_async=false', payload: { data: { a: 1 } } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(json(res).status, 'completed');
    assert.deepEqual(json(res).result, { a: 1 });
  });

  test('a raw webhook payload that has its own top-level `data` (Stripe-style event) is the input', async () => {
    const event = { id: 'evt_1', type: 'invoice.paid', data: { object: { id: 'in_1', amount: 5 } } };
    const res = await t.inject({ method: 'POST', url: '/v1/triggers/echo-trigger?use_async=false', payload: event });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(json(res).result, event);
  });

  test('records the trigger name in metadata', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/triggers/echo-trigger', payload: { data: {} } });
    const id = assertAccepted(res);
    await t.waitTerminal(id);
    const status = json(await t.inject({ method: 'GET', url: `/v1/requests/${id}` }));
    assert.equal(status.metadata?.trigger, 'echo-trigger');
  });
});

describe('POST /v1/operations/{name}', () => {
  test('?async=true → 202; the body is the input', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/operations/echo?async=true', payload: { text: 'abc' } });
    const id = assertAccepted(res);
    const done = await t.waitTerminal(id);
    assert.deepEqual(done.result, { text: 'abc' });
  });

  test('?async=false → 200 completed', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/operations/echo?async=false', payload: { text: 'now' } });
    assert.equal(res.statusCode, 200, res.body);
    const body = json(res);
    assert.equal(body.status, 'completed');
    assert.deepEqual(body.result, { text: 'now' });
  });

  test('Prefer: respond-async → 202', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/operations/echo', headers: { prefer: 'respond-async' }, payload: { p: 1 } });
    const id = assertAccepted(res);
    await t.waitTerminal(id);
  });

  test('Prefer: respond-async, wait=10 waits up to 10 s (RFC 7240), so a fast request answers 200', async () => {
    const res = await t.inject({
      method: 'POST',
      url: '/v1/operations/echo',
      headers: { prefer: 'respond-async, wait=10' },
      payload: { p: 2 },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(json(res).status, 'completed');
  });

  test('no body → input {}', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/operations/echo?async=false' });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(json(res).result, {});
  });
});

describe('POST /v1/bots/{bot}/actions/{action} and /v1/tasks', () => {
  test('202 with Location /v1/tasks/{id} and task_id; GET /v1/tasks/{id} works', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/bots/bot-1/actions/echo', payload: { q: 'x' } });
    const id = assertAccepted(res, '/v1/tasks');
    const body = json(res);
    assert.equal(body.task_id, id);
    await t.waitTerminal(id);
    const status = await t.inject({ method: 'GET', url: `/v1/tasks/${id}` });
    assert.equal(status.statusCode, 200, status.body);
    const s = json(status);
    assert.equal(s.task_id, id);
    assert.equal(s.request_id, id);
    assert.equal(s.status, 'completed');
    assert.deepEqual(s.result, { q: 'x' });
    assert.equal(s.metadata?.bot_id, 'bot-1');
    // the same request under /v1/requests
    const same = await t.inject({ method: 'GET', url: `/v1/requests/${id}` });
    assert.equal(same.statusCode, 200);
    assert.equal(json(same).request_id, id);
  });
});

describe('content types', () => {
  test('JSON sent as application/x-www-form-urlencoded (curl -d) is read as JSON', async () => {
    const res = await t.inject({
      method: 'POST',
      url: '/v1/chat',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: JSON.stringify({ message: 'from curl' }),
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(json(res).result, { message: 'from curl' });
  });

  test('JSON sent as text/plain is accepted', async () => {
    const res = await t.inject({
      method: 'POST',
      url: '/v1/operations/echo?async=false',
      headers: { 'content-type': 'text/plain' },
      payload: JSON.stringify({ plain: true }),
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(json(res).result, { plain: true });
  });

  test('form fields message=hi&async=true work', async () => {
    const res = await t.inject({
      method: 'POST',
      url: '/v1/chat',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'message=hi&async=true',
    });
    const id = assertAccepted(res);
    const done = await t.waitTerminal(id);
    assert.deepEqual(done.result, { message: 'hi' });
  });

  test('documentation placeholder {"data": {...}} is accepted as empty data', async () => {
    const res = await t.inject({
      method: 'POST',
      url: '/v1/triggers/echo-trigger',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: '{"data": {...}}',
    });
    const id = assertAccepted(res);
    const done = await t.waitTerminal(id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, {});
  });

  test('no content type at all with a JSON body is accepted', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/operations/echo?async=false', payload: '{"n":1}' });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(json(res).result, { n: 1 });
  });
});

describe('sync wait limit', () => {
  let limited: TestHttpServer;
  before(async () => {
    limited = await startHttpServer({ chatOperation: 'slow', overrides: { server: { sync_wait_limit: '200ms' } } });
  });
  after(async () => {
    await limited?.close();
  });

  test('a sync request still running at server.sync_wait_limit is answered 202 like an async one', async () => {
    const res = await limited.inject({ method: 'POST', url: '/v1/chat', payload: { message: 'takes a while' } });
    assert.equal(res.statusCode, 202, res.body);
    const body = json(res);
    assert.equal(res.headers.location, `/v1/requests/${body.request_id}`);
    assert.equal(body.status, 'processing');
    assert.ok(Number(res.headers['retry-after']) >= 1);
    limited.slow.release(body.request_id, { late: true });
    const done = await limited.waitTerminal(body.request_id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { late: true });
  });
});
