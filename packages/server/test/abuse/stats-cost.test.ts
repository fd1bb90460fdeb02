/**
 * Issue 11, item 2: no route's cost may grow with the size of stored inputs
 * and results. A tenant stores 50 requests with ~500 KB inputs and results
 * (and a batch of 10 more); then every list/scan route is called and two
 * things are measured through public seams, never a clock:
 * - the bytes the Store hands the HTTP layer for the call (the server runs on
 *   a store wrapped to count what each method returns: `createServer`'s
 *   `test.store`), and
 * - the bytes of the answer.
 * Before the fix, `GET /v1/stats` pulled every row whole (~50 MB per call),
 * lists and status reads carried every input, and a page carried every result.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { createServer, type ErrandServer } from '../../src/server.js';
import { openStore, type Store } from '../../src/store/index.js';
import { makeBatch, makeNewRequest, tempDir } from '../helpers/factories.js';

const ALPHA = { authorization: 'Bearer key_alpha_cost' };
const ADMIN = { authorization: 'Bearer adm_cost_key' };
const BIG = 'x'.repeat(500_000);
const REQUESTS = 50;
/** Far below one stored input: what a call may read from the store, and answer, whatever the payloads. */
const BUDGET = 100_000;

let server: ErrandServer;
let cleanup: () => void;
/** Bytes of JSON the store returned since the last `reset()`. */
let storeBytes = 0;
const bigIds: string[] = [];
let smallResultId = '';
let batchId = '';

/** The store, counting the bytes of what every method resolves with. */
function counting(store: Store): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const out: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (!(out instanceof Promise)) return out;
        return out.then((resolved: unknown) => {
          storeBytes += Buffer.byteLength(JSON.stringify(resolved) ?? '');
          return resolved;
        });
      };
    },
  });
}

/** Seeds completed requests directly through the store (as a busy tenant would have, over time). */
async function seed(store: Store): Promise<void> {
  const now = Date.now() - 60_000;
  const run = async (input: unknown, at: number, batch: string | null = null) => {
    const fresh = makeNewRequest({ tenant: 'alpha', created_at: at, input, batch_id: batch });
    if (batch === null) await store.requestInsert({ request: fresh });
    return fresh;
  };
  for (let i = 0; i < REQUESTS; i++) {
    const fresh = await run({ big: BIG, i }, now + i);
    const [claimed] = await store.requestClaim({ owner: 'seed', now: now + i, leaseMs: 60_000, limit: 1 });
    assert.equal(claimed?.request.id, fresh.id);
    await store.requestComplete({ id: fresh.id, attempt: 1, owner: 'seed', now: now + i + 1, result: { big: BIG, i } });
    bigIds.push(fresh.id);
  }
  const small = await run({ big: BIG }, now + 100);
  await store.requestClaim({ owner: 'seed', now: now + 100, leaseMs: 60_000, limit: 1 });
  await store.requestComplete({ id: small.id, attempt: 1, owner: 'seed', now: now + 101, result: { ok: true } });
  smallResultId = small.id;

  const batch = makeBatch({ total: 10, created_at: now + 200 });
  batchId = batch.id;
  const items = await Promise.all(Array.from({ length: 10 }, (_, i) => run({ big: BIG, i }, now + 200 + i, batchId)));
  await store.batchInsert({
    batch,
    requests: items,
  });
  for (const claimed of await store.requestClaim({ owner: 'seed', now: now + 300, leaseMs: 60_000, limit: 10 })) {
    await store.requestComplete({ id: claimed.request.id, attempt: 1, owner: 'seed', now: now + 301, result: { big: BIG } });
  }
}

before(async () => {
  const dir = tempDir('errand-abuse-cost-');
  cleanup = dir.cleanup;
  const url = `sqlite:${join(dir.dir, 'errand.db')}`;
  writeFileSync(join(dir.dir, 'echo.mjs'), 'export default { async run(input) { return input; } };\n');
  const store = await openStore({ url, synchronous: 'normal' });
  await seed(store);
  const config = loadConfig({
    overrides: {
      store: { url },
      logging: { level: 'silent' },
      auth: { keys: [{ key: 'key_alpha_cost', tenant: 'alpha' }], admin_keys: ['adm_cost_key'] },
      operations: { echo: { module: './echo.mjs' } },
    },
    baseDir: dir.dir,
    env: {},
  });
  server = await createServer({ config, test: { store: counting(store) } });
});

after(async () => {
  await server?.close(0);
  cleanup?.();
});

async function measure(
  url: string,
  headers: Record<string, string> = ALPHA,
): Promise<{ status: number; storeBytes: number; answerBytes: number; body: string }> {
  storeBytes = 0;
  const res = await server.app.inject({ method: 'GET', url, headers });
  return { status: res.statusCode, storeBytes, answerBytes: Buffer.byteLength(res.body), body: res.body };
}

test('GET /v1/stats reads aggregates, not the 50 stored requests (tenant and admin)', async () => {
  for (const headers of [ALPHA, ADMIN]) {
    const m = await measure('/v1/stats?window_minutes=60', headers);
    assert.equal(m.status, 200, m.body);
    assert.ok(m.storeBytes < BUDGET, `the store handed over ${m.storeBytes} bytes for one stats call`);
    const echo = (JSON.parse(m.body) as { operations: { operation: string; completed: number }[] }).operations.find(
      (o) => o.operation === 'echo',
    );
    assert.equal(echo?.completed, REQUESTS + 11, 'and the numbers are still right');
  }
});

test('GET /v1/requests and /v1/tasks pages read no inputs and carry no oversized results', async () => {
  for (const base of ['/v1/requests', '/v1/tasks']) {
    const m = await measure(`${base}?limit=100`);
    assert.equal(m.status, 200, m.body);
    assert.ok(m.storeBytes < BUDGET, `${base}: the store handed over ${m.storeBytes} bytes`);
    assert.ok(m.answerBytes < BUDGET, `${base}: the page is ${m.answerBytes} bytes`);
    const page = JSON.parse(m.body) as { data: { request_id: string; result?: unknown; result_omitted?: boolean }[] };
    assert.equal(page.data.length, REQUESTS + 11);
    const big = page.data.find((r) => r.request_id === bigIds[0]);
    assert.deepEqual([big?.result, big?.result_omitted], [undefined, true], 'a big result is left out and flagged');
    assert.deepEqual(page.data.find((r) => r.request_id === smallResultId)?.result, { ok: true }, 'a small one is kept');
  }
});

test('a status read (and its /result) does not read the input', async () => {
  const m = await measure(`/v1/requests/${smallResultId}`);
  assert.equal(m.status, 200, m.body);
  assert.ok(m.storeBytes < BUDGET, `the store handed over ${m.storeBytes} bytes for a status read`);
  const r = await measure(`/v1/requests/${smallResultId}/result`);
  assert.equal(r.status, 200, r.body);
  assert.ok(r.storeBytes < BUDGET, `the store handed over ${r.storeBytes} bytes for a result read`);
  const full = await measure(`/v1/requests/${bigIds[0]!}`);
  assert.equal(
    (JSON.parse(full.body) as { result: { big: string } }).result.big.length,
    BIG.length,
    'one request’s own resource still has its result',
  );
});

test('the deliveries log and the event stream of a request do not read its input', async () => {
  const log = await measure(`/v1/requests/${smallResultId}/deliveries`);
  assert.equal(log.status, 200, log.body);
  assert.ok(log.storeBytes < BUDGET, `the store handed over ${log.storeBytes} bytes for a deliveries log`);
  const events = await measure(`/v1/requests/${smallResultId}/events`);
  assert.equal(events.status, 200, events.body);
  assert.match(events.body, /event: completed/);
  assert.ok(events.storeBytes < BUDGET, `the store handed over ${events.storeBytes} bytes for a finished request's event stream`);
});

test('GET /v1/batches/{id} reads no inputs and carries no oversized results', async () => {
  const m = await measure(`/v1/batches/${batchId}`);
  assert.equal(m.status, 200, m.body);
  assert.ok(m.storeBytes < BUDGET, `the store handed over ${m.storeBytes} bytes`);
  assert.ok(m.answerBytes < BUDGET, `the batch answer is ${m.answerBytes} bytes`);
  const body = JSON.parse(m.body) as { counts: { completed: number }; items: { result_omitted?: boolean }[] };
  assert.equal(body.counts.completed, 10);
  assert.ok(body.items.every((item) => item.result_omitted === true));
});
