/**
 * `POST /v1/requests/{id}/retry` (and `/v1/tasks/{id}/retry`): a failed or
 * cancelled request is re-run as a new, linked request; retrying again returns
 * that same re-run; anything else is refused.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { isTerminal, type Request } from '../../src/model/index.js';
import { startEngine, type EngineHarness } from '../helpers/engine.js';
import { waitForEvent } from '../helpers/events.js';

/** Where the operation module counts its calls per `input.key` (globalThis: same process). */
const CALLS = '__errandRetryTestCalls';

const OPS = {
  /** Fails (not retryable) the first time it sees `input.key`, succeeds after. */
  flaky: `export default { run(input) {
    const calls = (globalThis.${CALLS} ??= {});
    const n = (calls[input.key] = (calls[input.key] ?? 0) + 1);
    if (n === 1) throw Object.assign(new Error('first call fails'), { retryable: false, type: 'tool_error' });
    return { key: input.key, call: n };
  } };`,
  quick: `export default { run: (input) => ({ echoed: input }) };`,
  /** Never finishes on its own. */
  hang: `export default { run: (input, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) };`,
};

const KEYS = { alpha: 'alpha-key-0001', beta: 'beta-key-00001' };
const CONFIG = {
  auth: {
    keys: [
      { key: KEYS.alpha, tenant: 'alpha' },
      { key: KEYS.beta, tenant: 'beta' },
    ],
  },
  retention: { ttl: 60, tombstone_ttl: 120, sweep_interval: '1d' },
};

let keyCounter = 0;

async function harness(t: { after: (fn: () => Promise<void>) => void }): Promise<EngineHarness> {
  const h = await startEngine(OPS, CONFIG);
  t.after(h.close);
  return h;
}

/** Rejects after `ms` of real time: a safety net that also keeps the event loop alive. */
function bounded<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function inject(h: EngineHarness, options: InjectOptions & { tenant?: keyof typeof KEYS }): Promise<LightMyRequestResponse> {
  const { tenant = 'alpha', ...rest } = options;
  return bounded(
    h.server.app.inject({ ...rest, headers: { authorization: `Bearer ${KEYS[tenant]}`, ...(rest.headers ?? {}) } }),
    `${String(rest.method)} ${String(rest.url)}`,
  );
}

function retry(h: EngineHarness, id: string, base = '/v1/requests', tenant: keyof typeof KEYS = 'alpha') {
  return inject(h, { method: 'POST', url: `${base}/${id}/retry`, tenant });
}

function body(res: LightMyRequestResponse): Record<string, unknown> {
  return JSON.parse(res.body) as Record<string, unknown>;
}

function errorOf(res: LightMyRequestResponse): Record<string, unknown> {
  const parsed = body(res) as { error?: Record<string, unknown> };
  assert.ok(parsed.error && typeof parsed.error.type === 'string', `error envelope: ${res.body}`);
  return parsed.error;
}

/** Waits (event-driven, bounded) for `id` to reach a terminal state. */
async function terminal(h: EngineHarness, id: string): Promise<Request> {
  const { events, store } = h.server.engine;
  let unsubscribe = () => {};
  const done = new Promise<Request>((resolve) => {
    unsubscribe = events.onRequest(id, ({ request }) => {
      if (request && isTerminal(request.status)) resolve(request);
    });
  });
  try {
    const now = await store.requestGetById({ id });
    if (now && isTerminal(now.status)) return now;
    return await bounded(done, `${id} to finish`);
  } finally {
    unsubscribe();
  }
}

/** A request of `flaky` that has failed (its first call for a fresh key). */
async function failedRequest(h: EngineHarness, tenant = 'alpha'): Promise<Request> {
  const key = `k${++keyCounter}-${Date.now()}`;
  const r = await h.server.engine.submit({ tenant, operation: 'flaky', input: { key }, mode: 'async' });
  const final = await terminal(h, r.id);
  assert.equal(final.status, 'failed');
  return final;
}

describe('POST /v1/requests/{id}/retry', () => {
  test('a failed request is re-run as a new request that completes; the original is unchanged', async (t) => {
    const h = await harness(t);
    const original = await failedRequest(h);

    const res = await retry(h, original.id);
    assert.equal(res.statusCode, 202, res.body);
    const b = body(res);
    const newId = String(b.request_id);
    assert.notEqual(newId, original.id);
    assert.match(newId, /^req_[0-9a-z]{26}$/);
    assert.deepEqual(Object.keys(b), ['request_id', 'retry_of', 'status', 'location']);
    assert.equal(b.retry_of, original.id);
    assert.equal(b.status, 'pending');
    assert.equal(b.location, `/v1/requests/${newId}`);
    assert.equal(res.headers.location, `/v1/requests/${newId}`);
    assert.match(String(res.headers['retry-after']), /^\d+$/);

    const rerun = await terminal(h, newId);
    assert.equal(rerun.status, 'completed');
    assert.deepEqual(rerun.result, { key: (original.input as { key: string }).key, call: 2 });

    const status = await inject(h, { method: 'GET', url: `/v1/requests/${newId}` });
    assert.equal(status.statusCode, 200);
    assert.equal(body(status).retry_of, original.id);
    assert.equal(body(status).status, 'completed');

    const old = body(await inject(h, { method: 'GET', url: `/v1/requests/${original.id}` }));
    assert.equal(old.status, 'failed', 'a terminal request never changes');
    assert.equal((old.error as { type: string }).type, 'tool_error');
  });

  test('retrying the same request again answers 200 with the same re-run (idempotent)', async (t) => {
    const h = await harness(t);
    const original = await failedRequest(h);
    const first = await retry(h, original.id);
    assert.equal(first.statusCode, 202);
    const newId = String(body(first).request_id);
    await terminal(h, newId);

    const again = await retry(h, original.id);
    assert.equal(again.statusCode, 200, again.body);
    const b = body(again);
    assert.deepEqual(Object.keys(b), ['request_id', 'retry_of', 'status', 'location']);
    assert.equal(b.request_id, newId);
    assert.equal(b.retry_of, original.id);
    assert.equal(b.status, 'completed', 'the re-run as it is now');
    assert.equal(again.headers.location, `/v1/requests/${newId}`);
    assert.equal(again.headers['retry-after'], undefined, 'terminal: no Retry-After');

    // The re-run is its own request: it can be retried only if it fails.
    const rerunRetry = await retry(h, newId);
    assert.equal(rerunRetry.statusCode, 409);
    assert.equal(errorOf(rerunRetry).type, 'request_not_retryable');
  });

  test('a cancelled request can be retried; the /v1/tasks alias answers with /v1/tasks locations', async (t) => {
    const h = await harness(t);
    const r = await h.server.engine.submit({
      tenant: 'alpha',
      operation: 'quick',
      input: { a: 1 },
      mode: 'async',
      runAt: h.clock.now() + 3_600_000,
    });
    assert.equal((await inject(h, { method: 'DELETE', url: `/v1/requests/${r.id}` })).statusCode, 200);

    const res = await retry(h, r.id, '/v1/tasks');
    assert.equal(res.statusCode, 202, res.body);
    const b = body(res);
    const newId = String(b.request_id);
    assert.equal(b.task_id, newId);
    assert.equal(b.retry_of, r.id);
    assert.equal(res.headers.location, `/v1/tasks/${newId}`);
    assert.equal(b.location, `/v1/tasks/${newId}`);
    const rerun = await terminal(h, newId);
    assert.equal(rerun.status, 'completed', 'the re-run starts now, not at the original delayed start');
    assert.deepEqual(rerun.result, { echoed: { a: 1 } });

    const again = await retry(h, r.id, '/v1/tasks');
    assert.equal(again.statusCode, 200);
    assert.equal(body(again).request_id, newId);
  });

  test('a completed, pending or processing request is 409 request_not_retryable', async (t) => {
    const h = await harness(t);
    const done = await h.server.engine.submit({ tenant: 'alpha', operation: 'quick', input: {}, mode: 'async' });
    assert.equal((await terminal(h, done.id)).status, 'completed');
    const pending = await h.server.engine.submit({
      tenant: 'alpha',
      operation: 'quick',
      input: {},
      mode: 'async',
      runAt: h.clock.now() + 3_600_000,
    });
    const claimed = waitForEvent(h.server.engine.events, 'request:claimed', (p) => p.request.operation === 'hang');
    const running = await h.server.engine.submit({ tenant: 'alpha', operation: 'hang', input: {}, mode: 'async' });
    await bounded(claimed, 'hang to be claimed');

    for (const [r, status] of [
      [done, 'completed'],
      [pending, 'pending'],
      [running, 'processing'],
    ] as const) {
      const res = await retry(h, r.id);
      assert.equal(res.statusCode, 409, `${status}: ${res.body}`);
      const err = errorOf(res);
      assert.equal(err.type, 'request_not_retryable');
      assert.equal(err.retryable, false);
      assert.equal(err.request_id, r.id);
      assert.equal(err.status, status);
    }
  });

  test('unknown, malformed and other tenants’ ids are 404', async (t) => {
    const h = await harness(t);
    const unknown = await retry(h, 'req_01kf3v6q4c8x0d2m5n7p9r1s3t');
    assert.equal(unknown.statusCode, 404);
    assert.equal(errorOf(unknown).type, 'request_not_found');
    const malformed = await retry(h, 'not-an-id');
    assert.equal(malformed.statusCode, 404);
    assert.equal(errorOf(malformed).type, 'request_not_found');

    const theirs = await failedRequest(h, 'beta');
    const foreign = await retry(h, theirs.id, '/v1/requests', 'alpha');
    assert.equal(foreign.statusCode, 404);
    assert.equal(errorOf(foreign).type, 'request_not_found');
    assert.equal((await retry(h, theirs.id, '/v1/requests', 'beta')).statusCode, 202, 'its own tenant may');
  });

  test('a purged request is 410 request_gone (its own tenant), then 404 once the tombstone expires', async (t) => {
    const h = await harness(t);
    const original = await failedRequest(h);
    await h.clock.advance(61_000);
    assert.equal(await h.server.engine.services.retention.sweep(), 1);

    const gone = await retry(h, original.id);
    assert.equal(gone.statusCode, 410, gone.body);
    const err = errorOf(gone);
    assert.equal(err.type, 'request_gone');
    assert.equal(err.request_id, original.id);
    assert.equal(err.status, 'failed');
    assert.equal((await retry(h, original.id, '/v1/requests', 'beta')).statusCode, 404);

    await h.clock.advance(120_000);
    assert.equal((await retry(h, original.id)).statusCode, 404);
  });

  test('20 concurrent retries of one failed request create exactly one new request', async (t) => {
    const h = await harness(t);
    const original = await failedRequest(h);
    const answers = await Promise.all(Array.from({ length: 20 }, () => retry(h, original.id)));
    const codes = answers.map((res) => res.statusCode).sort((a, b) => a - b);
    assert.deepEqual(codes, [...Array.from({ length: 19 }, () => 200), 202], 'one 202, the rest 200');
    const ids = new Set(answers.map((res) => body(res).request_id));
    assert.equal(ids.size, 1, 'every answer names the same re-run');

    const all = await h.server.store.requestList({ tenant: 'alpha', limit: 100 });
    const reruns = all.filter((r) => r.retry_of === original.id);
    assert.equal(reruns.length, 1);
    assert.equal(reruns[0]?.id, [...ids][0]);
    assert.equal((await terminal(h, String([...ids][0]))).status, 'completed');
  });
});
