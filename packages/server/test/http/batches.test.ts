/** Batches over HTTP: submission, status with counts and success rate, the concurrency limit, bad input. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitForEvent } from '../helpers/events.js';
import { errorOf, json, startHttpServer, type TestHttpServer } from '../helpers/http.js';

describe('batches', () => {
  let t: TestHttpServer;
  before(async () => {
    t = await startHttpServer({ overrides: { batches: { max_items: 50 } } });
  });
  after(() => t.close());

  test('a batch runs every item, never more than `concurrency` at once, and reports counts', async () => {
    // Track how many items of the batch run at once, from the engine's own events.
    let running = 0;
    let peak = 0;
    const ids = new Set<string>();
    const offClaim = t.server.engine.events.on('request:claimed', ({ request }) => {
      if (!ids.has(request.id)) return;
      running += 1;
      peak = Math.max(peak, running);
    });
    const offDone = t.server.engine.events.on('request:changed', ({ request }) => {
      if (request && ids.has(request.id) && ['completed', 'failed', 'cancelled'].includes(request.status)) running -= 1;
    });
    const items = Array.from({ length: 12 }, (_, i) => ({ hold: true, i }));
    const res = await t.inject({ method: 'POST', url: '/v1/batches', payload: { operation: 'progress', items, concurrency: 3 } });
    assert.equal(res.statusCode, 202, res.body);
    const body = json(res);
    assert.match(res.headers.location as string, /^\/v1\/batches\/bat_/);
    assert.equal(body.total, 12);
    assert.equal(body.request_ids.length, 12);
    for (const id of body.request_ids as string[]) ids.add(id);
    // Release items one by one as they start; at most 3 may be running at any time.
    for (const id of body.request_ids as string[]) {
      await t.slow.started(id);
      t.slow.release(id, { ok: true });
      await t.waitTerminal(id);
    }
    offClaim();
    offDone();
    assert.ok(peak <= 3, `peak concurrency ${peak}`);
    assert.ok(peak >= 2, 'the batch did run items in parallel');
    const status = json(await t.inject({ method: 'GET', url: body.location as string }));
    assert.equal(status.status, 'completed');
    assert.equal(status.succeeded, 12);
    assert.equal(status.success_rate, 1);
    assert.equal(status.progress, 100);
    assert.equal(status.items.length, 12);
    assert.ok(status.completed_at);
  });

  test('status counts successes and failures and gives the success rate', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/batches', payload: { operation: 'fail', items: [{}, {}] } });
    const ok = await t.inject({
      method: 'POST',
      url: '/v1/batches',
      payload: { operation: 'echo', items: [{ a: 1 }, { a: 2 }, { a: 3 }] },
    });
    for (const id of [...json(res).request_ids, ...json(ok).request_ids] as string[]) await t.waitTerminal(id);
    const failed = json(await t.inject({ method: 'GET', url: json(res).location }));
    assert.equal(failed.failed, 2);
    assert.equal(failed.success_rate, 0);
    const good = json(await t.inject({ method: 'GET', url: json(ok).location }));
    assert.deepEqual(
      good.items.map((i: { result: unknown }) => i.result),
      [{ a: 1 }, { a: 2 }, { a: 3 }],
      'items in submission order, each an ordinary request',
    );
  });

  test('each item is an ordinary request: it can be read and cancelled on its own', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/batches', payload: { operation: 'slow', items: [{}], concurrency: 1 } });
    const [id] = json(res).request_ids as string[];
    const item = json(await t.inject({ method: 'GET', url: `/v1/requests/${id}` }));
    assert.equal(item.request_id, id);
    const cancelled = waitForEvent(t.server.engine.events, 'request:cancelled', (e) => e.request.id === id);
    assert.equal((await t.inject({ method: 'DELETE', url: `/v1/requests/${id}` })).statusCode, 200);
    await cancelled;
    const status = json(await t.inject({ method: 'GET', url: json(res).location }));
    assert.equal(status.counts.cancelled, 1);
    assert.equal(status.status, 'completed');
  });

  test('bad batches are 4xx with the field, and store nothing', async () => {
    const before = (await t.server.store.requestList({ limit: 1000 })).length;
    const cases: [unknown, number, string, string | undefined][] = [
      [{ operation: 'echo', items: [] }, 422, 'validation_error', 'items'],
      [{ operation: 'echo', items: Array.from({ length: 51 }, () => ({})) }, 422, 'validation_error', 'items'],
      [{ operation: 'echo' }, 422, 'validation_error', 'items'],
      [{ operation: 'echo', items: [{}], concurrency: 0 }, 422, 'validation_error', 'concurrency'],
      [{ operation: 'echo', items: [{}], extra: 1 }, 422, 'validation_error', undefined],
      [{ operation: 'nope', items: [{}] }, 404, 'operation_not_found', 'operation'],
    ];
    for (const [payload, status, type, field] of cases) {
      const res = await t.inject({ method: 'POST', url: '/v1/batches', payload: payload as object });
      assert.equal(res.statusCode, status, `${JSON.stringify(payload).slice(0, 80)}: ${res.body}`);
      assert.equal(errorOf(res).type, type);
      if (field) assert.equal(errorOf(res).field, field);
    }
    assert.equal((await t.server.store.requestList({ limit: 1000 })).length, before);
    const missing = await t.inject({ method: 'GET', url: '/v1/batches/bat_00000000000000000000000000' });
    assert.equal(missing.statusCode, 404);
    assert.equal(errorOf(missing).type, 'batch_not_found');
  });
});
