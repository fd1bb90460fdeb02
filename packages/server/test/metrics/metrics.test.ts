/**
 * GET /metrics after a known workload: the counters, histograms and gauges say
 * exactly what happened (accepted, completed, failed, cancelled, retried by
 * hand and automatically, queue depth and running count, webhook deliveries,
 * SSE subscribers, estimator accuracy), only an admin key reads them, label
 * values are capped, `track_async_tasks: false` turns the request metrics off,
 * and `observability.metrics.port` moves them to their own listener.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LabelCap } from '../../src/metrics/index.js';
import { errorOf, json, startHttpServer, type TestHttpServer } from '../helpers/http.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

const ACME = { authorization: 'Bearer fmc_acme_key' };
const BETA = { authorization: 'Bearer fmc_beta_key' };
const ADMIN = { authorization: 'Bearer adm_metrics_key' };
const AUTH = {
  keys: [
    { key: 'fmc_acme_key', tenant: 'acme' },
    { key: 'fmc_beta_key', tenant: 'beta' },
  ],
  admin_keys: ['adm_metrics_key'],
};

/** One sample line of the exposition text: `name{a="b",…} value`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample named `name` whose labels include `labels`; 0 when there is none. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value ?? 0;
}

async function scrape(t: TestHttpServer): Promise<Sample[]> {
  const res = await t.inject({ method: 'GET', url: '/metrics', headers: ADMIN });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parse(res.body);
}

async function submit(
  t: TestHttpServer,
  operation: string,
  payload: unknown,
  headers: Record<string, string> = ACME,
  query = '',
): Promise<string> {
  const res = await t.inject({
    method: 'POST',
    url: `/v1/operations/${operation}${query}`,
    headers,
    payload: payload as Record<string, unknown>,
  });
  assert.ok(res.statusCode === 200 || res.statusCode === 202, res.body);
  return json(res).request_id as string;
}

function deliveredOnce(t: TestHttpServer, timeoutMs = SAFETY_NET_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no webhook delivery within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = t.server.engine.webhooks.events.on('delivery:delivered', () => {
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

describe('metrics after a known workload', () => {
  let t: TestHttpServer;
  let receiver: Receiver;
  let opsDir: string;

  before(async () => {
    receiver = await startReceiver();
    opsDir = mkdtempSync(join(tmpdir(), 'errand-metrics-ops-'));
    // Fails its first attempt (retryable), succeeds on the second.
    writeFileSync(
      join(opsDir, 'flaky.mjs'),
      `export default { async run(input, ctx) { if (ctx.attempt === 1) throw Object.assign(new Error('try again'), { retryable: true }); return { attempt: ctx.attempt }; } };\n`,
    );
    t = await startHttpServer({
      overrides: {
        auth: AUTH,
        operations: {
          echo: { estimate_seconds: 60 },
          flaky: { module: join(opsDir, 'flaky.mjs'), retry: { max_attempts: 3, initial_delay: 0.01, max_delay: 0.01 } },
        },
        webhooks: { allow: ['127.0.0.1'] },
      },
    });
  });

  after(async () => {
    await t.close();
    await receiver.close();
    rmSync(opsDir, { recursive: true, force: true });
  });

  test('counters, histograms and gauges match the workload', async () => {
    // The metrics listener was subscribed first, so once this resolves the delivery is counted.
    const delivered = deliveredOnce(t);
    const echoes = [await submit(t, 'echo', { n: 1 }), await submit(t, 'echo', { n: 2 })];
    const hooked = await submit(t, 'echo', { n: 3 }, BETA, `?webhook_url=${encodeURIComponent(`${receiver.url}/hook`)}`);
    const failed = await submit(t, 'fail', {});
    const flaky = await submit(t, 'flaky', {});
    const held = await submit(t, 'slow', {});
    const delayed = await submit(t, 'echo', { n: 4 }, ACME, '?delay_seconds=3600');
    for (const id of [...echoes, hooked, failed, flaky]) await t.waitTerminal(id);
    await t.slow.started(held);
    await delivered;

    let samples = await scrape(t);

    assert.equal(value(samples, 'errand_requests_accepted_total', { operation: 'echo', tenant: 'acme' }), 3);
    assert.equal(value(samples, 'errand_requests_accepted_total', { operation: 'echo', tenant: 'beta' }), 1);
    assert.equal(value(samples, 'errand_requests_finished_total', { operation: 'echo', tenant: 'acme', status: 'completed' }), 2);
    assert.equal(value(samples, 'errand_requests_finished_total', { operation: 'fail', tenant: 'acme', status: 'failed' }), 1);
    assert.equal(value(samples, 'errand_requests_finished_total', { operation: 'flaky', tenant: 'acme', status: 'completed' }), 1);
    assert.equal(value(samples, 'errand_requests_retried_total', { operation: 'flaky', kind: 'automatic' }), 1);
    assert.equal(value(samples, 'errand_request_run_seconds_count', { operation: 'flaky', outcome: 'retrying' }), 1);
    assert.equal(value(samples, 'errand_request_run_seconds_count', { operation: 'flaky', outcome: 'completed' }), 1);
    assert.equal(value(samples, 'errand_request_duration_seconds_count', { operation: 'echo', status: 'completed' }), 3);
    assert.equal(value(samples, 'errand_request_queue_wait_seconds_count', { operation: 'echo' }), 3);
    // The delayed one waits in the queue, the held one runs.
    assert.equal(value(samples, 'errand_queue_depth', { operation: 'echo' }), 1);
    assert.equal(value(samples, 'errand_requests_running', { operation: 'slow' }), 1);
    assert.equal(value(samples, 'errand_store_up'), 1);
    // echo declares 60 s: three completions far faster than that, all in the lowest ratio buckets.
    assert.equal(value(samples, 'errand_estimate_ratio_count', { operation: 'echo' }), 3);
    assert.equal(value(samples, 'errand_estimate_ratio_bucket', { operation: 'echo', le: '0.5' }), 3);
    assert.equal(value(samples, 'errand_webhook_deliveries_total', { outcome: 'delivered' }), 1);
    assert.equal(value(samples, 'errand_webhook_delivery_seconds_count'), 1);
    assert.equal(value(samples, 'errand_info', { store: 'sqlite' }), 1);
    assert.ok(value(samples, 'errand_process_resident_memory_bytes') > 0, 'process metrics are collected');
    // Seven submissions were each committed before their answer (the store's own counting is a conformance test).
    const commitsBefore = value(samples, 'errand_store_commits_total');
    assert.ok(commitsBefore >= 7, `errand_store_commits_total is ${commitsBefore}`);

    // Cancel the running one and retry the failed one by hand.
    const cancel = await t.inject({ method: 'DELETE', url: `/v1/requests/${held}`, headers: ACME });
    assert.equal(cancel.statusCode, 200, cancel.body);
    const retry = await t.inject({ method: 'POST', url: `/v1/requests/${failed}/retry`, headers: ACME });
    assert.equal(retry.statusCode, 202, retry.body);
    await t.waitTerminal(json(retry).request_id as string);
    await t.inject({ method: 'DELETE', url: `/v1/requests/${delayed}`, headers: ACME });

    samples = await scrape(t);
    assert.equal(value(samples, 'errand_requests_finished_total', { operation: 'slow', tenant: 'acme', status: 'cancelled' }), 1);
    assert.equal(value(samples, 'errand_request_run_seconds_count', { operation: 'slow', outcome: 'cancelled' }), 1);
    assert.equal(value(samples, 'errand_requests_retried_total', { operation: 'fail', kind: 'manual' }), 1);
    assert.equal(value(samples, 'errand_requests_finished_total', { operation: 'fail', tenant: 'acme', status: 'failed' }), 2);
    assert.equal(value(samples, 'errand_requests_finished_total', { operation: 'echo', tenant: 'acme', status: 'cancelled' }), 1);
    assert.equal(value(samples, 'errand_queue_depth', { operation: 'echo' }), 0);
    assert.equal(value(samples, 'errand_requests_running', { operation: 'slow' }), 0);
    assert.ok(value(samples, 'errand_store_commits_total') > commitsBefore, 'the cancels and the retry were committed');
  });

  test('only an admin key reads metrics: 401 without a key, 403 with a tenant key', async () => {
    const none = await t.inject({ method: 'GET', url: '/metrics' });
    assert.equal(none.statusCode, 401);
    assert.equal(errorOf(none).type, 'unauthorized');
    assert.doesNotMatch(none.body, /errand_/);
    const tenant = await t.inject({ method: 'GET', url: '/metrics', headers: ACME });
    assert.equal(tenant.statusCode, 403);
    assert.equal(errorOf(tenant).type, 'forbidden');
    assert.doesNotMatch(tenant.body, /errand_requests/);
  });
});

test('label values are capped: tenants beyond max_label_values are counted as "other"', async (t) => {
  const server = await startHttpServer({ overrides: { auth: AUTH, observability: { metrics: { max_label_values: 1 } } } });
  t.after(() => server.close());
  await server.waitTerminal(await submit(server, 'echo', {}, ACME));
  await server.waitTerminal(await submit(server, 'echo', {}, BETA));
  await server.waitTerminal(await submit(server, 'echo', {}, ADMIN));
  const samples = await scrape(server);
  const tenants = samples.filter((s) => s.name === 'errand_requests_accepted_total').map((s) => s.labels.tenant);
  assert.deepEqual(tenants.sort(), ['acme', 'other']);
  assert.equal(value(samples, 'errand_requests_accepted_total', { tenant: 'other' }), 2);

  const cap = new LabelCap(2);
  assert.deepEqual(
    ['a', 'b', 'c', 'a', 'd'].map((v) => cap.value(v)),
    ['a', 'b', 'other', 'a', 'other'],
  );
  assert.equal(cap.hasOverflowed, true);
});

test('observability.track_async_tasks: false leaves out the request metrics, keeps the rest', async (t) => {
  const server = await startHttpServer({ overrides: { observability: { track_async_tasks: false } } });
  t.after(() => server.close());
  await server.waitTerminal(await submit(server, 'echo', {}, {}));
  const res = await server.inject({ method: 'GET', url: '/metrics' }); // no keys configured: open
  assert.equal(res.statusCode, 200);
  const names = new Set(parse(res.body).map((s) => s.name));
  assert.ok(!names.has('errand_requests_accepted_total'));
  assert.ok(!names.has('errand_queue_depth'));
  assert.ok(names.has('errand_info'));
  assert.ok(names.has('errand_sse_subscribers'));
});

test('observability.metrics.port serves metrics on their own listener, not the API port; SSE streams are counted', async (t) => {
  const server = await startHttpServer({ overrides: { auth: AUTH, observability: { metrics: { port: 0 } } } });
  t.after(() => server.close());
  const api = await server.server.listen(0);
  const metricsUrl = server.server.metricsUrl;
  assert.ok(metricsUrl, 'the metrics listener started');
  assert.notEqual(new URL(metricsUrl).port, new URL(api).port);

  const onApi = await fetch(`${api}/metrics`, { headers: ADMIN });
  assert.equal(onApi.status, 404);
  await onApi.body?.cancel();
  const elsewhere = await fetch(`${metricsUrl}/other`);
  assert.equal(elsewhere.status, 404);
  await elsewhere.body?.cancel();

  const held = await submit(server, 'slow', {});
  await server.slow.started(held);
  const stream = new AbortController();
  const sse = await fetch(`${api}/v1/requests/${held}/events`, { headers: ACME, signal: stream.signal });
  assert.equal(sse.status, 200);
  const reader = sse.body!.getReader();
  await reader.read(); // the stream is open once its first event arrived
  const open = parse(await (await fetch(`${metricsUrl}/metrics`)).text());
  assert.ok(value(open, 'errand_sse_subscribers') >= 1);
  assert.equal(value(open, 'errand_requests_running', { operation: 'slow' }), 1);
  stream.abort();
  await reader.cancel().catch(() => {});
  server.slow.release(held);
  await server.waitTerminal(held);
});
