/**
 * DELETE /v1/requests/{id}: cancelling pending and processing requests (the
 * running handler's signal aborts), and the refusals for finished, unknown and
 * malformed ids.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorOf, json, startHttpServer, type TestHttpServer } from '../helpers/http.js';

let t: TestHttpServer;
before(async () => {
  // slow runs one at a time, so a second slow request stays pending.
  t = await startHttpServer({ overrides: { operations: { slow: { concurrency: 1 } } } });
});
after(async () => {
  await t?.close();
});

async function submit(operation: string, input: object = {}): Promise<string> {
  const res = await t.inject({ method: 'POST', url: `/v1/operations/${operation}`, payload: input });
  assert.equal(res.statusCode, 202, res.body);
  return json(res).request_id as string;
}

const cancel = (id: string) => t.inject({ method: 'DELETE', url: `/v1/requests/${id}` });

describe('DELETE /v1/requests/{id}', () => {
  test('processing → 200 cancelled; the handler signal aborts; the request stays cancelled', async () => {
    const id = await submit('slow');
    await t.slow.started(id);
    const res = await cancel(id);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(json(res), { request_id: id, status: 'cancelled', message: 'Request cancelled by user' });

    const reason = await t.slow.aborted(id);
    assert.ok(reason instanceof Error);
    assert.equal((reason as Error & { type?: string }).type, 'cancelled');

    const final = await t.waitTerminal(id);
    assert.equal(final.status, 'cancelled');

    // After the aborted handler rejected, the outcome must not be overwritten.
    // Run another request through the same operation to let the engine settle.
    const next = await submit('echo', { after: 'cancel' });
    await t.waitTerminal(next);
    const status = await t.inject({ method: 'GET', url: `/v1/requests/${id}` });
    assert.equal(status.statusCode, 200);
    const body = json(status);
    assert.equal(body.status, 'cancelled');
    assert.equal('result' in body, false);
    assert.equal(status.headers['retry-after'], undefined);
    assert.match(body.completed_at, /Z$/);

    const again = await cancel(id);
    assert.equal(again.statusCode, 409, again.body);
    assert.equal(errorOf(again).type, 'request_already_finished');

    const result = await t.inject({ method: 'GET', url: `/v1/requests/${id}/result` });
    assert.equal(result.statusCode, 409);
    assert.equal(errorOf(result).type, 'result_unavailable');
  });

  test('pending → 200 cancelled, and it never runs', async () => {
    const blocker = await submit('slow');
    await t.slow.started(blocker);
    const id = await submit('slow');
    const before = json(await t.inject({ method: 'GET', url: `/v1/requests/${id}` }));
    assert.equal(before.status, 'pending');

    const pendingStatus = await t.inject({ method: 'GET', url: `/v1/requests/${id}` });
    assert.match(String(pendingStatus.headers['retry-after']), /^\d+$/, 'Retry-After while pending');

    const res = await cancel(id);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(json(res), { request_id: id, status: 'cancelled', message: 'Request cancelled by user' });

    t.slow.release(blocker, { ok: 1 });
    const blockerDone = await t.waitTerminal(blocker);
    assert.equal(blockerDone.status, 'completed');

    // A later slow request gets the (only) slot; the cancelled one must not have been started.
    const later = await submit('slow');
    await t.slow.started(later);
    t.slow.release(later);
    await t.waitTerminal(later);
    const final = json(await t.inject({ method: 'GET', url: `/v1/requests/${id}` }));
    assert.equal(final.status, 'cancelled');
    assert.equal(final.attempt, 0);
    assert.equal(final.started_at, null);
    assert.equal(t.slow.wasAborted(id), false);
  });

  test('completed → 409 request_already_finished', async () => {
    const id = await submit('echo', { x: 1 });
    await t.waitTerminal(id);
    const res = await cancel(id);
    assert.equal(res.statusCode, 409, res.body);
    const err = errorOf(res);
    assert.equal(err.type, 'request_already_finished');
    assert.equal(err.retryable, false);
    const body = json(await t.inject({ method: 'GET', url: `/v1/requests/${id}` }));
    assert.equal(body.status, 'completed');
  });

  test('failed → 409 request_already_finished', async () => {
    const id = await submit('fail');
    await t.waitTerminal(id);
    const res = await cancel(id);
    assert.equal(res.statusCode, 409, res.body);
    assert.equal(errorOf(res).type, 'request_already_finished');
  });

  test('unknown id → 404 request_not_found; malformed id → 404', async () => {
    const unknown = await cancel('req_01jzzzzzzzzzzzzzzzzzzzzzzz');
    assert.equal(unknown.statusCode, 404, unknown.body);
    assert.equal(errorOf(unknown).type, 'request_not_found');
    for (const bad of ['garbage', 'req_123', 'REQ_01JZZZZZZZZZZZZZZZZZZZZZZZ']) {
      const res = await cancel(bad);
      assert.equal(res.statusCode, 404, `${bad}: ${res.body}`);
      assert.equal(errorOf(res).type, 'request_not_found');
    }
  });

  test('DELETE via /v1/tasks/{id} cancels too', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/bots/b/actions/slow', payload: {} });
    assert.equal(res.statusCode, 202, res.body);
    const id = json(res).task_id as string;
    await t.slow.started(id);
    const del = await t.inject({ method: 'DELETE', url: `/v1/tasks/${id}` });
    assert.equal(del.statusCode, 200, del.body);
    assert.equal(json(del).status, 'cancelled');
    await t.slow.aborted(id);
    assert.equal((await t.waitTerminal(id)).status, 'cancelled');
  });
});
