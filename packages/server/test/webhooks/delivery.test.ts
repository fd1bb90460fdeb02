/**
 * Webhook delivery end to end, against a real receiver on 127.0.0.1: one
 * delivery per terminal state, signed per Standard Webhooks (verified with the
 * `standardwebhooks` package as a receiver would, with either rotated secret),
 * retried with the configured backoff on the manual clock until the receiver
 * recovers, and never retried after 410; redirects are not followed; a
 * timeout, a reset or a huge body is bounded, and a hanging receiver does not
 * stall other deliveries. The request's own status never changes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { ok, startReceiver, status, type Receiver } from '../helpers/receiver.js';
import { BETA, newSecret, startWebhookServer } from './harness.js';

let receiver: Receiver;
before(async () => {
  receiver = await startReceiver();
});
after(() => receiver.close());

const alphaOld = newSecret();
const alphaNew = newSecret();
const fallback = newSecret();
const secrets = { webhooks: { secret: fallback, secrets: { alpha: [alphaOld, alphaNew] } } };

async function harness(overrides: Record<string, unknown> = {}) {
  return startWebhookServer({
    overrides: { ...secrets, ...overrides, webhooks: { ...secrets.webhooks, ...((overrides.webhooks as object) ?? {}) } },
  });
}

describe('webhook delivery', () => {
  test('a completed request is POSTed once, signed, with the seeds’ payload; both rotated secrets verify', async (t) => {
    const h = await harness();
    t.after(() => h.close());
    const delivered = h.waitFor('delivery:delivered');
    const hook = receiver.next('/completed');
    const id = await h.submit('echo', { text: 'hi' }, `${receiver.url}/completed`);
    const got = await hook;
    const { delivery } = await delivered;
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(got.headers['webhook-id'], delivery.id);
    assert.match(String(got.headers['webhook-timestamp']), /^\d+$/);
    const signatures = String(got.headers['webhook-signature']).split(' ');
    assert.equal(signatures.length, 2, 'one signature per valid secret while rotating');
    const headers = {
      'webhook-id': String(got.headers['webhook-id']),
      'webhook-timestamp': String(got.headers['webhook-timestamp']),
      'webhook-signature': String(got.headers['webhook-signature']),
    };
    for (const secret of [alphaOld, alphaNew]) {
      const payload = new Webhook(secret).verify(got.body, headers) as Record<string, unknown>;
      assert.equal(payload.request_id, id);
    }
    assert.throws(
      () => new Webhook(fallback).verify(got.body, headers),
      /No matching signature/,
      'another tenant’s secret does not verify',
    );
    assert.throws(
      () => new Webhook(alphaNew).verify(got.body.replace('hi', 'ho'), headers),
      /No matching signature/,
      'the exact bytes are signed',
    );
    const body = JSON.parse(got.body) as Record<string, unknown>;
    assert.deepEqual(
      [body.type, body.request_id, body.status, body.result, body.operation],
      ['request.completed', id, 'completed', { text: 'hi' }, 'echo'],
    );
    assert.equal(typeof body.duration_ms, 'number');
    assert.equal(got.body, delivery.payload, 'the stored bytes are the bytes sent');
    assert.equal(receiver.count('/completed'), 1);
  });

  test('failed and cancelled requests are delivered with their error; another tenant signs with the default secret', async (t) => {
    const h = await harness();
    t.after(() => h.close());
    const failedHook = receiver.next('/failed');
    const failedId = await h.submit('fail', {}, `${receiver.url}/failed`, '', BETA);
    const failed = await failedHook;
    const body = JSON.parse(failed.body) as Record<string, { type: string } | string>;
    assert.deepEqual([body.request_id, body.status, (body.error as { type: string }).type], [failedId, 'failed', 'tool_error']);
    new Webhook(fallback).verify(failed.body, failed.headers as Record<string, string>);

    const cancelledHook = receiver.next('/cancelled');
    const laterId = await h.submit('echo', {}, `${receiver.url}/cancelled`, '&delay_seconds=60');
    const cancel = await h.inject({ method: 'DELETE', url: `/v1/requests/${laterId}`, headers: { authorization: 'Bearer alpha-key-1' } });
    assert.equal(cancel.statusCode, 200);
    const cancelled = JSON.parse((await cancelledHook).body) as { status: string; error: { type: string } };
    assert.deepEqual([cancelled.status, cancelled.error.type], ['cancelled', 'cancelled']);
  });

  test('failed attempts are retried on the backoff schedule until the receiver recovers; same id and bytes each time', async (t) => {
    const h = await harness();
    t.after(() => h.close());
    receiver.on('/flaky', status(500), status(503), ok);
    const first = receiver.next('/flaky');
    const retrying = h.waitFor('delivery:retrying');
    const id = await h.submit('echo', { n: 1 }, `${receiver.url}/flaky`);
    const a1 = await first;
    const r1 = (await retrying).delivery;
    assert.equal(r1.next_attempt_at, h.clock.now() + 5000, 'first retry after backoff[0] = 5 s');
    assert.equal(r1.last_status_code, 500);

    await h.clock.advance(4999);
    assert.equal(receiver.count('/flaky'), 1, 'not before the backoff');
    const second = receiver.next('/flaky');
    const retrying2 = h.waitFor('delivery:retrying');
    await h.clock.advance(1);
    const a2 = await second;
    assert.equal((await retrying2).delivery.next_attempt_at, h.clock.now() + 30_000, 'second retry after backoff[1] = 30 s');

    const third = receiver.next('/flaky');
    const delivered = h.waitFor('delivery:delivered');
    await h.clock.advance(30_000);
    const a3 = await third;
    await delivered;
    assert.deepEqual(new Set([a1, a2, a3].map((a) => a.headers['webhook-id'])).size, 1, 'webhook-id is stable across retries');
    assert.deepEqual(new Set([a1, a2, a3].map((a) => a.body)).size, 1);

    const current = await h.inject({ method: 'GET', url: `/v1/requests/${id}`, headers: { authorization: 'Bearer alpha-key-1' } });
    assert.equal(JSON.parse(current.body).status, 'completed', 'delivery failures never change the request');
    const log = JSON.parse(
      (await h.inject({ method: 'GET', url: `/v1/requests/${id}/deliveries`, headers: { authorization: 'Bearer alpha-key-1' } })).body,
    );
    assert.deepEqual(
      log.data[0].attempts.map((a: { attempt: number; status_code: number }) => [a.attempt, a.status_code]),
      [
        [1, 500],
        [2, 503],
        [3, 200],
      ],
    );
    assert.equal(log.data[0].status, 'delivered');
  });

  test('after async.webhook_retries retries the delivery fails, and the request stays completed', async (t) => {
    const h = await harness({ async: { webhook_retries: 1 } });
    t.after(() => h.close());
    receiver.on('/down', status(500));
    const retrying = h.waitFor('delivery:retrying');
    const id = await h.submit('echo', {}, `${receiver.url}/down`);
    await retrying;
    const failed = h.waitFor('delivery:failed');
    await h.clock.advance(5000);
    const { delivery } = await failed;
    assert.deepEqual(
      [delivery.status, delivery.attempt, delivery.last_error?.type, delivery.next_attempt_at],
      ['failed', 2, 'http_status', null],
    );
    assert.equal((await h.server.store.requestGetById({ id }))?.status, 'completed');
  });

  test('410 Gone stops retries at once', async (t) => {
    const h = await harness();
    t.after(() => h.close());
    receiver.on('/gone', status(410));
    const failed = h.waitFor('delivery:failed');
    await h.submit('echo', {}, `${receiver.url}/gone`);
    const { delivery } = await failed;
    assert.deepEqual([delivery.status, delivery.attempt, delivery.last_status_code, delivery.last_error?.type], ['failed', 1, 410, 'gone']);
    await h.clock.advance(60_000);
    assert.equal(receiver.count('/gone'), 1);
  });

  test('a redirect is not followed and counts as a failed attempt', async (t) => {
    const h = await harness();
    t.after(() => h.close());
    receiver.on('/moved', { kind: 'redirect', code: 302, location: `${receiver.url}/target` });
    const retrying = h.waitFor('delivery:retrying');
    await h.submit('echo', {}, `${receiver.url}/moved`);
    const { delivery } = await retrying;
    assert.deepEqual([delivery.last_status_code, delivery.last_error?.type], [302, 'redirect']);
    assert.equal(receiver.count('/target'), 0, 'the Location was never requested');
  });

  test('a receiver that hangs times out (async.webhook_timeout) without stalling another delivery', async (t) => {
    const h = await harness();
    t.after(() => h.close());
    receiver.on('/hang', { kind: 'hang' });
    const hung = receiver.next('/hang');
    await h.submit('echo', {}, `${receiver.url}/hang`);
    await hung;
    const delivered = h.waitFor('delivery:delivered');
    await h.submit('echo', {}, `${receiver.url}/fine`);
    assert.equal((await delivered).delivery.url, `${receiver.url}/fine`, 'delivered while the other one hangs');
    assert.equal(h.server.engine.webhooks.inFlightCount, 1, 'the hanging one is still in flight');
    const retrying = h.waitFor('delivery:retrying');
    await h.clock.advance(2000);
    const { delivery } = await retrying;
    assert.deepEqual([delivery.last_status_code, delivery.last_error?.type], [null, 'timeout']);
  });

  test('the next delivery goes out while the last outcome is still being recorded; every outcome is recorded once', async (t) => {
    const h = await harness({ webhooks: { concurrency: 2 } });
    t.after(() => h.close());
    const store = h.server.store as unknown as Record<string, (...args: never[]) => Promise<unknown>>;
    const complete = store.deliveryComplete!.bind(store);
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let recorded = 0;
    // Recording an outcome waits for the gate: with send slots held until the record commits, only 2 could go out.
    store.deliveryComplete = async (...args: never[]) => {
      await gate;
      recorded++;
      return complete(...args);
    };
    const path = '/pipelined';
    try {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(await h.submit('echo', { i }, `${receiver.url}${path}`));
      // Bounded: each turn waits at most 5 s (real time) for one more delivery.
      for (let i = 0; i < 4 && receiver.count(path) < 4; i++) await receiver.next(path, 5000);
      assert.ok(receiver.count(path) >= 4, `${receiver.count(path)} sent while 2 slots' outcomes wait to be recorded`);
      assert.equal(recorded, 0, 'no outcome recorded yet');
      assert.ok(h.server.engine.webhooks.inFlightCount <= 2, 'still at most webhooks.concurrency sends at once');

      const allDelivered = Promise.all(ids.map((id) => h.waitFor('delivery:delivered', (p) => p.delivery.request_id === id)));
      openGate();
      await allDelivered;
      assert.equal(receiver.count(path), 6, 'each delivery sent once');
      for (const id of ids) {
        const [entry] = await h.server.store.deliveryListForRequest({ requestId: id });
        assert.deepEqual([entry?.status, entry?.attempts.length], ['delivered', 1]);
      }
    } finally {
      // Before h.close (an after-hook): stopping waits for the outcomes being recorded.
      openGate();
      delete store.deliveryComplete;
    }
  });

  test('a reset connection is retried; a huge 2xx body is cut off at max_response_bytes and counts as delivered', async (t) => {
    const h = await harness({ webhooks: { max_response_bytes: '64kb' } });
    t.after(() => h.close());
    receiver.on('/reset', { kind: 'reset' });
    const retrying = h.waitFor('delivery:retrying');
    await h.submit('echo', {}, `${receiver.url}/reset`);
    assert.equal((await retrying).delivery.last_error?.type, 'network');

    receiver.on('/huge', { kind: 'huge', bytes: 1024 ** 3 });
    const delivered = h.waitFor('delivery:delivered', undefined, 10_000);
    const id = await h.submit('echo', {}, `${receiver.url}/huge`);
    await delivered;
    const [entry] = await h.server.store.deliveryListForRequest({ requestId: id });
    assert.equal(entry?.attempts[0]?.response_excerpt?.length, 1024, 'the log keeps 1 KiB of the body');
  });
});
