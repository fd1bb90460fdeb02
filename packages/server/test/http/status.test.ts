/**
 * The status resource (GET /v1/requests/{id}) and its result
 * (GET /v1/requests/{id}/result), across running, completed and failed requests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorOf, json, startHttpServer, type TestHttpServer } from '../helpers/http.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let t: TestHttpServer;
before(async () => {
  t = await startHttpServer();
});
after(async () => {
  await t?.close();
});

async function submit(operation: string, input: unknown = {}): Promise<string> {
  const res = await t.inject({ method: 'POST', url: `/v1/operations/${operation}`, payload: input as object });
  assert.equal(res.statusCode, 202, res.body);
  return json(res).request_id as string;
}

async function status(id: string) {
  return t.inject({ method: 'GET', url: `/v1/requests/${id}` });
}

describe('GET /v1/requests/{id}', () => {
  test('running: progress fields, Retry-After present, no result', async () => {
    const id = await submit('progress', { hold: true });
    await t.slow.started(id);
    const res = await status(id);
    assert.equal(res.statusCode, 200, res.body);
    const body = json(res);
    assert.equal(body.request_id, id);
    assert.equal(body.status, 'processing');
    assert.equal(body.operation, 'progress');
    assert.equal(body.progress, 50);
    assert.equal(body.message, 'Halfway there');
    assert.equal(body.current_step, 'analyse');
    assert.equal(body.total_steps, 4);
    assert.equal(body.completed_steps, 2);
    assert.equal(body.attempt, 1);
    assert.match(body.created_at, ISO);
    assert.match(body.started_at, ISO);
    assert.equal(body.completed_at, null);
    assert.equal(body.duration_ms, null);
    assert.equal('result' in body, false);
    assert.equal('error' in body, false);
    assert.match(String(res.headers['retry-after']), /^\d+$/);
    assert.ok(Number(res.headers['retry-after']) >= 1);

    // while running, the result is not available yet
    const early = await t.inject({ method: 'GET', url: `/v1/requests/${id}/result` });
    assert.equal(early.statusCode, 409, early.body);
    const err = errorOf(early);
    assert.equal(err.type, 'request_not_finished');
    assert.equal(err.retryable, true);

    t.slow.release(id, { finished: 1 });
    await t.waitTerminal(id);
  });

  test('completed: result, progress 100, timestamps, duration_ms, no Retry-After', async () => {
    const id = await submit('progress');
    await t.waitTerminal(id);
    const res = await status(id);
    assert.equal(res.statusCode, 200, res.body);
    const body = json(res);
    assert.equal(body.request_id, id);
    assert.equal(body.status, 'completed');
    assert.equal(body.progress, 100);
    assert.equal(body.message, 'Halfway there');
    assert.equal(body.current_step, 'analyse');
    assert.equal(body.total_steps, 4);
    assert.equal(body.completed_steps, 2);
    assert.deepEqual(body.result, { done: true });
    assert.equal('error' in body, false);
    assert.equal(body.attempt, 1);
    assert.match(body.created_at, ISO);
    assert.match(body.started_at, ISO);
    assert.match(body.completed_at, ISO);
    assert.equal(typeof body.duration_ms, 'number');
    assert.ok(body.duration_ms >= 0);
    assert.ok(Date.parse(body.completed_at) >= Date.parse(body.started_at));
    assert.ok(Date.parse(body.started_at) >= Date.parse(body.created_at));
    assert.equal(res.headers['retry-after'], undefined);

    const result = await t.inject({ method: 'GET', url: `/v1/requests/${id}/result` });
    assert.equal(result.statusCode, 200, result.body);
    assert.deepEqual(json(result), { request_id: id, status: 'completed', result: { done: true } });
  });

  test('a request that never reported progress shows null progress fields', async () => {
    const id = await submit('slow');
    await t.slow.started(id);
    const body = json(await status(id));
    assert.equal(body.progress, null);
    assert.equal(body.message, null);
    assert.equal(body.current_step, null);
    assert.equal(body.total_steps, null);
    assert.equal(body.completed_steps, null);
    t.slow.release(id);
    await t.waitTerminal(id);
  });

  test('failed: error {type, message, retryable}; /result → 409 result_unavailable', async () => {
    const id = await submit('fail');
    const done = await t.waitTerminal(id);
    assert.equal(done.status, 'failed');
    const res = await status(id);
    assert.equal(res.statusCode, 200, res.body);
    const body = json(res);
    assert.equal(body.status, 'failed');
    assert.equal(body.error.type, 'tool_error');
    assert.equal(typeof body.error.message, 'string');
    assert.equal(body.error.retryable, false);
    assert.equal('result' in body, false);
    assert.match(body.completed_at, ISO);
    assert.equal(typeof body.duration_ms, 'number');
    assert.equal(body.attempt, 1);
    assert.equal(res.headers['retry-after'], undefined);

    const result = await t.inject({ method: 'GET', url: `/v1/requests/${id}/result` });
    assert.equal(result.statusCode, 409, result.body);
    const err = errorOf(result);
    assert.equal(err.type, 'result_unavailable');
    assert.equal(err.retryable, false);
  });

  test('/v1/tasks/{id} shows the same resource with task_id and progress_percent', async () => {
    const id = await submit('progress');
    await t.waitTerminal(id);
    const body = json(await t.inject({ method: 'GET', url: `/v1/tasks/${id}` }));
    assert.equal(body.task_id, id);
    assert.equal(body.progress_percent, 100);
    const result = await t.inject({ method: 'GET', url: `/v1/tasks/${id}/result` });
    assert.equal(result.statusCode, 200);
    assert.deepEqual(json(result).result, { done: true });
  });

  test('unknown and malformed ids → 404 request_not_found', async () => {
    for (const id of ['req_01jzzzzzzzzzzzzzzzzzzzzzzz', 'not-an-id', 'req_', '..%2F..%2Fetc']) {
      for (const url of [`/v1/requests/${id}`, `/v1/requests/${id}/result`]) {
        const res = await t.inject({ method: 'GET', url });
        assert.equal(res.statusCode, 404, `${url}: ${res.body}`);
        assert.equal(errorOf(res).type, 'request_not_found', url);
      }
    }
  });
});
