/**
 * Sync or async, decided from learned estimates (issue: auto mode, handoff,
 * idempotency, delayed starts). Deterministic: a manual clock and fixture
 * history written through the store; no sleeps.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { settle } from '../helpers/clock.js';
import { startEngine, type EngineHarness } from '../helpers/engine.js';
import { waitForEvent } from '../helpers/events.js';

const OPS = {
  fast: `export default { run: (input) => ({ ok: true, input }) };`,
  slow: `export default { run: (input) => ({ ok: true, input }) };`,
  guessed: `export default { run: () => ({ ok: true }), estimate: (input) => input.pages * 20 };`,
  hang: `export default { run(input, ctx) {
    return new Promise((resolve) => { (globalThis.__release ??= {})[ctx.request_id] = () => resolve({ done: ctx.attempt }); });
  } };`,
};

async function harness(t: { after: (fn: () => Promise<void>) => void }, config: Record<string, unknown> = {}): Promise<EngineHarness> {
  const h = await startEngine(OPS, { async: { threshold_seconds: 30 }, ...config });
  t.after(h.close);
  return h;
}

async function seedHistory(h: EngineHarness, operation: string, durationMs: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await h.server.store.operationStatsRecord({
      operation,
      durationsMs: [durationMs],
      now: h.clock.now(),
      decay: h.server.config.estimator.decay,
    });
  }
  await h.clock.advance(1001); // past the estimator's 1 s read cache
}

function post(h: EngineHarness, url: string, payload: unknown, headers: Record<string, string> = {}) {
  return h.server.app.inject({ method: 'POST', url, payload: payload as object, headers });
}

describe('auto mode', () => {
  test('chooses sync for an operation whose history is fast and async for one whose history is slow', async (t) => {
    const h = await harness(t);
    await seedHistory(h, 'fast', 200, 10);
    await seedHistory(h, 'slow', 120_000, 10);
    const fast = await post(h, '/v1/operations/fast', { a: 1 });
    assert.equal(fast.statusCode, 200, fast.body);
    assert.equal(fast.json().status, 'completed');
    const slow = await post(h, '/v1/operations/slow', { a: 2 });
    assert.equal(slow.statusCode, 202, slow.body);
    assert.match(slow.json().estimated_time, /^11\d-1[12]\d seconds$/, "about two minutes, within the histogram's 5%");
    assert.ok(Math.abs(slow.json().estimated_ms - 120_000) <= 6000);
    assert.equal(slow.headers['retry-after'], '30', 'paced by the estimate: half the expected time, at most 30 s');
  });

  test('the estimate improves as history accumulates: a prior, then what really happened', async (t) => {
    const h = await harness(t, { estimator: { min_samples: 5 } });
    const first = await post(h, '/v1/operations/guessed', { pages: 5 }); // estimate(input) = 100 s
    assert.equal(first.statusCode, 202, 'the prior says 100 s: async');
    assert.equal(first.json().estimated_time, '80-120 seconds');
    const done = waitForEvent(h.server.engine.events, 'request:completed');
    await done;
    // Real runs take 0 ms on the manual clock; after min_samples of them, history replaces the prior.
    for (let i = 0; i < 4; i++) {
      const r = await post(h, '/v1/operations/guessed?async=true', { pages: 5 });
      assert.equal(r.statusCode, 202);
      await h.server.engine.waitForTerminal(r.json().request_id, 5000);
    }
    await h.clock.advance(1001);
    const later = await post(h, '/v1/operations/guessed', { pages: 5 });
    assert.equal(later.statusCode, 200, 'history says it is fast: sync');
    assert.equal(later.json().estimated_ms, 1, 'the status resource keeps the estimate it was given');
  });

  test('run times are counted by this node at once and written to the store later, in one write per operation', async (t) => {
    const h = await harness(t, { estimator: { min_samples: 3 } });
    for (let i = 0; i < 3; i++) {
      const r = await post(h, '/v1/operations/guessed?async=true', { pages: 5 });
      assert.equal(r.statusCode, 202);
      await h.server.engine.waitForTerminal(r.json().request_id, 5000);
    }
    assert.equal(await h.server.store.operationStatsGet({ operation: 'guessed' }), null, 'nothing written per completion');
    const later = await post(h, '/v1/operations/guessed', { pages: 5 });
    assert.equal(later.statusCode, 200, "this node's unwritten history already says it is fast: sync");
    await h.clock.advance(1000);
    await h.server.engine.estimator.flush();
    const stats = await h.server.store.operationStatsGet({ operation: 'guessed' });
    assert.equal(stats?.histogram.count, 4, 'all four run times written together');
  });

  test('a request expected to be fast that runs long is handed back as 202 at the threshold, and completes once', async (t) => {
    const h = await harness(t, { async: { threshold_seconds: 2 } });
    await seedHistory(h, 'hang', 100, 10);
    const claimed = waitForEvent(h.server.engine.events, 'request:claimed');
    const answer = post(h, '/v1/operations/hang', {});
    const { request } = await claimed;
    await h.clock.advance(1999);
    let answered = false;
    void answer.then(() => (answered = true));
    await settle();
    assert.equal(answered, false, 'still held before the threshold');
    await h.clock.advance(1);
    const res = await answer;
    assert.equal(res.statusCode, 202);
    assert.equal(res.headers.location, `/v1/requests/${request.id}`);
    assert.equal(res.json().status, 'processing');
    const completed = waitForEvent(h.server.engine.events, 'request:completed');
    (globalThis as unknown as { __release: Record<string, () => void> }).__release[request.id]?.();
    const done = await completed;
    assert.equal(done.request.id, request.id);
    assert.equal(done.request.attempt, 1, 'ran once');
  });

  test('chat without history goes sync; triggers and the bots endpoint stay async in auto mode', async (t) => {
    const h = await harness(t, { chat: { operation: 'fast' }, triggers: { hook: { operation: 'fast' } } });
    assert.equal((await post(h, '/v1/chat', { message: 'hi' })).statusCode, 200);
    assert.equal((await post(h, '/v1/triggers/hook', { data: {} })).statusCode, 202);
    assert.equal((await post(h, '/v1/bots/b1/actions/fast', {})).statusCode, 202);
    assert.equal((await post(h, '/v1/operations/fast', {})).statusCode, 202, 'an operation with no estimate is async');
  });

  test('precedence: the body beats Prefer; Prefer wait=N beats auto; a forced async.mode beats the estimate', async (t) => {
    const h = await harness(t, { chat: { operation: 'fast' } });
    await seedHistory(h, 'fast', 10, 10);
    const bodyWins = await post(h, '/v1/chat', { message: 'x', async: true }, { prefer: 'wait=10' });
    assert.equal(bodyWins.statusCode, 202);
    const modeField = await post(h, '/v1/chat', { message: 'x', mode: 'async' });
    assert.equal(modeField.statusCode, 202);
    const preferAsync = await post(h, '/v1/operations/fast', {}, { prefer: 'respond-async' });
    assert.equal(preferAsync.statusCode, 202);
    const h2 = await harness(t, { async: { mode: 'async' } });
    await seedHistory(h2, 'fast', 10, 10);
    assert.equal((await post(h2, '/v1/operations/fast', {})).statusCode, 202);
    assert.equal((await post(h2, '/v1/operations/fast?async=false', {})).statusCode, 200, 'the request still wins over the forced mode');
  });
});

describe('idempotency', () => {
  test('the same key and body replays the original answer; another body is 422', async (t) => {
    const h = await harness(t);
    const key = { 'idempotency-key': 'order-1042' };
    const first = await post(h, '/v1/operations/hang?async=true', { order: 1042 }, key);
    assert.equal(first.statusCode, 202);
    const again = await post(h, '/v1/operations/hang?async=true', { order: 1042 }, { 'x-idempotency-key': 'order-1042' });
    assert.equal(again.statusCode, 202);
    assert.equal(again.json().request_id, first.json().request_id);
    assert.equal(again.headers.location, first.headers.location);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    const other = await post(h, '/v1/operations/hang?async=true', { order: 9999 }, key);
    assert.equal(other.statusCode, 422);
    assert.equal(other.json().error.type, 'idempotency_conflict');
    assert.equal(other.json().error.request_id, first.json().request_id);
    const list = await h.server.app.inject({ method: 'GET', url: '/v1/requests' });
    assert.equal(list.json().data.length, 1, 'one request in all');
  });

  test('a replayed sync submission answers like the original: 200 with the same request', async (t) => {
    const h = await harness(t);
    const first = await post(h, '/v1/operations/fast?async=false', { v: 1 }, { 'idempotency-key': 'k-sync' });
    const again = await post(h, '/v1/operations/fast?async=false', { v: 1 }, { 'idempotency-key': 'k-sync' });
    assert.equal(first.statusCode, 200);
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().request_id, first.json().request_id);
  });

  test('50 concurrent submissions with one key create exactly one request', async (t) => {
    const h = await harness(t);
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => post(h, '/v1/operations/hang?async=true', { same: true }, { 'idempotency-key': 'burst-key' })),
    );
    assert.ok(answers.every((a) => a.statusCode === 202));
    assert.equal(new Set(answers.map((a) => a.json().request_id)).size, 1);
    assert.equal((await h.server.store.requestList({ limit: 100 })).length, 1);
  });

  test('keys are scoped per tenant, and bad keys are 400', async (t) => {
    const h = await harness(t, {
      auth: {
        keys: [
          { key: 'alpha-key-123', tenant: 'alpha' },
          { key: 'beta-key-1234', tenant: 'beta' },
        ],
      },
    });
    const a = await post(h, '/v1/operations/fast?async=true', {}, { 'idempotency-key': 'shared', authorization: 'Bearer alpha-key-123' });
    const b = await post(h, '/v1/operations/fast?async=true', {}, { 'idempotency-key': 'shared', authorization: 'Bearer beta-key-1234' });
    assert.notEqual(a.json().request_id, b.json().request_id);
    const long = await post(h, '/v1/operations/fast', {}, { 'idempotency-key': 'x'.repeat(256), authorization: 'Bearer alpha-key-123' });
    assert.equal(long.statusCode, 400);
    assert.equal(long.json().error.type, 'invalid_parameter');
    assert.equal(long.json().error.field, 'Idempotency-Key');
    const empty = await post(h, '/v1/operations/fast', {}, { 'idempotency-key': '', authorization: 'Bearer alpha-key-123' });
    assert.equal(empty.statusCode, 400);
  });
});

describe('priority and delayed starts', () => {
  test('delay_seconds holds a request until its start; it is async and paced by Retry-After', async (t) => {
    const h = await harness(t, { chat: { operation: 'fast' } });
    const res = await post(h, '/v1/chat', { message: 'later', delay_seconds: 60 });
    assert.equal(res.statusCode, 202, 'a delayed request is async');
    assert.equal(res.headers['retry-after'], '30');
    const id = res.json().request_id as string;
    await h.clock.advance(59_000);
    assert.equal((await h.server.store.requestGetById({ id }))?.status, 'pending');
    const done = waitForEvent(h.server.engine.events, 'request:completed');
    await h.clock.advance(1000);
    assert.equal((await done).request.id, id);
  });

  test('run_at (ISO or epoch ms) on the URL; higher priority runs first', async (t) => {
    const h = await harness(t, { engine: { concurrency: 1 } });
    const at = new Date(h.clock.now() + 5000).toISOString();
    const low = await post(h, `/v1/operations/fast?async=true&run_at=${encodeURIComponent(at)}&priority=-5`, { p: 'low' });
    const high = await post(h, `/v1/operations/fast?async=true&run_at=${h.clock.now() + 5000}&priority=50`, { p: 'high' });
    assert.equal(low.statusCode, 202);
    assert.equal(high.statusCode, 202);
    const order: string[] = [];
    h.server.engine.events.on('request:claimed', ({ request }) => order.push(request.id));
    await h.clock.advance(5000);
    await h.server.engine.waitForTerminal(low.json().request_id, 5000);
    await settle();
    assert.deepEqual(order.slice(0, 2), [high.json().request_id, low.json().request_id]);
  });

  test('bad delays and priorities are 4xx naming the field', async (t) => {
    const h = await harness(t, { chat: { operation: 'fast' } });
    const cases: [string, unknown, number, string][] = [
      ['/v1/chat', { message: 'x', delay_seconds: -1 }, 422, 'delay_seconds'],
      ['/v1/chat', { message: 'x', delay_seconds: 31 * 86_400 }, 422, 'delay_seconds'],
      ['/v1/chat', { message: 'x', priority: 1000 }, 422, 'priority'],
      ['/v1/chat', { message: 'x', priority: 1.5 }, 422, 'priority'],
      ['/v1/chat', { message: 'x', run_at: 'tomorrow' }, 422, 'run_at'],
      ['/v1/chat', { message: 'x', run_at: h.clock.now() + 40 * 86_400_000 }, 422, 'run_at'],
      ['/v1/chat', { message: 'x', delay_seconds: 5, run_at: h.clock.now() }, 422, 'delay_seconds'],
      ['/v1/chat', { message: 'x', mode: 'later' }, 422, 'mode'],
      ['/v1/operations/fast?delay_seconds=abc', {}, 400, 'delay_seconds'],
      ['/v1/operations/fast?priority=-101', {}, 400, 'priority'],
      ['/v1/operations/fast?run_at=soon', {}, 400, 'run_at'],
    ];
    for (const [url, payload, status, field] of cases) {
      const res = await post(h, url, payload);
      assert.equal(res.statusCode, status, `${url} ${JSON.stringify(payload)}: ${res.body}`);
      assert.equal(res.json().error.field, field, `${url} ${JSON.stringify(payload)}`);
    }
    assert.equal((await h.server.store.requestList({ limit: 100 })).length, 0, 'nothing was stored');
  });
});
