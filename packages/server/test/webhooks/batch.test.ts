/** The batch-level webhook: one signed `batch.completed` delivery once every item is terminal. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ALPHA, newSecret, startWebhookServer } from './harness.js';

let receiver: Receiver;
before(async () => {
  receiver = await startReceiver();
});
after(() => receiver.close());

test('a batch with a webhook_url is delivered once, when its last item ends, with counts and success rate', async (t) => {
  const secret = newSecret();
  const h = await startWebhookServer({ overrides: { webhooks: { secret } } });
  t.after(() => h.close());
  const hook = receiver.next('/batch');
  const res = await h.inject({
    method: 'POST',
    url: '/v1/batches',
    headers: ALPHA,
    payload: { operation: 'echo', items: [{ a: 1 }, { a: 2 }, { a: 3 }], concurrency: 2, webhook_url: `${receiver.url}/batch` },
  });
  assert.equal(res.statusCode, 202, res.body);
  const batchId = res.json().batch_id as string;
  const got = await hook;
  const headers = {
    'webhook-id': String(got.headers['webhook-id']),
    'webhook-timestamp': String(got.headers['webhook-timestamp']),
    'webhook-signature': String(got.headers['webhook-signature']),
  };
  const body = new Webhook(secret).verify(got.body, headers) as Record<string, unknown>;
  assert.deepEqual(
    [body.type, body.batch_id, body.status, body.total, body.succeeded, body.failed, body.success_rate, body.location],
    ['batch.completed', batchId, 'completed', 3, 3, 0, 1, `/v1/batches/${batchId}`],
  );
  for (const id of res.json().request_ids as string[]) {
    const item = await h.inject({ method: 'GET', url: `/v1/requests/${id}`, headers: ALPHA });
    assert.equal(item.json().status, 'completed');
  }
  assert.equal(receiver.count('/batch'), 1, 'one delivery for the batch, none per item');
});

test('a batch webhook_url to a forbidden literal address is refused at submit, and nothing is stored', async (t) => {
  const h = await startWebhookServer();
  t.after(() => h.close());
  const res = await h.inject({
    method: 'POST',
    url: '/v1/batches',
    headers: ALPHA,
    payload: { operation: 'echo', items: [{}], webhook_url: 'http://169.254.169.254/latest' },
  });
  assert.equal(res.statusCode, 422);
  assert.equal(res.json().error.type, 'validation_error');
  assert.equal(res.json().error.field, 'webhook_url');
  assert.equal((await h.server.store.requestList({ limit: 10 })).length, 0);
});
