/**
 * The outbox survives a crash: a real server is SIGKILLed after two requests
 * completed but before their webhooks were delivered — one delivery in flight
 * (its receiver hangs), one waiting for a retry (its receiver answered 500).
 * A new process on the same SQLite file delivers both, with the same
 * `webhook-id` and a signature `standardwebhooks` verifies.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { http, killAllServers, makeTempDir, startServer, waitFor, writeConfig } from '../helpers/process.js';
import { ok, startReceiver, status } from '../helpers/receiver.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

after(killAllServers);

test('deliveries interrupted by SIGKILL are sent after the restart', async (t) => {
  const { dir, cleanup } = makeTempDir('errand-hook-crash-');
  t.after(cleanup);
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  receiver.on('/hang', { kind: 'hang' }, ok);
  receiver.on('/flaky', status(500), ok);
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  writeFileSync(join(dir, 'echo.mjs'), 'export default { async run(input) { return input; } };\n');
  const config = writeConfig(dir, {
    store: { url: `sqlite:${join(dir, 'errand.db')}` },
    operations: { echo: { module: './echo.mjs' } },
    async: { webhook_timeout: 20 },
    webhooks: { secret, allow: ['127.0.0.1'], backoff: ['1s'], lease: '1m' },
    logging: { level: 'silent' },
  });

  const first = await startServer({ config });
  const submit = async (path: string) => {
    const res = await http('POST', `${first.url}/v1/operations/echo?async=true&webhook_url=${encodeURIComponent(receiver.url + path)}`, {
      path,
    });
    assert.equal(res.status, 202, res.text);
    return res.body.request_id as string;
  };
  const hung = receiver.next('/hang', 15_000);
  const hangId = await submit('/hang');
  const flakyId = await submit('/flaky');
  const firstHang = await hung;
  await waitFor(
    async () => {
      const res = await http('GET', `${first.url}/v1/requests/${flakyId}/deliveries`);
      return res.body.data?.[0]?.attempts?.length === 1 && res.body.data[0].status === 'pending';
    },
    { what: 'the /flaky delivery to fail once and wait for its retry' },
  );
  const exit = await first.crash();
  assert.equal(exit.signal, 'SIGKILL');

  const resent = receiver.next('/hang', 15_000);
  const second = await startServer({ config });
  const secondHang = await resent;
  assert.equal(secondHang.headers['webhook-id'], firstHang.headers['webhook-id'], 'same webhook-id after the restart');
  assert.equal(secondHang.body, firstHang.body, 'same payload bytes');
  const payload = new Webhook(secret).verify(secondHang.body, secondHang.headers as Record<string, string>) as {
    request_id: string;
    status: string;
  };
  assert.deepEqual([payload.request_id, payload.status], [hangId, 'completed']);

  for (const id of [hangId, flakyId]) {
    const delivered = await waitFor(
      async () => {
        const res = await http('GET', `${second.url}/v1/requests/${id}/deliveries`);
        return res.body.data?.[0]?.status === 'delivered' ? res.body.data[0] : undefined;
      },
      { timeoutMs: SAFETY_NET_MS, what: `the delivery of ${id}` },
    );
    assert.equal(delivered.last_status_code, 200);
  }
  assert.equal(receiver.count('/flaky'), 2, '500 before the crash, 200 after');
  assert.equal(receiver.count('/hang'), 2, 'interrupted before the crash, delivered after');
  await second.dispose();
});
