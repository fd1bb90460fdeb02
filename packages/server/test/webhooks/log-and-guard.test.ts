/**
 * The delivery log and redelivery endpoints, and the SSRF guard. The guard
 * tests never send a packet anywhere but 127.0.0.1: host names resolve through
 * a stub, and a refused target fails in the connect-time lookup, before any
 * socket connects.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorOf } from '../helpers/http.js';
import { ok, startReceiver, status, type Receiver } from '../helpers/receiver.js';
import { ALPHA, BETA, startWebhookServer } from './harness.js';

let receiver: Receiver;
before(async () => {
  receiver = await startReceiver();
});
after(() => receiver.close());

const json = (body: string) => JSON.parse(body) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('delivery log and redelivery', () => {
  test('GET …/deliveries shows attempts, codes, timings and the next attempt; redeliver starts a new series', async (t) => {
    const h = await startWebhookServer();
    t.after(() => h.close());
    receiver.on('/log', status(500), ok);
    const retrying = h.waitFor('delivery:retrying');
    const id = await h.submit('echo', { a: 1 }, `${receiver.url}/log`);
    await retrying;

    const res = await h.inject({ method: 'GET', url: `/v1/requests/${id}/deliveries`, headers: ALPHA });
    assert.equal(res.statusCode, 200);
    const [entry] = json(res.body).data;
    assert.match(entry.delivery_id, /^dlv_/);
    assert.equal(entry.status, 'pending');
    assert.equal(entry.event, 'request.completed');
    assert.equal(entry.url, `${receiver.url}/log`);
    assert.equal(entry.last_status_code, 500);
    assert.equal(entry.last_error.type, 'http_status');
    assert.equal(entry.next_attempt_at, new Date(h.clock.now() + 5000).toISOString());
    assert.deepEqual(Object.keys(entry.attempts[0]).sort(), [
      'attempt',
      'duration_ms',
      'error',
      'response_excerpt',
      'series',
      'started_at',
      'status_code',
    ]);
    assert.equal(entry.attempts[0].response_excerpt, 'answer 500');

    const tasks = await h.inject({ method: 'GET', url: `/v1/tasks/${id}/deliveries`, headers: ALPHA });
    assert.equal(json(tasks.body).data[0].delivery_id, entry.delivery_id, 'the /v1/tasks alias');
    const other = await h.inject({ method: 'GET', url: `/v1/requests/${id}/deliveries`, headers: BETA });
    assert.equal(other.statusCode, 404);
    assert.equal(errorOf(other).type, 'request_not_found', 'another tenant’s request does not exist');

    const delivered = h.waitFor('delivery:delivered');
    await h.clock.advance(5000);
    await delivered;
    const first = receiver.received.filter((r) => r.path === '/log');

    const again = receiver.next('/log');
    const redelivered = h.waitFor('delivery:delivered');
    const answer = await h.inject({ method: 'POST', url: `/v1/requests/${id}/deliveries/${entry.delivery_id}/redeliver`, headers: ALPHA });
    assert.equal(answer.statusCode, 202);
    assert.equal(json(answer.body).series, 2);
    assert.equal(answer.headers.location, `/v1/requests/${id}/deliveries`);
    const resent = await again;
    await redelivered;
    assert.equal(resent.headers['webhook-id'], entry.delivery_id, 'same webhook-id');
    assert.equal(resent.body, first[0]?.body, 'same payload bytes');
    const log = json((await h.inject({ method: 'GET', url: `/v1/requests/${id}/deliveries`, headers: ALPHA })).body).data[0];
    assert.deepEqual(
      log.attempts.map((a: { series: number; attempt: number; status_code: number }) => [a.series, a.attempt, a.status_code]),
      [
        [1, 1, 500],
        [1, 2, 200],
        [2, 1, 200],
      ],
    );

    const missing = await h.inject({
      method: 'POST',
      url: `/v1/requests/${id}/deliveries/dlv_01aaaaaaaaaaaaaaaaaaaaaaaa/redeliver`,
      headers: ALPHA,
    });
    assert.equal(errorOf(missing).type, 'delivery_not_found');
    const foreign = await h.inject({ method: 'POST', url: `/v1/tasks/${id}/deliveries/${entry.delivery_id}/redeliver`, headers: BETA });
    assert.equal(errorOf(foreign).type, 'request_not_found');
  });

  test('redelivery while an attempt is in flight is 409 delivery_in_progress', async (t) => {
    const h = await startWebhookServer();
    t.after(() => h.close());
    receiver.on('/busy', { kind: 'hang' });
    const hung = receiver.next('/busy');
    const id = await h.submit('echo', {}, `${receiver.url}/busy`);
    await hung;
    const [d] = await h.server.store.deliveryListForRequest({ requestId: id });
    const res = await h.inject({ method: 'POST', url: `/v1/requests/${id}/deliveries/${d!.id}/redeliver`, headers: ALPHA });
    assert.equal(res.statusCode, 409);
    assert.equal(errorOf(res).type, 'delivery_in_progress');
  });

  test('a request without a webhook has an empty log', async (t) => {
    const h = await startWebhookServer();
    t.after(() => h.close());
    const res = await h.inject({ method: 'POST', url: '/v1/operations/echo?async=true', payload: {}, headers: ALPHA });
    const id = json(res.body).request_id as string;
    assert.deepEqual(json((await h.inject({ method: 'GET', url: `/v1/requests/${id}/deliveries`, headers: ALPHA })).body).data, []);
  });
});

describe('SSRF guard', () => {
  test('literal forbidden targets, localhost and non-http(s) URLs are refused at submit time with 422', async (t) => {
    const h = await startWebhookServer({ overrides: { webhooks: { allow: [] } } });
    t.after(() => h.close());
    const urls = [
      'http://127.0.0.1:9/x',
      'http://10.0.0.5/hook',
      'http://192.168.1.1/',
      'http://100.64.0.1/',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]/',
      'http://[fd00:ec2::254]/',
      'http://[fe80::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://0x7f.1/',
      'http://localhost:8080/',
      'http://0.0.0.0/',
    ];
    for (const url of urls) {
      const res = await h.inject({
        method: 'POST',
        url: `/v1/operations/echo?async=true&webhook_url=${encodeURIComponent(url)}`,
        payload: {},
        headers: ALPHA,
      });
      assert.equal(res.statusCode, 422, url);
      const error = errorOf(res);
      assert.deepEqual([error.type, error.field], ['validation_error', 'webhook_url'], url);
    }
    const long = `https://example.com/${'a'.repeat(2100)}`;
    const res = await h.inject({
      method: 'POST',
      url: `/v1/operations/echo?webhook_url=${encodeURIComponent(long)}`,
      payload: {},
      headers: ALPHA,
    });
    assert.equal(errorOf(res).field, 'webhook_url', 'longer than 2048 characters');
    assert.equal(h.lookups.length, 0, 'no name was resolved');
  });

  test('a name that resolves to a forbidden address fails at delivery time, before any connect; the tenant is not told the address', async (t) => {
    const h = await startWebhookServer({
      overrides: { webhooks: { allow: [] } },
      dns: { 'evil.example': ['10.0.0.5'], 'meta.example': ['fd00:ec2::254'], 'mixed.example': ['127.0.0.1', '10.0.0.5'] },
    });
    t.after(() => h.close());
    for (const [host, addresses] of [
      ['evil.example', ['10.0.0', 'evil.example resolves']],
      ['meta.example', ['fd00', 'ec2']],
      ['mixed.example', ['127.0.0.1', '10.0.0.5']],
    ] as const) {
      const failed = h.waitFor('delivery:failed');
      const id = await h.submit('echo', {}, `http://${host}:${new URL(receiver.url).port}/ssrf`);
      const { delivery } = await failed;
      assert.equal(delivery.request_id, id);
      assert.equal(delivery.last_error?.type, 'forbidden_target');
      assert.match(delivery.last_error?.message ?? '', /not allowed.*webhooks\.allow/);
      assert.equal(delivery.attempt, 1, 'a refused target is not retried');
      // What the tenant reads: neither the address nor the resolution nor its kind (no mapping of internal DNS).
      const log = await h.inject({ method: 'GET', url: `/v1/requests/${id}/deliveries`, headers: ALPHA });
      assert.equal(log.statusCode, 200);
      assert.match(log.body, /forbidden_target/);
      for (const leak of [...addresses, 'resolves to', 'private', 'loopback', 'metadata'])
        assert.ok(!log.body.includes(leak), `${leak} in ${log.body}`);
    }
    assert.deepEqual(h.lookups, ['evil.example', 'meta.example', 'mixed.example']);
    assert.equal(receiver.count('/ssrf'), 0);
  });

  test('the allowlist admits hosts and CIDRs; every connect is checked again (DNS rebinding)', async (t) => {
    let answers = 0;
    const h = await startWebhookServer({
      overrides: { webhooks: { allow: ['127.0.0.0/8'] } },
      dns: { 'rebind.example': () => (answers++ === 0 ? ['127.0.0.1'] : ['10.0.0.5']) },
    });
    t.after(() => h.close());
    const port = new URL(receiver.url).port;

    // An allowlisted host name may resolve to a forbidden address (here: the loopback receiver).
    const pinned = await startWebhookServer({ overrides: { webhooks: { allow: ['hooks.test'] } }, dns: { 'hooks.test': ['127.0.0.1'] } });
    t.after(() => pinned.close());
    const viaName = pinned.waitFor('delivery:delivered');
    await pinned.submit('echo', {}, `http://hooks.test:${port}/allowed-name`);
    await viaName;
    assert.equal(receiver.count('/allowed-name'), 1);

    receiver.on('/rebind', status(500, true));
    const retrying = h.waitFor('delivery:retrying');
    await h.submit('echo', {}, `http://rebind.example:${port}/rebind`);
    await retrying;
    assert.equal(receiver.count('/rebind'), 1, 'the first answer (allowlisted 127.0.0.1) was reached');
    const failed = h.waitFor('delivery:failed');
    await h.clock.advance(5000);
    const { delivery } = await failed;
    assert.equal(delivery.last_error?.type, 'forbidden_target', 'the rebound answer is refused at connect time');
    assert.equal(receiver.count('/rebind'), 1);
  });

  test('without an allowlist the loopback receiver is refused; with 127.0.0.1 allowlisted it is reached', async (t) => {
    const closed = await startWebhookServer({ overrides: { webhooks: { allow: [] } } });
    t.after(() => closed.close());
    const res = await closed.inject({
      method: 'POST',
      url: `/v1/operations/echo?async=true&webhook_url=${encodeURIComponent(receiver.url)}`,
      payload: {},
      headers: ALPHA,
    });
    assert.equal(errorOf(res).type, 'validation_error');
    const open = await startWebhookServer();
    t.after(() => open.close());
    const delivered = open.waitFor('delivery:delivered');
    await open.submit('echo', {}, `${receiver.url}/open`);
    await delivered;
  });
});
