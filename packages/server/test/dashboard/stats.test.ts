/**
 * `GET /v1/stats` (the dashboard's operations page) after a known workload,
 * per tenant, and `/dashboard` when the bundle is not built (run from src).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startHttpServer, type TestHttpServer } from '../helpers/http.js';

const ALPHA = { authorization: 'Bearer key_alpha_stats' };
const BETA = { authorization: 'Bearer key_beta_stats' };
const ADMIN = { authorization: 'Bearer adm_stats_key' };

let t: TestHttpServer;

before(async () => {
  t = await startHttpServer({
    overrides: {
      auth: {
        keys: [
          { key: 'key_alpha_stats', tenant: 'alpha' },
          { key: 'key_beta_stats', tenant: 'beta' },
        ],
        admin_keys: ['adm_stats_key'],
      },
      operations: { fail: { retry: { max_attempts: 1 } } },
    },
  });
});
after(() => t?.close());

async function run(headers: Record<string, string>, operation: string, payload: unknown = {}): Promise<string> {
  const res = await t.inject({ method: 'POST', url: `/v1/operations/${operation}?async=true`, headers, payload: payload as object });
  assert.equal(res.statusCode, 202, res.body);
  const id = res.json<{ request_id: string }>().request_id;
  await t.waitTerminal(id);
  return id;
}

interface Stats {
  caller: { admin: boolean; tenant: string | null };
  truncated: boolean;
  window: { minutes: number };
  operations: {
    operation: string;
    pending: number;
    processing: number;
    accepted: number;
    completed: number;
    failed: number;
    success_rate: number | null;
    duration_ms: { p50: number; p95: number; p99: number } | null;
    buckets: { completed: number; failed: number; queued: number }[];
  }[];
}

const stats = async (headers: Record<string, string>, query = ''): Promise<Stats> => {
  const res = await t.inject({ method: 'GET', url: `/v1/stats${query}`, headers });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<Stats>();
};
const op = (s: Stats, name: string) => s.operations.find((o) => o.operation === name);

test('counts, success rate, percentiles and queue depth of the key’s own requests', async () => {
  for (let i = 0; i < 3; i++) await run(ALPHA, 'echo', { i });
  await run(ALPHA, 'fail');
  await run(BETA, 'echo');
  await run(BETA, 'echo');
  const slow = await t.inject({ method: 'POST', url: '/v1/operations/slow?async=true', headers: ALPHA, payload: {} });
  const slowId = slow.json<{ request_id: string }>().request_id;
  await t.slow.started(slowId);

  const alpha = await stats(ALPHA);
  assert.deepEqual(alpha.caller, { admin: false, tenant: 'alpha' });
  assert.equal(alpha.window.minutes, 60);
  assert.equal(alpha.truncated, false);
  const echo = op(alpha, 'echo');
  assert.equal(echo?.accepted, 3, 'beta’s requests are not counted for alpha');
  assert.equal(echo?.completed, 3);
  assert.ok(echo?.duration_ms && echo.duration_ms.p50 <= echo.duration_ms.p99);
  assert.equal(echo?.buckets.length, 30);
  assert.equal(
    echo?.buckets.reduce((n, b) => n + b.completed, 0),
    3,
  );
  const fail = op(alpha, 'fail');
  assert.equal(fail?.failed, 1);
  assert.equal(fail?.success_rate, 0);
  assert.equal(echo?.success_rate, 1);
  assert.equal(op(alpha, 'slow')?.processing, 1);
  // Declared operations are listed even without traffic.
  assert.equal(op(alpha, 'cycle')?.accepted, 0);
  assert.equal(op(alpha, 'cycle')?.success_rate, null);

  const admin = await stats(ADMIN, '?window_minutes=15');
  assert.deepEqual(admin.caller, { admin: true, tenant: null });
  assert.equal(op(admin, 'echo')?.accepted, 5);
  assert.equal(admin.window.minutes, 15);

  t.slow.release(slowId);
  await t.waitTerminal(slowId);
  assert.equal(op(await stats(ALPHA), 'slow')?.processing, 0);
});

test('bad input: no key 401, unknown key 401, a bad window 400 invalid_parameter', async () => {
  const none = await t.inject({ method: 'GET', url: '/v1/stats' });
  assert.equal(none.statusCode, 401);
  assert.equal(none.json().error.type, 'unauthorized');
  const wrong = await t.inject({ method: 'GET', url: '/v1/stats', headers: { authorization: 'Bearer nope' } });
  assert.equal(wrong.statusCode, 401);
  for (const query of ['window_minutes=1', 'window_minutes=99999', 'window_minutes=abc', 'tenant=beta']) {
    const res = await t.inject({ method: 'GET', url: `/v1/stats?${query}`, headers: ALPHA });
    assert.equal(res.statusCode, 400, query);
    assert.equal(res.json().error.type, 'invalid_parameter', query);
  }
});

test('/dashboard without a built bundle answers 404 route_not_found saying how to build it', async () => {
  const res = await t.inject({ method: 'GET', url: '/dashboard' });
  assert.equal(res.statusCode, 404);
  assert.equal(res.json().error.type, 'route_not_found');
  assert.match(res.json().error.message, /npm run build/);
});
