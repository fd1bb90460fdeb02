/**
 * Draining: a stopping node hands sync callers a 202 and refuses new work with
 * the error envelope; while its handlers drain, its listener stays open, so a
 * new submission gets that 503 (not a refused connection).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitForEvent } from '../helpers/events.js';
import { errorOf, json, startHttpServer, type TestHttpServer } from '../helpers/http.js';

describe('shutdown', () => {
  let t: TestHttpServer;
  before(async () => {
    t = await startHttpServer();
  });
  after(() => t.close());

  test('a sync caller still waiting when the engine stops gets a 202 handoff; new submissions get 503 shutting_down', async () => {
    const claimed = waitForEvent(t.server.engine.events, 'request:claimed', (e) => e.request.operation === 'slow');
    const waiting = t.inject({ method: 'POST', url: '/v1/operations/slow?async=false', payload: {} });
    const { request } = await claimed;
    await t.server.engine.stop(0);
    const res = await waiting;
    assert.equal(res.statusCode, 202);
    assert.equal(res.headers.location, `/v1/requests/${request.id}`);
    assert.equal(json(res).request_id, request.id);

    const refused = await t.inject({ method: 'POST', url: '/v1/operations/echo', payload: { a: 1 } });
    assert.equal(refused.statusCode, 503);
    const error = errorOf(refused);
    assert.equal(error.type, 'shutting_down');
    assert.equal(error.retryable, true);

    const ready = await t.inject({ method: 'GET', url: '/ready' });
    assert.equal(ready.statusCode, 503);
    assert.equal(errorOf(ready).type, 'shutting_down');
  });
});

describe('draining on a real port', () => {
  test('the listener stays open until running handlers end: new work 503 + Retry-After, status polls served; then it closes', async () => {
    const t = await startHttpServer();
    try {
      const url = await t.server.listen(0);
      const created = await fetch(`${url}/v1/operations/slow?async=true`, { method: 'POST', body: '{}' });
      assert.equal(created.status, 202);
      const id = ((await created.json()) as { request_id: string }).request_id;
      await t.slow.started(id);

      const closing = t.server.close(30_000);
      const refused = await fetch(`${url}/v1/operations/echo`, { method: 'POST', body: '{"a":1}' });
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '1');
      const body = (await refused.json()) as { error: { type: string; retryable: boolean } };
      assert.equal(body.error.type, 'shutting_down');
      assert.equal(body.error.retryable, true);
      assert.equal((await fetch(`${url}/ready`)).status, 503);
      const status = await fetch(`${url}/v1/requests/${id}`);
      assert.equal(status.status, 200);
      assert.equal(((await status.json()) as { status: string }).status, 'processing');

      t.slow.release(id, { finished: 'during the drain' });
      await closing;
      await assert.rejects(
        fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) }),
        (err: unknown) => (err as Error).name === 'TypeError',
      );
    } finally {
      await t.close();
    }
  });
});
