/** Draining: a stopping node hands sync callers a 202 and refuses new work with the error envelope. */
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
