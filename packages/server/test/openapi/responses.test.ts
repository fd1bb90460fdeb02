/**
 * Real answers match the OpenAPI document the server serves, so the document
 * cannot drift from what is sent: submissions (200 sync, 202 async with its
 * headers, the /v1/tasks alias), the status resource in every state, list
 * pages, cancel/retry/result, batches, webhook deliveries (the log, a
 * redelivery, and the signed webhook the receiver got, against `callbacks`),
 * SSE streams event by event, the OpenAI-compatible shapes, health, stats,
 * and error envelopes of each kind against the response of their status.
 * Request bodies the document rejects, the server rejects (and vice versa).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startHttpServer, type TestHttpServer } from '../helpers/http.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { connectSse, dataOf } from '../helpers/sse.js';
import { Contract, requestBodyValid } from './contract.js';

const KEY = { authorization: 'Bearer fmc_alpha_key' };
const ADMIN = { authorization: 'Bearer adm_secret_key' };
const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

let t: TestHttpServer;
let receiver: Receiver;
let c: Contract;

before(async () => {
  receiver = await startReceiver();
  t = await startHttpServer({
    overrides: {
      auth: { keys: [{ key: 'fmc_alpha_key', tenant: 'alpha' }], admin_keys: ['adm_secret_key'] },
      webhooks: { allow: ['127.0.0.1'], secret: SECRET },
    },
  });
  c = new Contract((await t.inject({ method: 'GET', url: '/openapi.json' })).json());
});
after(async () => {
  await t.close();
  await receiver.close();
});

async function call(method: string, url: string, payload?: unknown, headers: Record<string, string> = KEY) {
  return t.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
}

/** Calls, asserts the status, and checks body and documented headers against `method docPath status`. */
async function expectAnswer(
  method: string,
  url: string,
  docPath: string,
  status: number,
  payload?: unknown,
  headers?: Record<string, string>,
) {
  const res = await call(method, url, payload, headers);
  assert.equal(res.statusCode, status, `${method} ${url}: ${res.body.slice(0, 500)}`);
  c.assertHeaders(docPath, method, status, res.headers);
  if (status === 204 || status === 304) return {};
  c.assertAnswer(docPath, method, status, res.json());
  return res.json() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

describe('submissions and the status resource', () => {
  test('202 (async) with Location and Retry-After, then the status resource while processing, cancelled, and under /v1/tasks', async () => {
    const accepted = await expectAnswer('POST', '/v1/operations/slow?async=true', '/v1/operations/{name}', 202, { x: 1 });
    const id = accepted.request_id as string;
    await t.slow.started(id);
    const status = await expectAnswer('GET', `/v1/requests/${id}`, '/v1/requests/{id}', 200);
    assert.equal(status.status, 'processing');
    const alias = await expectAnswer('GET', `/v1/tasks/${id}`, '/v1/tasks/{id}', 200);
    assert.equal(alias.task_id, id);
    const etag = (await call('GET', `/v1/requests/${id}`)).headers.etag as string;
    await expectAnswer('GET', `/v1/requests/${id}`, '/v1/requests/{id}', 304, undefined, { ...KEY, 'if-none-match': etag });
    await expectAnswer('GET', `/v1/requests/${id}/result`, '/v1/requests/{id}/result', 409);
    await expectAnswer('DELETE', `/v1/requests/${id}`, '/v1/requests/{id}', 200);
    const cancelled = await expectAnswer('GET', `/v1/requests/${id}`, '/v1/requests/{id}', 200);
    assert.equal(cancelled.status, 'cancelled');
    await expectAnswer('DELETE', `/v1/tasks/${id}`, '/v1/tasks/{id}', 409);
    await expectAnswer('GET', `/v1/requests/${id}/result`, '/v1/requests/{id}/result', 409);
    const retried = await expectAnswer('POST', `/v1/requests/${id}/retry`, '/v1/requests/{id}/retry', 202);
    await expectAnswer('POST', `/v1/requests/${id}/retry`, '/v1/requests/{id}/retry', 200);
    await expectAnswer('DELETE', `/v1/requests/${retried.request_id as string}`, '/v1/requests/{id}', 200);
  });

  test('200 (sync) with the outcome: completed with result, failed with error; the bots alias answers 202 under /v1/tasks', async () => {
    const done = await expectAnswer('POST', '/v1/chat', '/v1/chat', 200, { message: 'hello', metadata: { a: 1 } });
    assert.equal(done.status, 'completed');
    await expectAnswer('GET', `/v1/requests/${done.request_id as string}/result`, '/v1/requests/{id}/result', 200);
    const failed = await expectAnswer('POST', '/v1/operations/fail?async=false', '/v1/operations/{name}', 200, {});
    assert.equal(failed.status, 'failed');
    const trigger = await expectAnswer('POST', '/v1/triggers/echo-trigger', '/v1/triggers/{name}', 202, {
      data: { n: 1 },
      use_async: true,
    });
    await t.waitTerminal(trigger.request_id as string);
    const bots = await expectAnswer('POST', '/v1/bots/b1/actions/echo', '/v1/bots/{bot_id}/actions/{action}', 202, { n: 2 });
    assert.equal(bots.task_id, bots.request_id);
    await t.waitTerminal(bots.request_id as string);
    const replay = await call('POST', '/v1/chat', { message: 'once' }, { ...KEY, 'idempotency-key': 'k-1' });
    const again = await call('POST', '/v1/chat', { message: 'once' }, { ...KEY, 'idempotency-key': 'k-1' });
    assert.equal(again.headers['idempotent-replayed'], 'true');
    c.assertHeaders('/v1/chat', 'POST', again.statusCode, again.headers);
    assert.equal(replay.json().request_id, again.json().request_id);
    await expectAnswer('POST', '/v1/chat', '/v1/chat', 422, { message: 'other' }, { ...KEY, 'idempotency-key': 'k-1' });
  });

  test('list pages under both prefixes', async () => {
    const page = await expectAnswer('GET', '/v1/requests?limit=2', '/v1/requests', 200);
    assert.equal(page.has_more, true);
    await expectAnswer('GET', `/v1/requests?limit=2&cursor=${page.next_cursor as string}`, '/v1/requests', 200);
    await expectAnswer('GET', '/v1/tasks?status=completed,failed', '/v1/tasks', 200);
  });
});

describe('error envelopes match the response of their status', () => {
  const cases: [string, string, string, number, unknown?, Record<string, string>?][] = [
    ['GET', '/v1/requests', '/v1/requests', 401, undefined, {}],
    ['GET', '/v1/requests/req_01kf3v6q4c8x0d2m5n7p9r1s3t', '/v1/requests/{id}', 404],
    ['GET', '/v1/requests/req_01kf3v6q4c8x0d2m5n7p9r1s3t?wait=abc', '/v1/requests/{id}', 400],
    ['GET', '/v1/requests?cursor=bogus', '/v1/requests', 400],
    ['GET', '/v1/requests?color=red', '/v1/requests', 400],
    ['POST', '/v1/chat', '/v1/chat', 422, { message: '' }],
    ['POST', '/v1/operations/nope', '/v1/operations/{name}', 404, {}],
    ['POST', '/v1/triggers/nope', '/v1/triggers/{name}', 404, {}],
    ['POST', '/v1/batches', '/v1/batches', 422, { operation: 'echo', items: [] }],
    ['GET', '/v1/batches/bat_nope', '/v1/batches/{id}', 404],
    ['GET', '/v1/requests/req_01kf3v6q4c8x0d2m5n7p9r1s3t/events?after=x', '/v1/requests/{id}/events', 400],
    ['GET', '/metrics', '/metrics', 403],
    ['GET', '/v1/stats?window_minutes=1', '/v1/stats', 400],
  ];
  for (const [method, url, docPath, status, payload, headers] of cases) {
    test(`${method} ${url} → ${status}`, async () => {
      const body = await expectAnswer(method, url, docPath, status, payload, headers);
      assert.equal(typeof body.error.type, 'string');
    });
  }

  test('a rate-limited submission (429) and its headers match the document', async (tt) => {
    const limited = await startHttpServer({
      overrides: { auth: { keys: [{ key: 'fmc_alpha_key', tenant: 'alpha' }] }, limits: { submissions: { rate: 0.001, burst: 1 } } },
    });
    tt.after(() => limited.close());
    const submit = () => limited.inject({ method: 'POST', url: '/v1/operations/echo?async=true', headers: KEY, payload: {} });
    const first = await submit();
    assert.equal(first.statusCode, 202);
    c.assertHeaders('/v1/operations/{name}', 'POST', 202, first.headers);
    const second = await submit();
    assert.equal(second.statusCode, 429);
    c.assertHeaders('/v1/operations/{name}', 'POST', 429, second.headers);
    c.assertAnswer('/v1/operations/{name}', 'POST', 429, second.json());
    assert.equal(second.json().error.type, 'rate_limited');
  });

  test('a body over the limit (413) and broken JSON (400)', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/chat', headers: KEY, payload: { message: 'x'.repeat(2 * 1024 * 1024) } });
    assert.equal(res.statusCode, 413);
    c.assertAnswer('/v1/chat', 'POST', 413, res.json());
    const broken = await t.inject({
      method: 'POST',
      url: '/v1/chat',
      headers: { ...KEY, 'content-type': 'application/json' },
      payload: '{"message":',
    });
    assert.equal(broken.statusCode, 400);
    c.assertAnswer('/v1/chat', 'POST', 400, broken.json());
  });
});

describe('request bodies: the document and the server agree', () => {
  const chat: [unknown, boolean][] = [
    [{ message: 'hi' }, true],
    [{ message: 'hi', async: true, priority: 5, metadata: { k: 'v' }, extra_input: [1] }, true],
    [{ message: '' }, false],
    [{ message: 3 }, false],
    [{}, false],
    [{ message: 'hi', priority: 101 }, false],
    [{ message: 'hi', webhook_url: 'ftp://x' }, false],
    [{ message: 'hi', delay_seconds: -1 }, false],
  ];
  test('POST /v1/chat', async () => {
    for (const [body, valid] of chat) {
      assert.equal(requestBodyValid(c, '/v1/chat', 'post', body), valid, `document on ${JSON.stringify(body)}`);
      const res = await call('POST', '/v1/chat?async=1', { ...(body as object), ...(valid ? { async: true } : {}) });
      assert.equal(res.statusCode === 202, valid, `server on ${JSON.stringify(body)}: ${res.statusCode} ${res.body}`);
      if (valid) await t.waitTerminal(res.json().request_id as string);
    }
  });
  test('POST /v1/batches', async () => {
    const bodies: [unknown, boolean][] = [
      [{ operation: 'echo', items: [{ a: 1 }], concurrency: 2 }, true],
      [{ operation: 'echo', items: [] }, false],
      [{ operation: 'echo', items: [1], unknown: true }, false],
      [{ items: [1] }, false],
    ];
    for (const [body, valid] of bodies) {
      assert.equal(requestBodyValid(c, '/v1/batches', 'post', body), valid, `document on ${JSON.stringify(body)}`);
      const res = await call('POST', '/v1/batches', body);
      assert.equal(res.statusCode === 202, valid, `server on ${JSON.stringify(body)}: ${res.body}`);
    }
  });
});

describe('batches, deliveries and webhooks', () => {
  test('a batch: 202 then its status', async () => {
    const accepted = await expectAnswer('POST', '/v1/batches', '/v1/batches', 202, { operation: 'echo', items: [{ n: 1 }, { n: 2 }] });
    for (const id of accepted.request_ids as string[]) await t.waitTerminal(id);
    await expectAnswer('GET', `/v1/batches/${accepted.batch_id as string}`, '/v1/batches/{id}', 200);
  });

  test('the signed webhook matches the callback; the delivery log and a redelivery match their answers', async () => {
    const hook = encodeURIComponent(`${receiver.url}/hook`);
    const next = receiver.next('/hook', 10_000);
    const accepted = await expectAnswer('POST', `/v1/operations/echo?async=true&webhook_url=${hook}`, '/v1/operations/{name}', 202, {
      w: 1,
    });
    const received = await next;
    c.assertCallback('RequestFinishedFromQuery', JSON.parse(received.body), received.headers);
    assert.ok(received.headers['webhook-signature'], 'signed with the configured secret');
    const id = accepted.request_id as string;
    const log = await expectAnswer('GET', `/v1/requests/${id}/deliveries`, '/v1/requests/{id}/deliveries', 200);
    const deliveryId = log.data[0].delivery_id as string;
    // The receiver has the body before the server has its answer recorded: wait until the attempt has ended.
    await waitFor(async () => (await call('GET', `/v1/requests/${id}/deliveries`)).json().data[0].status === 'delivered', {
      timeoutMs: 10_000,
    });
    const again = receiver.next('/hook', 10_000);
    await expectAnswer(
      'POST',
      `/v1/tasks/${id}/deliveries/${deliveryId}/redeliver`,
      '/v1/tasks/{id}/deliveries/{delivery_id}/redeliver',
      202,
    );
    await again;
    await expectAnswer(
      'POST',
      `/v1/requests/${id}/deliveries/dlv_nope/redeliver`,
      '/v1/requests/{id}/deliveries/{delivery_id}/redeliver',
      404,
    );
  });

  test('the batch.completed webhook matches its callback', async () => {
    const hook = `${receiver.url}/batch`;
    const next = receiver.next('/batch', 10_000);
    await expectAnswer('POST', '/v1/batches', '/v1/batches', 202, { operation: 'echo', items: [{ n: 1 }], webhook_url: hook });
    const received = await next;
    c.assertCallback('BatchFinished', JSON.parse(received.body), received.headers);
  });
});

describe('event streams, event by event', () => {
  test("a request's events: status, progress, completed; failed; cancelled; resumed after the end is 204", async () => {
    const done = await expectAnswer('POST', '/v1/operations/progress?async=false', '/v1/operations/{name}', 200, {});
    const res = await call('GET', `/v1/requests/${done.request_id as string}/events`);
    assert.equal(res.statusCode, 200);
    const events = c.assertEventStream('/v1/requests/{id}/events', 'GET', 200, res.body).map((m) => m.event);
    assert.deepEqual(events, ['status', 'status', 'progress', 'completed']);
    const failed = await expectAnswer('POST', '/v1/operations/fail?async=false', '/v1/operations/{name}', 200, {});
    const alias = await call('GET', `/v1/tasks/${failed.request_id as string}/events`);
    assert.equal(c.assertEventStream('/v1/tasks/{id}/events', 'GET', 200, alias.body).at(-1)?.event, 'failed');
    const last = await call('GET', `/v1/requests/${done.request_id as string}/events?after=4`);
    assert.equal(last.statusCode, 204);
    c.assertHeaders('/v1/requests/{id}/events', 'GET', 204, last.headers);

    const slow = await expectAnswer('POST', '/v1/operations/slow?async=true', '/v1/operations/{name}', 202, {});
    await expectAnswer('DELETE', `/v1/requests/${slow.request_id as string}`, '/v1/requests/{id}', 200);
    const cancelled = await call('GET', `/v1/requests/${slow.request_id as string}/events`);
    assert.equal(c.assertEventStream('/v1/requests/{id}/events', 'GET', 200, cancelled.body).at(-1)?.event, 'cancelled');
  });

  test('the live feed of every request: each message as documented', async () => {
    const url = await t.server.listen(0);
    const feed = await connectSse(`${url}/v1/events`, { headers: KEY });
    try {
      assert.equal(feed.status, 200);
      const done = await expectAnswer('POST', '/v1/operations/progress?async=false', '/v1/operations/{name}', 200, {});
      const events = await feed.waitFor(
        (e) => e.some((m) => m.event === 'status' && dataOf(m).status === 'completed'),
        10_000,
        'the completed status',
      );
      for (const m of events.filter((e) => dataOf(e).request_id === done.request_id)) {
        c.assertAnswer('/v1/events', 'GET', 200, { event: m.event, data: dataOf(m) as unknown }, 'text/event-stream');
      }
      assert.ok(events.some((m) => m.event === 'progress'));
    } finally {
      feed.destroy();
    }
  });

  test('a streamed chat: request, output, completed', async () => {
    const res = await call('POST', '/v1/chat', { message: 'stream me', stream: true });
    assert.equal(res.statusCode, 200);
    const events = c.assertEventStream('/v1/chat', 'POST', 200, res.body).map((m) => m.event);
    assert.deepEqual([events[0], events.at(-1)], ['request', 'completed']);
  });
});

describe('OpenAI-compatible, health, stats and metrics', () => {
  test('completions (whole and streamed), models and their errors', async () => {
    const body = { model: 'echo', messages: [{ role: 'user', content: 'hi' }] };
    await expectAnswer('POST', '/v1/chat/completions', '/v1/chat/completions', 200, body);
    const streamed = await call('POST', '/v1/chat/completions', { ...body, stream: true, stream_options: { include_usage: true } });
    const messages = c.assertEventStream('/v1/chat/completions', 'POST', 200, streamed.body);
    assert.equal(messages.at(-1)?.data, '[DONE]');
    await expectAnswer('GET', '/v1/models', '/v1/models', 200);
    await expectAnswer('GET', '/v1/models/echo', '/v1/models/{model}', 200);
    await expectAnswer('GET', '/v1/models/nope', '/v1/models/{model}', 404);
    await expectAnswer('POST', '/v1/chat/completions', '/v1/chat/completions', 422, { model: 'echo', messages: [] });
  });

  test('health, readiness, stats and metrics', async () => {
    await expectAnswer('GET', '/health', '/health', 200, undefined, {});
    await expectAnswer('GET', '/ready', '/ready', 200, undefined, {});
    await expectAnswer('GET', '/v1/stats', '/v1/stats', 200);
    const metrics = await call('GET', '/metrics', undefined, ADMIN);
    assert.equal(metrics.statusCode, 200);
    assert.ok(c.response('/metrics', 'GET', 200).content['text/plain']);
  });
});
