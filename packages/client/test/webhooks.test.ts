/** verifyWebhook (WebCrypto) against signatures made by the `standardwebhooks` package. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { ErrandError, verifyWebhook } from '../src/index.js';

const secret = `whsec_${randomBytes(32).toString('base64')}`;
const other = `whsec_${randomBytes(32).toString('base64')}`;
const payload = JSON.stringify({
  type: 'request.completed',
  request_id: 'req_01kf3v6q4c8x0d2m5n7p9r1s3t',
  status: 'completed',
  result: { text: 'h\u00e9llo \u2713' },
});
const now = new Date('2026-11-30T12:00:00Z');

function signed(body = payload, key = secret, at = now, id = 'dlv_01kf3v6q4c8x0d2m5n7p9r1s3t'): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(key).sign(id, at, body),
  };
}

const at = { now: () => now.getTime() };

async function failure(promise: Promise<unknown>): Promise<ErrandError> {
  const err = await promise.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ErrandError, String(err));
  return err;
}

describe('verifyWebhook', () => {
  test('accepts a standardwebhooks signature and returns the parsed payload', async () => {
    assert.deepEqual(await verifyWebhook(payload, signed(), secret, at), JSON.parse(payload));
  });

  test('takes Headers, any header case, bytes, and a secret without the whsec_ prefix', async () => {
    const headers = new Headers(signed());
    assert.deepEqual(await verifyWebhook(new TextEncoder().encode(payload), headers, secret.slice(6), at), JSON.parse(payload));
    const upper = Object.fromEntries(Object.entries(signed()).map(([k, v]) => [k.toUpperCase(), v]));
    assert.deepEqual(await verifyWebhook(payload, upper, secret, at), JSON.parse(payload));
  });

  test('rotation: any of several signatures, with any of several secrets', async () => {
    const headers = signed();
    headers['webhook-signature'] = `${signed(payload, other)['webhook-signature']} ${headers['webhook-signature']}`;
    assert.ok(await verifyWebhook(payload, headers, secret, at));
    assert.ok(await verifyWebhook(payload, signed(payload, other), [secret, other], at));
  });

  test('a changed body, a wrong secret or a changed id is invalid_signature', async () => {
    assert.equal((await failure(verifyWebhook(payload.replace('completed', 'failed'), signed(), secret, at))).type, 'invalid_signature');
    assert.equal((await failure(verifyWebhook(payload, signed(), other, at))).type, 'invalid_signature');
    const headers = { ...signed(), 'webhook-id': 'dlv_other' };
    assert.equal((await failure(verifyWebhook(payload, headers, secret, at))).type, 'invalid_signature');
  });

  test('a timestamp outside the tolerance is refused (replays)', async () => {
    const old = signed(payload, secret, new Date(now.getTime() - 301_000));
    assert.match((await failure(verifyWebhook(payload, old, secret, at))).message, /tolerance/);
    assert.ok(await verifyWebhook(payload, old, secret, { ...at, toleranceSeconds: 600 }));
    const future = signed(payload, secret, new Date(now.getTime() + 301_000));
    assert.equal((await failure(verifyWebhook(payload, future, secret, at))).type, 'invalid_signature');
  });

  test('missing headers and a malformed timestamp are invalid_signature; a bad secret is invalid_secret', async () => {
    const { 'webhook-signature': _, ...unsigned } = signed();
    assert.equal((await failure(verifyWebhook(payload, unsigned, secret, at))).type, 'invalid_signature');
    assert.equal(
      (await failure(verifyWebhook(payload, { ...signed(), 'webhook-timestamp': 'yesterday' }, secret, at))).type,
      'invalid_signature',
    );
    assert.equal((await failure(verifyWebhook(payload, signed(), 'whsec_***', at))).type, 'invalid_secret');
  });
});
