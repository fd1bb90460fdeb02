/**
 * Cheap, correct polling of the status resource: `ETag` / `If-None-Match` →
 * 304, `?wait=N` long-polls (driven by the engine's manual clock, never by
 * sleeping), `Retry-After` on every non-terminal answer, and `410 Gone` for
 * ids purged by retention until their tombstones expire.
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { describe, test } from 'node:test';
import Fastify, { type InjectOptions, type LightMyRequestResponse } from 'fastify';
import type { Caller } from '../../src/http/auth.js';
import { registerErrorHandling } from '../../src/http/errors.js';
import { requestRoutes } from '../../src/http/routes/requests.js';
import type { Request } from '../../src/model/index.js';
import { settle } from '../helpers/clock.js';
import { startEngine, type EngineHarness } from '../helpers/engine.js';
import { waitForEvent } from '../helpers/events.js';

// ---------------------------------------------------------------------------
// Operations (shared with the test through globalThis: same process)

interface Held {
  ctx: { progress(p: Record<string, unknown>): Promise<void>; emit(chunk: unknown): Promise<void> };
  resolve: (value: unknown) => void;
}
interface HoldRegistry {
  running: Map<string, Held>;
  waiters: Set<() => void>;
}
const REGISTRY = '__errandPollingTest';
function registry(): HoldRegistry {
  const g = globalThis as unknown as Record<string, HoldRegistry | undefined>;
  g[REGISTRY] ??= { running: new Map(), waiters: new Set() };
  return g[REGISTRY];
}

const OPS = {
  /** Runs until the test releases it; the test reports progress and output through its ctx. */
  hold: `export default { run(input, ctx) {
    const reg = (globalThis.${REGISTRY} ??= { running: new Map(), waiters: new Set() });
    return new Promise((resolve, reject) => {
      reg.running.set(ctx.request_id, { ctx, resolve });
      ctx.signal.addEventListener('abort', () => { reg.running.delete(ctx.request_id); reject(ctx.signal.reason); }, { once: true });
      for (const w of [...reg.waiters]) w();
    });
  } };`,
  quick: `export default { run: (input) => ({ echoed: input }) };`,
};

const KEYS = { alpha: 'alpha-key-0001', beta: 'beta-key-00001' };
const AUTH = {
  auth: {
    keys: [
      { key: KEYS.alpha, tenant: 'alpha' },
      { key: KEYS.beta, tenant: 'beta' },
    ],
  },
};

// ---------------------------------------------------------------------------
// Helpers

async function harness(t: { after: (fn: () => Promise<void>) => void }, config: Record<string, unknown> = {}): Promise<EngineHarness> {
  const h = await startEngine(OPS, { ...AUTH, ...config });
  t.after(h.close);
  return h;
}

/** Rejects after `ms` of real time: a safety net that also keeps the event loop alive (the manual clock has no real timers). */
function bounded<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A call in flight whose completion can be checked without awaiting it. */
function track<T>(promise: Promise<T>): { done: () => boolean; result: Promise<T> } {
  let finished = false;
  const result = promise.finally(() => {
    finished = true;
  });
  return { done: () => finished, result };
}

function inject(h: EngineHarness, options: InjectOptions & { tenant?: keyof typeof KEYS }): Promise<LightMyRequestResponse> {
  const { tenant = 'alpha', ...rest } = options;
  return h.server.app.inject({ ...rest, headers: { authorization: `Bearer ${KEYS[tenant]}`, ...(rest.headers ?? {}) } });
}

function get(h: EngineHarness, url: string, headers: Record<string, string> = {}, tenant: keyof typeof KEYS = 'alpha') {
  return inject(h, { method: 'GET', url, headers, tenant });
}

async function submit(h: EngineHarness, operation: string, input: unknown = {}, extra: { runAt?: number } = {}): Promise<Request> {
  return h.server.engine.submit({ tenant: 'alpha', operation, input, mode: 'async', ...extra });
}

/** Submits `hold` and resolves once its handler runs; returns the id and the handler's controls. */
async function holding(h: EngineHarness): Promise<{ id: string; held: () => Held }> {
  const reg = registry();
  const r = await submit(h, 'hold');
  await bounded(
    new Promise<void>((resolve) => {
      const check = () => {
        if (!reg.running.has(r.id)) return;
        reg.waiters.delete(check);
        resolve();
      };
      reg.waiters.add(check);
      check();
    }),
    `handler of ${r.id} to start`,
  );
  return {
    id: r.id,
    held: () => {
      const held = reg.running.get(r.id);
      assert.ok(held, `handler of ${r.id} is running`);
      return held;
    },
  };
}

async function completed(h: EngineHarness, operation = 'quick'): Promise<string> {
  const done = waitForEvent(h.server.engine.events, 'request:completed', () => true);
  const r = await submit(h, operation, { n: 1 });
  const { request } = await done;
  assert.equal(request.id, r.id);
  return r.id;
}

function body(res: LightMyRequestResponse): Record<string, unknown> {
  return JSON.parse(res.body) as Record<string, unknown>;
}

function errorOf(res: LightMyRequestResponse): Record<string, unknown> {
  const parsed = body(res) as { error?: Record<string, unknown> };
  assert.ok(parsed.error && typeof parsed.error.type === 'string', `error envelope: ${res.body}`);
  return parsed.error;
}

const ETAG = /^"[A-Za-z0-9_-]{22}"$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// ---------------------------------------------------------------------------

describe('ETag and If-None-Match on the status resource', () => {
  test('the ETag is stable while nothing changes and changes on progress; 304 answers without a body', async (t) => {
    const h = await harness(t);
    const { id, held } = await holding(h);
    const url = `/v1/requests/${id}`;

    const first = await get(h, url);
    assert.equal(first.statusCode, 200, first.body);
    const etag = String(first.headers.etag);
    assert.match(etag, ETAG);
    assert.match(String(first.headers['retry-after']), /^\d+$/);
    assert.equal(body(first).status, 'processing');

    const again = await get(h, url);
    assert.equal(again.headers.etag, etag, 'same representation, same ETag');
    assert.equal(again.body, first.body);

    const notModified = await get(h, url, { 'if-none-match': etag });
    assert.equal(notModified.statusCode, 304);
    assert.equal(notModified.body, '');
    assert.equal(notModified.headers.etag, etag);
    assert.match(String(notModified.headers['retry-after']), /^\d+$/, 'Retry-After on a 304 too');

    // A weak tag and a list both match (weak comparison, as RFC 9110 asks for GET).
    assert.equal((await get(h, url, { 'if-none-match': `W/${etag}` })).statusCode, 304);
    assert.equal((await get(h, url, { 'if-none-match': `"other", ${etag}` })).statusCode, 304);
    assert.equal((await get(h, url, { 'if-none-match': '"other"' })).statusCode, 200);

    await held().ctx.progress({ percent: 40, message: 'Reading' });
    const changed = await get(h, url, { 'if-none-match': etag });
    assert.equal(changed.statusCode, 200, 'a change answers 200 with the new representation');
    assert.notEqual(changed.headers.etag, etag);
    assert.match(String(changed.headers.etag), ETAG);
    assert.equal(body(changed).progress, 40);
    assert.equal((await get(h, url, { 'if-none-match': String(changed.headers.etag) })).statusCode, 304);

    // The /v1/tasks representation differs (task_id, progress_percent), so its tag does too.
    const task = await get(h, `/v1/tasks/${id}`);
    assert.equal(task.statusCode, 200);
    assert.notEqual(task.headers.etag, changed.headers.etag);

    // HEAD carries the same validators.
    const head = await inject(h, { method: 'HEAD', url, headers: { 'if-none-match': String(changed.headers.etag) } });
    assert.equal(head.statusCode, 304);
    assert.equal(head.headers.etag, changed.headers.etag);
  });

  test('a 304 reads only the small state; output chunks keep the tag; another tenant gets 404, not 304', async (t) => {
    const h = await harness(t);
    const { id, held } = await holding(h);
    const url = `/v1/requests/${id}`;
    const etag = String((await get(h, url)).headers.etag);
    const store = h.server.engine.store as unknown as Record<string, (...args: unknown[]) => unknown>;
    const reads = { summary: 0, state: 0 };
    const summary = store.requestGetSummary!.bind(store);
    const state = store.requestGetState!.bind(store);
    store.requestGetSummary = (...args) => (reads.summary++, summary(...args));
    store.requestGetState = (...args) => (reads.state++, state(...args));
    try {
      await held().ctx.emit({ text: 'a chunk' });
      const cached = await get(h, url, { 'if-none-match': etag });
      assert.equal(cached.statusCode, 304, 'an output chunk is not part of the status resource');
      assert.deepEqual(reads, { summary: 0, state: 1 }, 'the 304 read the state only');

      const other = await get(h, url, { 'if-none-match': etag }, 'beta');
      assert.equal(other.statusCode, 404);
      assert.equal(errorOf(other).type, 'request_not_found');
      assert.equal(other.headers.etag, undefined);

      await held().ctx.progress({ percent: 10 });
      const changed = await get(h, url, { 'if-none-match': etag });
      assert.equal(changed.statusCode, 200);
      assert.equal(reads.summary, 1, 'a changed state reads the whole summary once');
      assert.equal((await get(h, url, { 'if-none-match': String(changed.headers.etag) })).statusCode, 304);
    } finally {
      delete store.requestGetSummary;
      delete store.requestGetState;
    }
  });

  test('a terminal request has an ETag, answers 304 to it, and has no Retry-After', async (t) => {
    const h = await harness(t);
    const id = await completed(h);
    const res = await get(h, `/v1/requests/${id}`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['retry-after'], undefined);
    const etag = String(res.headers.etag);
    const cached = await get(h, `/v1/requests/${id}`, { 'if-none-match': etag });
    assert.equal(cached.statusCode, 304);
    assert.equal(cached.headers['retry-after'], undefined);
    assert.equal(cached.headers.etag, etag);
  });
});

describe('GET /v1/requests/{id}?wait=N long-polls', () => {
  test('returns as soon as progress changes, without the clock moving', async (t) => {
    const h = await harness(t);
    const { id, held } = await holding(h);
    const etag = String((await get(h, `/v1/requests/${id}`)).headers.etag);
    const timersBefore = h.clock.pendingTimers;
    const startedAt = h.clock.now();

    const poll = track(get(h, `/v1/requests/${id}?wait=30`, { 'if-none-match': etag }));
    await settle();
    assert.equal(poll.done(), false, 'the poll waits while nothing changes');
    assert.equal(h.clock.pendingTimers, timersBefore + 1, 'one timer for the wait');

    // Output does not change the status resource: the poll keeps waiting.
    await held().ctx.emit({ text: 'partial' });
    await settle();
    assert.equal(poll.done(), false, 'an output chunk alone does not answer a conditional poll');

    await held().ctx.progress({ percent: 70, message: 'Almost' });
    const res = await bounded(poll.result, 'long-poll to answer after progress');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(body(res).progress, 70);
    assert.equal(body(res).message, 'Almost');
    assert.notEqual(res.headers.etag, etag);
    assert.match(String(res.headers['retry-after']), /^\d+$/);
    assert.equal(h.clock.now(), startedAt, 'answered by the event, not the timer');
    assert.equal(h.clock.pendingTimers, timersBefore, 'the wait timer was cleared');
  });

  test('without If-None-Match, returns when the status changes (here: completes)', async (t) => {
    const h = await harness(t);
    const { id, held } = await holding(h);
    const poll = track(get(h, `/v1/tasks/${id}?wait=30`));
    await settle();
    assert.equal(poll.done(), false);
    held().resolve({ answer: 42 });
    const res = await bounded(poll.result, 'long-poll to answer on completion');
    assert.equal(res.statusCode, 200, res.body);
    const b = body(res);
    assert.equal(b.status, 'completed');
    assert.equal(b.task_id, id);
    assert.deepEqual(b.result, { answer: 42 });
    assert.equal(res.headers['retry-after'], undefined, 'terminal: no Retry-After');
  });

  test('answers after N seconds of the manual clock when nothing changes: 304 with If-None-Match, 200 without', async (t) => {
    const h = await harness(t);
    const { id } = await holding(h);
    const first = await get(h, `/v1/requests/${id}`);
    const etag = String(first.headers.etag);
    const timersBefore = h.clock.pendingTimers;

    const conditional = track(get(h, `/v1/requests/${id}?wait=5`, { 'if-none-match': etag }));
    const plain = track(get(h, `/v1/requests/${id}?wait=2.5`));
    await settle();
    await h.clock.advance(2499);
    assert.equal(plain.done(), false, 'not before 2.5 s');
    await h.clock.advance(1);
    const plainRes = await bounded(plain.result, 'plain long-poll to time out');
    assert.equal(plainRes.statusCode, 200);
    assert.equal(plainRes.headers.etag, etag, 'unchanged representation');
    assert.equal(plainRes.body, first.body);

    await h.clock.advance(2499);
    assert.equal(conditional.done(), false, 'not before 5 s');
    await h.clock.advance(1);
    const res = await bounded(conditional.result, 'conditional long-poll to time out');
    assert.equal(res.statusCode, 304);
    assert.equal(res.body, '');
    assert.equal(res.headers.etag, etag);
    assert.match(String(res.headers['retry-after']), /^\d+$/);
    assert.equal(h.clock.pendingTimers, timersBefore, 'no timer left behind');
  });

  test('a terminal request answers at once, whatever the wait', async (t) => {
    const h = await harness(t);
    const id = await completed(h);
    const res = await bounded(get(h, `/v1/requests/${id}?wait=30`), 'terminal long-poll');
    assert.equal(res.statusCode, 200);
    assert.equal(body(res).status, 'completed');
    const cached = await bounded(get(h, `/v1/requests/${id}?wait=30`, { 'if-none-match': String(res.headers.etag) }), 'terminal 304');
    assert.equal(cached.statusCode, 304);
  });

  test('an unknown id answers 404 at once, and another tenant cannot wait on a request', async (t) => {
    const h = await harness(t);
    const { id } = await holding(h);
    const unknown = await bounded(get(h, '/v1/requests/req_01kf3v6q4c8x0d2m5n7p9r1s3t?wait=30'), 'unknown long-poll');
    assert.equal(unknown.statusCode, 404);
    assert.equal(errorOf(unknown).type, 'request_not_found');
    const malformed = await bounded(get(h, '/v1/requests/nope?wait=30'), 'malformed long-poll');
    assert.equal(malformed.statusCode, 404);
    const foreign = await bounded(get(h, `/v1/requests/${id}?wait=30`, {}, 'beta'), 'foreign long-poll');
    assert.equal(foreign.statusCode, 404);
    assert.equal(errorOf(foreign).type, 'request_not_found');
  });

  test('a wait above server.long_poll_max is clamped to it (default 30 s), not refused', async (t) => {
    const h = await harness(t);
    const { id } = await holding(h);
    const poll = track(get(h, `/v1/requests/${id}?wait=3600`));
    await settle();
    await h.clock.advance(29_999);
    assert.equal(poll.done(), false);
    await h.clock.advance(1);
    const res = await bounded(poll.result, 'clamped long-poll');
    assert.equal(res.statusCode, 200);
    assert.equal(body(res).status, 'processing');
  });

  test('the cap comes from server.long_poll_max', async (t) => {
    const h = await harness(t);
    const { id } = await holding(h);
    // The routes on their own, given a config whose cap is 2 s.
    const app = Fastify({ logger: false });
    const caller: Caller = { tenant: 'alpha', admin: false, submitTenant: 'alpha' };
    app.decorateRequest('caller', null);
    app.addHook('onRequest', async (request) => {
      request.caller = caller;
    });
    registerErrorHandling(app);
    requestRoutes(app, { engine: h.server.engine, config: { server: { ...h.server.config.server, long_poll_max: 2000 } } });
    await app.ready();
    t.after(() => app.close());

    const poll = track(app.inject({ method: 'GET', url: `/v1/requests/${id}?wait=60` }));
    await settle();
    await h.clock.advance(1999);
    assert.equal(poll.done(), false);
    await h.clock.advance(1);
    const res = await bounded(poll.result, 'long-poll capped by config');
    assert.equal(res.statusCode, 200);
  });

  test('rejects a negative, non-numeric, repeated or absurd wait with 400 invalid_parameter', async (t) => {
    const h = await harness(t);
    const { id } = await holding(h);
    for (const wait of ['-1', 'abc', '', '1e3', 'Infinity', 'NaN', '0x10', '100000', '1.2.3', '99999999999999999999999999999999999']) {
      const res = await get(h, `/v1/requests/${id}?wait=${encodeURIComponent(wait)}`);
      assert.equal(res.statusCode, 400, `wait=${wait}: ${res.body}`);
      const err = errorOf(res);
      assert.equal(err.type, 'invalid_parameter', `wait=${wait}`);
      assert.equal(err.field, 'wait', `wait=${wait}`);
    }
    const repeated = await get(h, `/v1/requests/${id}?wait=1&wait=2`);
    assert.equal(repeated.statusCode, 400);
    assert.equal(errorOf(repeated).field, 'wait');
    // wait=0 is a plain read.
    const zero = await bounded(get(h, `/v1/requests/${id}?wait=0`), 'wait=0');
    assert.equal(zero.statusCode, 200);
  });

  test('a client that hangs up releases its wait (timer and subscription)', async (t) => {
    const h = await harness(t, { server: { host: '127.0.0.1' } });
    const { id } = await holding(h);
    const base = await h.server.listen(0);
    const timersBefore = h.clock.pendingTimers;

    let client: ClientRequest | undefined;
    const closed = new Promise<void>((resolve) => {
      client = httpRequest(`${base}/v1/requests/${id}?wait=30`, { headers: { authorization: `Bearer ${KEYS.alpha}` } });
      client.on('error', () => resolve());
      client.on('close', () => resolve());
      client.end();
    });
    const until = async (predicate: () => boolean, what: string) => {
      for (let i = 0; i < 3000 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(predicate(), what);
    };
    await until(() => h.clock.pendingTimers === timersBefore + 1, 'the long-poll to start waiting');
    client?.destroy();
    await bounded(closed, 'client to close');
    await until(() => h.clock.pendingTimers === timersBefore, 'the wait to be released after the client hung up');
  });

  test('closing the server answers a waiting long-poll at once', async (t) => {
    const h = await harness(t);
    // Pending and not due for an hour: nothing about it changes during shutdown.
    const r = await submit(h, 'quick', {}, { runAt: h.clock.now() + 3_600_000 });
    const etag = String((await get(h, `/v1/requests/${r.id}`)).headers.etag);
    const poll = track(get(h, `/v1/requests/${r.id}?wait=30`, { 'if-none-match': etag }));
    await settle();
    assert.equal(poll.done(), false);
    const closing = h.server.close(0);
    const res = await bounded(poll.result, 'long-poll to be answered on close');
    assert.equal(res.statusCode, 304);
    assert.equal(res.headers.etag, etag);
    await bounded(closing, 'server to close');
  });
});

describe('410 Gone after retention purges a request', () => {
  const RETENTION = { retention: { ttl: 60, tombstone_ttl: 120, sweep_interval: '1d' } };

  test('status, result, cancel and long-poll answer 410 request_gone with the final status until the tombstone expires, then 404', async (t) => {
    const h = await harness(t, RETENTION);
    const id = await completed(h);
    const before = body(await get(h, `/v1/requests/${id}`));
    await h.clock.advance(61_000);
    assert.equal(await h.server.engine.services.retention.sweep(), 1);

    for (const [method, url] of [
      ['GET', `/v1/requests/${id}`],
      ['GET', `/v1/tasks/${id}`],
      ['GET', `/v1/requests/${id}?wait=30`],
      ['GET', `/v1/requests/${id}/result`],
      ['DELETE', `/v1/requests/${id}`],
      ['POST', `/v1/requests/${id}/retry`],
    ] as const) {
      const res = await bounded(inject(h, { method, url }), `${method} ${url}`);
      assert.equal(res.statusCode, 410, `${method} ${url}: ${res.body}`);
      const err = errorOf(res);
      assert.equal(err.type, 'request_gone', `${method} ${url}`);
      assert.equal(err.retryable, false);
      assert.equal(err.request_id, id);
      assert.equal(err.status, 'completed');
      assert.equal(err.completed_at, before.completed_at);
      assert.match(String(err.purged_at), ISO);
      assert.equal(Date.parse(String(err.purged_at)), h.clock.now());
    }

    // Another tenant never learns the id existed.
    for (const url of [`/v1/requests/${id}`, `/v1/requests/${id}/result`]) {
      const foreign = await get(h, url, {}, 'beta');
      assert.equal(foreign.statusCode, 404, url);
      assert.equal(errorOf(foreign).type, 'request_not_found');
    }
    const foreignCancel = await inject(h, { method: 'DELETE', url: `/v1/requests/${id}`, tenant: 'beta' });
    assert.equal(foreignCancel.statusCode, 404);

    // Past tombstone_ttl: 404, before and after the sweep drops the tombstone.
    await h.clock.advance(119_999);
    assert.equal((await get(h, `/v1/requests/${id}`)).statusCode, 410, 'still within tombstone_ttl');
    await h.clock.advance(1);
    const expired = await get(h, `/v1/requests/${id}`);
    assert.equal(expired.statusCode, 404);
    assert.equal(errorOf(expired).type, 'request_not_found');
    await h.server.engine.services.retention.sweep();
    assert.equal((await get(h, `/v1/requests/${id}`)).statusCode, 404);
  });

  test('a cancelled request purged by retention reports `cancelled`', async (t) => {
    const h = await harness(t, RETENTION);
    const r = await submit(h, 'quick', {}, { runAt: h.clock.now() + 1000 });
    const cancelled = await inject(h, { method: 'DELETE', url: `/v1/requests/${r.id}` });
    assert.equal(cancelled.statusCode, 200);
    await h.clock.advance(61_000);
    await h.server.engine.services.retention.sweep();
    const res = await get(h, `/v1/requests/${r.id}`);
    assert.equal(res.statusCode, 410);
    assert.equal(errorOf(res).status, 'cancelled');
  });
});
