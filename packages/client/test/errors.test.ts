/**
 * Errors by type against the real server (401, 404, 409, 422, 400 with the
 * field), and what the client does with what a real server would not send:
 * non-JSON answers, 429/503 with Retry-After, hang-ups, an unreachable host.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Errand, ErrandApiError, ErrandError, ErrandNetworkError, ErrandTimeoutError } from '../src/index.js';
import { KEYS, killAllServers, startErrand, type TestErrand } from './helpers/errand.js';
import { fakeServer, type FakeAnswer } from './helpers/proxy.js';
import { freePort } from '../../server/test/helpers/process.js';

let errand: TestErrand;
let client: Errand;

before(async () => {
  errand = await startErrand();
  client = new Errand({ baseUrl: errand.url, apiKey: KEYS.alpha });
});
after(async () => {
  await errand?.stop();
  await killAllServers();
});

/** The error a promise rejects with. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('expected a rejection'),
    (err: unknown) => err,
  );
}

describe('server errors carry type, status, field and request id', () => {
  test('401 unauthorized without a valid key', async () => {
    const err = await rejection(new Errand({ baseUrl: errand.url, apiKey: 'not_a_valid_key' }).submit('echo', {}));
    assert.ok(err instanceof ErrandApiError);
    assert.equal(err.status, 401);
    assert.equal(err.type, 'unauthorized');
    assert.ok(err instanceof ErrandError);
  });

  test('404 request_not_found, also for the request of another tenant', async () => {
    const mine = await client.submit('echo', {}, { mode: 'sync' });
    const beta = new Errand({ baseUrl: errand.url, apiKey: KEYS.beta });
    const err = await rejection(beta.getRequestStatus(mine.id));
    assert.ok(err instanceof ErrandApiError);
    assert.equal(err.status, 404);
    assert.equal(err.type, 'request_not_found');
    // The admin key sees every tenant's requests.
    assert.equal((await new Errand({ baseUrl: errand.url, apiKey: KEYS.admin }).getRequestStatus(mine.id)).request_id, mine.id);
  });

  test('404 operation_not_found and trigger_not_found', async () => {
    assert.equal(((await rejection(client.submit('nope', {}))) as ErrandApiError).type, 'operation_not_found');
    assert.equal(((await rejection(client.trigger('nope', {}))) as ErrandApiError).type, 'trigger_not_found');
  });

  test('409 request_already_finished and request_not_retryable carry the request id', async () => {
    const done = await client.submit('echo', {}, { mode: 'sync' });
    const cancel = (await rejection(done.cancel())) as ErrandApiError;
    assert.equal(cancel.status, 409);
    assert.equal(cancel.type, 'request_already_finished');
    assert.equal(cancel.requestId, done.id);
    const retry = (await rejection(done.retry())) as ErrandApiError;
    assert.equal(retry.type, 'request_not_retryable');
    assert.equal(retry.requestId, done.id);
  });

  test('422 validation_error names the field', async () => {
    const err = (await rejection(client.chat('hi', { priority: 1000 }))) as ErrandApiError;
    assert.equal(err.status, 422);
    assert.equal(err.type, 'validation_error');
    assert.equal(err.field, 'priority');
    assert.equal(err.retryable, false);
  });

  test('422 idempotency_conflict: the same key with another body; its request_id names the original', async () => {
    const key = `conflict-${Date.now()}`;
    const first = await client.submit('echo', { a: 1 }, { mode: 'async', idempotencyKey: key });
    const err = (await rejection(client.submit('echo', { a: 2 }, { mode: 'async', idempotencyKey: key }))) as ErrandApiError;
    assert.equal(err.type, 'idempotency_conflict');
    assert.equal(err.status, 422);
    assert.equal(err.requestId, first.id);
  });

  test('400 invalid_parameter for a bad idempotency key, with the field', async () => {
    const err = (await rejection(client.submit('echo', {}, { idempotencyKey: 'x'.repeat(300) }))) as ErrandApiError;
    assert.equal(err.status, 400);
    assert.equal(err.field, 'Idempotency-Key');
  });

  test('a request that is not a request id is request_not_found (no network surprise)', async () => {
    const err = (await rejection(client.request('../../health').status())) as ErrandApiError;
    assert.equal(err.type, 'request_not_found');
  });
});

describe('answers a real server would not give', () => {
  const json = (status: number, body: unknown, headers: Record<string, string> = {}): FakeAnswer => ({
    status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const status = { request_id: 'req_01kf3v6q4c8x0d2m5n7p9r1s3t', status: 'completed', operation: 'x', result: 42 };

  test('a non-JSON 200 is ErrandNetworkError invalid_response', async () => {
    const fake = await fakeServer(() => ({ status: 200, headers: { 'content-type': 'text/html' }, body: '<html>proxy login</html>' }));
    try {
      const err = await rejection(new Errand({ baseUrl: fake.url }).getRequestStatus('req_x'));
      assert.ok(err instanceof ErrandNetworkError);
      assert.equal(err.type, 'invalid_response');
      assert.equal(err.status, 200);
      assert.match(err.message, /proxy login/);
    } finally {
      await fake.close();
    }
  });

  test('a non-JSON error page (502 from a proxy) is invalid_response with the status, not retried', async () => {
    const fake = await fakeServer(() => ({ status: 502, body: 'Bad Gateway' }));
    try {
      const err = await rejection(new Errand({ baseUrl: fake.url }).getRequestStatus('req_x'));
      assert.ok(err instanceof ErrandNetworkError);
      assert.equal(err.type, 'invalid_response');
      assert.equal(err.status, 502);
      assert.equal(fake.requests.length, 1);
    } finally {
      await fake.close();
    }
  });

  test('429 and 503 with Retry-After are retried after the delay, for safe calls', async () => {
    const fake = await fakeServer((i) =>
      i === 0
        ? json(429, { error: { type: 'rate_limited', message: 'slow down' } }, { 'retry-after': '1' })
        : i === 1
          ? json(503, { error: { type: 'store_unavailable', message: 'x', retryable: true } }, { 'retry-after': '0' })
          : json(200, status),
    );
    try {
      const started = Date.now();
      const got = await new Errand({ baseUrl: fake.url }).getRequestStatus(status.request_id);
      assert.equal(got.result, 42);
      assert.equal(fake.requests.length, 3);
      assert.ok(Date.now() - started >= 950, 'waited for Retry-After: 1');
    } finally {
      await fake.close();
    }
  });

  test('submissions are retried with the same Idempotency-Key', async () => {
    const fake = await fakeServer((i) =>
      i === 0 ? 'hang-up' : json(202, { request_id: status.request_id, status: 'pending', location: `/v1/requests/${status.request_id}` }),
    );
    try {
      const handle = await new Errand({ baseUrl: fake.url }).submit('x', { a: 1 }, { mode: 'async' });
      assert.equal(handle.id, status.request_id);
      assert.equal(fake.requests.length, 2);
      const keys = fake.requests.map((r) => r.headers['idempotency-key']);
      assert.ok(keys[0]);
      assert.equal(keys[1], keys[0]);
      assert.equal(fake.requests[1]!.body, fake.requests[0]!.body);
    } finally {
      await fake.close();
    }
  });

  test('an unsafe call (batch) is not retried after a hang-up', async () => {
    const fake = await fakeServer(() => 'hang-up');
    try {
      const err = await rejection(new Errand({ baseUrl: fake.url }).batch('x', [{}]));
      assert.ok(err instanceof ErrandNetworkError);
      assert.equal(err.type, 'network_error');
      assert.equal(fake.requests.length, 1);
    } finally {
      await fake.close();
    }
  });

  test('retries give up after maxRetries, with the last error', async () => {
    const fake = await fakeServer(() => json(503, { error: { type: 'shutting_down', message: 'draining' } }, { 'retry-after': '0' }));
    try {
      const err = (await rejection(new Errand({ baseUrl: fake.url, maxRetries: 3 }).getRequestStatus('req_x'))) as ErrandApiError;
      assert.equal(err.type, 'shutting_down');
      assert.equal(err.status, 503);
      assert.equal(err.retryAfterMs, 0);
      assert.equal(fake.requests.length, 4);
    } finally {
      await fake.close();
    }
  });

  test('an unreachable server is ErrandNetworkError network_error', async () => {
    const port = await freePort();
    const err = await rejection(new Errand({ baseUrl: `http://127.0.0.1:${port}`, maxRetries: 1 }).getRequestStatus('req_x'));
    assert.ok(err instanceof ErrandNetworkError);
    assert.equal(err.type, 'network_error');
    assert.match(err.message, /ECONNREFUSED|fetch failed/);
  });

  test('a server that never answers hits requestTimeoutMs: ErrandTimeoutError', async () => {
    const { createServer } = await import('node:http');
    const silent = createServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
      const err = await rejection(new Errand({ baseUrl: url, requestTimeoutMs: 300, maxRetries: 0 }).getRequestStatus('req_x'));
      assert.ok(err instanceof ErrandTimeoutError, String(err));
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});
