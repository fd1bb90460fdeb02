/**
 * Engine behaviour through its public surface (submit, cancel, events, the
 * store's records), on a real SQLite file, with a manual clock: retries,
 * backoff timing, timeouts, cancellation, leases, recovery and retention.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Request } from '../../src/model/index.js';
import { settle } from '../helpers/clock.js';
import { startEngine, type EngineHarness } from '../helpers/engine.js';
import { waitForEvent } from '../helpers/events.js';

/** Shared with the operation modules (same process). */
interface Probe {
  calls: number;
  aborted: string[];
  release?: () => void;
}
const probes = ((globalThis as Record<string, unknown>).__probes ??= {}) as Record<string, Probe>;
function probe(name: string): Probe {
  return (probes[name] = { calls: 0, aborted: [] });
}

const OPS = {
  echo: `export default { run: (input) => input };`,
  flaky: `export default { async run(input, ctx) {
    const p = globalThis.__probes.flaky; p.calls++;
    if (ctx.attempt < input.succeedOn) throw Object.assign(new Error('upstream 503'), { retryable: true, type: 'upstream_error' });
    return { attempt: ctx.attempt };
  } };`,
  fatal: `export default { run() { throw Object.assign(new Error('bad input'), { retryable: false, type: 'invalid_input' }); } };`,
  buggy: `export default { run(input) { return input.missing.field; } };`,
  plain: `export default { run() { globalThis.__probes.plain.calls++; throw new Error('flaky network'); } };`,
  hang: `export default { run(input, ctx) {
    const p = globalThis.__probes.hang; p.calls++;
    return new Promise((resolve, reject) => {
      ctx.signal.addEventListener('abort', () => { p.aborted.push(String(ctx.signal.reason?.type ?? ctx.signal.reason?.message)); reject(ctx.signal.reason); });
    });
  } };`,
  stubborn: `export default { run(input, ctx) {
    const p = globalThis.__probes.stubborn; p.calls++;
    ctx.signal.addEventListener('abort', () => p.aborted.push(String(ctx.signal.reason?.type)));
    return new Promise((resolve) => { p.release = () => resolve({ late: true }); });
  } };`,
  steps: `export default { async run(input, ctx) {
    await ctx.progress({ percent: 10, current_step: 'Reading', total_steps: 2, completed_steps: 0 });
    await ctx.emit({ text: 'partial' });
    await ctx.progress({ percent: 60, message: 'Half way', completed_steps: 1 });
    return { ok: true };
  } };`,
  bigint: `export default { run: () => ({ n: 10n }) };`,
};

async function harness(t: { after: (fn: () => Promise<void>) => void }, config: Record<string, unknown> = {}): Promise<EngineHarness> {
  const h = await startEngine(OPS, config);
  t.after(h.close);
  return h;
}

async function submit(h: EngineHarness, operation: string, input: unknown = {}): Promise<Request> {
  return h.server.engine.submit({ tenant: 'alpha', operation, input, mode: 'async' });
}

async function get(h: EngineHarness, id: string): Promise<Request> {
  const r = await h.server.store.requestGetById({ id });
  assert.ok(r, `request ${id} exists`);
  return r;
}

describe('engine', () => {
  test('runs a request to completed, logging status, progress and output events in order', async (t) => {
    const h = await harness(t);
    const done = waitForEvent(h.server.engine.events, 'request:completed');
    const r = await submit(h, 'steps');
    const { request } = await done;
    assert.equal(request.id, r.id);
    assert.equal(request.status, 'completed');
    assert.deepEqual(request.result, { ok: true });
    assert.deepEqual(request.progress, { percent: 60, current_step: 'Reading', total_steps: 2, completed_steps: 1, message: 'Half way' });
    const events = await h.server.store.eventListAfter({ id: r.id, afterSeq: 0, limit: 100 });
    assert.deepEqual(
      events.map((e) => (e.type === 'status' ? (e.data as { status: string }).status : e.type)),
      ['pending', 'processing', 'progress', 'output', 'progress', 'completed'],
    );
    assert.deepEqual(
      events.map((e) => e.seq),
      [1, 2, 3, 4, 5, 6],
    );
  });

  test('retries a retryable failure with exponential backoff measured on the injected clock', async (t) => {
    const p = probe('flaky');
    const h = await harness(t, { workflow: { retry: { max_attempts: 3, initial_delay: 1, backoff_factor: 2, max_delay: 60 } } });
    const firstRetry = waitForEvent(h.server.engine.events, 'request:retrying');
    const r = await submit(h, 'flaky', { succeedOn: 3 });
    const retry1 = await firstRetry;
    const failedAt1 = h.clock.now();
    assert.equal(retry1.request.status, 'pending');
    assert.equal(retry1.request.error?.type, 'upstream_error');
    assert.equal(retry1.request.run_at - failedAt1, 1000, 'first retry waits initial_delay');

    await h.clock.advance(999);
    assert.equal(p.calls, 1, 'not retried before the delay');
    const secondRetry = waitForEvent(h.server.engine.events, 'request:retrying');
    await h.clock.advance(1);
    const retry2 = await secondRetry;
    assert.equal(p.calls, 2);
    assert.equal(retry2.request.attempt, 2);
    assert.equal(retry2.request.run_at - h.clock.now(), 2000, 'second retry waits initial_delay × backoff_factor');

    const completed = waitForEvent(h.server.engine.events, 'request:completed');
    await h.clock.advance(1999);
    assert.equal(p.calls, 2);
    await h.clock.advance(1);
    const { request } = await completed;
    assert.equal(request.id, r.id);
    assert.deepEqual(request.result, { attempt: 3 });
    assert.equal(request.attempt, 3);
  });

  test('backoff is capped by max_delay', async (t) => {
    probe('flaky');
    const h = await harness(t, { workflow: { retry: { max_attempts: 5, initial_delay: 10, backoff_factor: 10, max_delay: 15 } } });
    const first = waitForEvent(h.server.engine.events, 'request:retrying');
    await submit(h, 'flaky', { succeedOn: 99 });
    const r1 = await first;
    assert.equal(r1.request.run_at - h.clock.now(), 10_000);
    const second = waitForEvent(h.server.engine.events, 'request:retrying');
    await h.clock.advance(10_000);
    const r2 = await second;
    assert.equal(r2.request.run_at - h.clock.now(), 15_000, 'min(10 s × 10, 15 s)');
  });

  test('fails after max_attempts with the last error, keeping its retryable flag', async (t) => {
    const p = probe('flaky');
    const h = await harness(t, { workflow: { retry: { max_attempts: 2, initial_delay: 1 } } });
    const failed = waitForEvent(h.server.engine.events, 'request:failed');
    await submit(h, 'flaky', { succeedOn: 99 });
    await h.clock.advance(1000);
    const { request } = await failed;
    assert.equal(p.calls, 2);
    assert.equal(request.attempt, 2);
    assert.deepEqual(request.error, { type: 'upstream_error', message: 'upstream 503', retryable: true });
  });

  test('per-operation retry overrides apply', async (t) => {
    const p = probe('flaky');
    const h = await harness(t, { operationSettings: { flaky: { retry: { max_attempts: 1 } } } });
    const failed = waitForEvent(h.server.engine.events, 'request:failed');
    await submit(h, 'flaky', { succeedOn: 2 });
    const { request } = await failed;
    assert.equal(p.calls, 1);
    assert.equal(request.max_attempts, 1);
  });

  test('a non-retryable failure fails at once with its own type', async (t) => {
    const h = await harness(t);
    const failed = waitForEvent(h.server.engine.events, 'request:failed');
    await submit(h, 'fatal');
    const { request } = await failed;
    assert.equal(request.attempt, 1);
    assert.deepEqual(request.error, { type: 'invalid_input', message: 'bad input', retryable: false });
  });

  test('unexpected errors are retried, programming errors (TypeError) are not', async (t) => {
    const p = probe('plain');
    const h = await harness(t, { workflow: { retry: { max_attempts: 2, initial_delay: 1 } } });
    const bugFailed = waitForEvent(h.server.engine.events, 'request:failed', (e) => e.request.operation === 'buggy');
    await submit(h, 'buggy');
    const bug = await bugFailed;
    assert.equal(bug.request.attempt, 1);
    assert.equal(bug.request.error?.type, 'handler_error');
    assert.equal(bug.request.error?.retryable, false);

    const retried = waitForEvent(h.server.engine.events, 'request:retrying', (e) => e.request.operation === 'plain');
    await submit(h, 'plain');
    await retried;
    const failed = waitForEvent(h.server.engine.events, 'request:failed', (e) => e.request.operation === 'plain');
    await h.clock.advance(1000);
    const { request } = await failed;
    assert.equal(p.calls, 2);
    assert.equal(request.error?.type, 'handler_error');
    assert.equal(request.error?.retryable, true);
  });

  test('a result that is not JSON-serialisable fails the request with invalid_result', async (t) => {
    const h = await harness(t);
    const failed = waitForEvent(h.server.engine.events, 'request:failed');
    await submit(h, 'bigint');
    assert.equal((await failed).request.error?.type, 'invalid_result');
  });

  test('task timeout aborts the handler and fails with "Task exceeded timeout"', async (t) => {
    const p = probe('hang');
    const h = await harness(t, { operationSettings: { hang: { timeout: 2 } } });
    const claimed = waitForEvent(h.server.engine.events, 'request:claimed');
    const r = await submit(h, 'hang');
    await claimed;
    const failed = waitForEvent(h.server.engine.events, 'request:failed');
    await h.clock.advance(1999);
    assert.equal((await get(h, r.id)).status, 'processing');
    await h.clock.advance(1);
    const { request } = await failed;
    assert.deepEqual(request.error, { type: 'task_timeout', message: 'Task exceeded timeout (2s)', retryable: false });
    assert.equal(request.attempt, 1, 'timeouts are not retried');
    assert.deepEqual(p.aborted, ['task_timeout']);
  });

  test("the default task timeout is the seeds' 300 s", async (t) => {
    probe('hang');
    const h = await harness(t);
    const claimed = waitForEvent(h.server.engine.events, 'request:claimed');
    await submit(h, 'hang');
    await claimed;
    const failed = waitForEvent(h.server.engine.events, 'request:failed');
    await h.clock.advance(300_000);
    assert.equal((await failed).request.error?.message, 'Task exceeded timeout (300s)');
  });

  test('a handler that ignores its signal is failed at the timeout and its late result discarded', async (t) => {
    const p = probe('stubborn');
    const h = await harness(t, { operationSettings: { stubborn: { timeout: 1 } } });
    const claimed = waitForEvent(h.server.engine.events, 'request:claimed');
    const r = await submit(h, 'stubborn');
    await claimed;
    const failed = waitForEvent(h.server.engine.events, 'request:failed');
    await h.clock.advance(1000);
    await failed;
    p.release?.();
    await settle();
    const after = await get(h, r.id);
    assert.equal(after.status, 'failed');
    assert.equal(after.result, null);
    // The server keeps working.
    const next = waitForEvent(h.server.engine.events, 'request:completed');
    await submit(h, 'echo', { x: 1 });
    assert.deepEqual((await next).request.result, { x: 1 });
  });

  test('workflow timeout bounds the whole request across attempts', async (t) => {
    probe('hang');
    const h = await harness(t, { operationSettings: { hang: { timeout: 10, workflow_timeout: 3 } } });
    const claimed = waitForEvent(h.server.engine.events, 'request:claimed');
    await submit(h, 'hang');
    await claimed;
    const failed = waitForEvent(h.server.engine.events, 'request:failed');
    await h.clock.advance(3000);
    assert.deepEqual((await failed).request.error, {
      type: 'workflow_timeout',
      message: 'Workflow exceeded timeout (3s)',
      retryable: false,
    });
  });

  test('a retry that would start after the workflow deadline fails instead', async (t) => {
    const p = probe('flaky');
    const h = await harness(t, { operationSettings: { flaky: { workflow_timeout: 1.5, retry: { max_attempts: 5, initial_delay: 1 } } } });
    const retried = waitForEvent(h.server.engine.events, 'request:retrying');
    await submit(h, 'flaky', { succeedOn: 99 });
    await retried;
    const failed = waitForEvent(h.server.engine.events, 'request:failed');
    await h.clock.advance(1000);
    const { request } = await failed;
    assert.equal(p.calls, 2, 'the second attempt ran; the third (due at 3 s) would pass the 1.5 s deadline');
    assert.equal(request.error?.type, 'upstream_error');
  });

  test('cancelling a pending request means it never runs', async (t) => {
    const p = probe('flaky');
    const h = await harness(t, { engine: { concurrency: 1 } });
    probe('hang');
    const claimed = waitForEvent(h.server.engine.events, 'request:claimed');
    await submit(h, 'hang'); // occupies the only slot
    await claimed;
    const queued = await submit(h, 'flaky', { succeedOn: 1 });
    const outcome = await h.server.engine.cancel({ id: queued.id });
    assert.equal(outcome.outcome, 'cancelled');
    assert.equal(outcome.outcome === 'cancelled' && outcome.wasProcessing, false);
    await h.clock.advance(5000);
    assert.equal(p.calls, 0);
    assert.equal((await get(h, queued.id)).status, 'cancelled');
  });

  test('cancelling a running request aborts its handler signal and discards its late result', async (t) => {
    const p = probe('stubborn');
    const h = await harness(t);
    const claimed = waitForEvent(h.server.engine.events, 'request:claimed');
    const r = await submit(h, 'stubborn');
    await claimed;
    const cancelled = waitForEvent(h.server.engine.events, 'request:cancelled');
    const outcome = await h.server.engine.cancel({ id: r.id, tenant: 'alpha' });
    assert.equal(outcome.outcome === 'cancelled' && outcome.wasProcessing, true);
    await cancelled;
    assert.deepEqual(p.aborted, ['cancelled']);
    p.release?.();
    await settle();
    const after = await get(h, r.id);
    assert.equal(after.status, 'cancelled');
    assert.equal(after.result, null);
    assert.equal(h.server.engine.runningCount, 0, 'the worker slot is free again');
  });

  test("heartbeats keep a long request's lease alive", async (t) => {
    probe('hang');
    const h = await harness(t, { engine: { lease_duration: 3, heartbeat_interval: 1 }, operationSettings: { hang: { timeout: 100 } } });
    const claimed = waitForEvent(h.server.engine.events, 'request:claimed');
    const r = await submit(h, 'hang');
    await claimed;
    for (let i = 0; i < 10; i++) await h.clock.advance(1000);
    await h.server.engine.services.rescuer.sweep();
    const now = await get(h, r.id);
    assert.equal(now.status, 'processing');
    assert.equal(now.attempt, 1);
    assert.ok((now.lease_expires_at ?? 0) > h.clock.now(), 'lease renewed past now');
  });

  test('at start-up, requests left processing by a dead process are recovered and run again', async (t) => {
    const h = await harness(t);
    // Simulate a crashed process: claim a request as another owner, never finish it.
    const { request } = await h.server.store.requestInsert({
      request: {
        ...(await import('../helpers/factories.js')).makeNewRequest({ operation: 'echo', input: { v: 7 }, created_at: h.clock.now() }),
      },
    });
    await h.server.store.requestClaim({ owner: 'dead-node', now: h.clock.now(), leaseMs: 60_000, limit: 1 });
    // A new engine on the same file (the restart).
    await h.server.close(0);
    const { createServer } = await import('../../src/server.js');
    const { pino } = await import('pino');
    const restarted = await createServer({
      config: h.server.config,
      log: pino({ level: 'silent' }),
      test: { clock: h.clock, random: () => 0.5 },
    });
    t.after(() => restarted.close(0));
    const completed = waitForEvent(restarted.engine.events, 'request:completed');
    await h.clock.advance(1000); // the rescue's retry delay (initial_delay)
    const done = await completed;
    assert.equal(done.request.id, request.id);
    assert.equal(done.request.attempt, 2);
    assert.deepEqual(done.request.result, { v: 7 });
  });

  test('respects engine and per-operation concurrency', async (t) => {
    probe('hang');
    const h = await harness(t, { engine: { concurrency: 3 }, operationSettings: { hang: { concurrency: 2 } } });
    for (let i = 0; i < 4; i++) await submit(h, 'hang');
    await settle(20);
    const processing = await h.server.store.requestList({ statuses: ['processing'], limit: 10 });
    assert.equal(processing.length, 2, 'hang is limited to 2');
    const echo = waitForEvent(h.server.engine.events, 'request:completed');
    await submit(h, 'echo');
    await echo;
    await settle();
    assert.equal(h.server.engine.runningCount, 2, 'the third slot was free for echo and is free again');
  });

  test('retention purges finished requests older than the ttl, and nothing else', async (t) => {
    probe('hang');
    const h = await harness(t, {
      retention: { ttl: '1h', sweep_interval: '10m' },
      operationSettings: { hang: { timeout: '3h', workflow_timeout: '3h' } },
    });
    const completed = waitForEvent(h.server.engine.events, 'request:completed');
    const old = await submit(h, 'echo');
    await completed;
    const running = await submit(h, 'hang');
    await h.clock.advance(3_600_000 + 600_000);
    assert.equal(await h.server.store.requestGetById({ id: old.id }), null);
    assert.ok(await h.server.store.requestGetById({ id: running.id }));
  });

  test('stop() releases unfinished work for the next start, attempt not counted, and refuses new submissions', async (t) => {
    const p = probe('hang');
    const h = await harness(t);
    const claimed = waitForEvent(h.server.engine.events, 'request:claimed');
    const r = await submit(h, 'hang');
    await claimed;
    const released = waitForEvent(h.server.engine.events, 'request:released');
    await h.server.engine.stop(0);
    await released;
    assert.deepEqual(p.aborted, ['shutdown']);
    const after = await get(h, r.id);
    assert.equal(after.status, 'pending');
    assert.equal(after.attempt, 0);
    await assert.rejects(
      () => submit(h, 'echo'),
      (err: unknown) => (err as { type?: string }).type === 'shutting_down',
    );
  });

  test('a claim in flight when stop() begins is released, never started', async (t) => {
    const p = probe('flaky');
    const h = await harness(t);
    const r = await submit(h, 'flaky', { succeedOn: 1 }); // wakes the dispatcher; its claim is now queued
    await h.server.engine.stop(0);
    assert.equal(p.calls, 0, 'no handler starts after stop()');
    const after = await get(h, r.id);
    assert.equal(after.status, 'pending');
    assert.equal(after.attempt, 0);
  });

  test("a due request held back by an operation's concurrency does not make the dispatcher spin", async (t) => {
    probe('hang');
    const h = await harness(t, { operationSettings: { hang: { concurrency: 1 } } });
    const claimed = waitForEvent(h.server.engine.events, 'request:claimed');
    await submit(h, 'hang');
    await claimed;
    await submit(h, 'hang'); // due, but the operation is at its limit
    await settle(20);
    const store = h.server.store;
    const original = store.requestClaim.bind(store);
    let claims = 0;
    store.requestClaim = (params) => {
      claims += 1;
      return original(params);
    };
    for (let i = 0; i < 50; i++) await h.clock.advance(20); // one second, in small steps
    assert.ok(claims <= 2, `about one claim per poll_interval (1 s), not one per millisecond; saw ${claims}`);
  });
});
