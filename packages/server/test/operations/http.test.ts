/**
 * The `http` kind against a real upstream on 127.0.0.1: forwarding, answers
 * as results, the failure classes (5xx/429 retried, 4xx not, timeouts,
 * unreachable, oversized, non-JSON), secrets from `${VAR}` in headers, and
 * cancel aborting the upstream call.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freePort, waitFor } from '../helpers/process.js';
import { startKindServer, startUpstream, type KindServer, type Upstream } from './harness.js';

let up: Upstream;
let t: KindServer;
let flaky = 0;
let deadPort: number;

before(async () => {
  up = await startUpstream((req, res, body) => {
    const path = (req.url ?? '').split('?')[0];
    const send = (status: number, type: string, text: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': type, ...headers });
      res.end(text);
    };
    if (path === '/echo')
      return send(200, 'application/json', JSON.stringify({ got: JSON.parse(body || 'null'), query: req.url?.split('?')[1] ?? null }));
    if (path === '/text') return send(200, 'text/plain; charset=utf-8', 'plain answer');
    if (path === '/flaky')
      return ++flaky === 1 ? send(503, 'text/plain', 'busy', { 'retry-after': '0' }) : send(200, 'application/json', '{"ok":true}');
    if (path === '/broken') return send(500, 'text/plain', 'upstream exploded');
    if (path === '/limited') return send(429, 'application/json', '{"error":"slow down"}', { 'retry-after': '0' });
    if (path === '/missing') return send(404, 'application/json', '{"error":"no such thing"}');
    if (path === '/big') return send(200, 'application/json', JSON.stringify({ pad: 'x'.repeat(10_000) }));
    if (path === '/png') return send(200, 'image/png', 'PNG');
    if (path === '/bad-json') return send(200, 'application/json', '{"half":');
    if (path === '/hang') return; // never answers: the caller's timeout or abort ends it
    send(404, 'text/plain', 'unknown path');
  });
  deadPort = await freePort();
  const op = (path: string, extra: Record<string, unknown> = {}, settings: Record<string, unknown> = {}) => ({
    http: { url: `${up.url}${path}`, ...extra },
    retry: { max_attempts: 1 },
    ...settings,
  });
  t = await startKindServer(
    {
      operations: {
        echo: op('/echo', { headers: { Authorization: 'Bearer ${UPSTREAM_TOKEN}', 'X-Team': 'search' } }),
        'echo-get': op('/echo', { method: 'GET' }),
        'echo-fixed': op('/echo?api_key=op_key_42&format=json', { method: 'GET' }),
        text: op('/text'),
        flaky: op('/flaky', {}, { retry: { max_attempts: 3, initial_delay: 0.05 } }),
        broken: op('/broken', {}, { retry: { max_attempts: 2, initial_delay: 0.05 } }),
        limited: op('/limited'),
        missing: op('/missing', {}, { retry: { max_attempts: 3 } }),
        big: op('/big', { max_response: '1kb' }),
        png: op('/png'),
        'bad-json': op('/bad-json'),
        hang: op('/hang', { timeout: 0.3 }),
        held: op('/hang'),
        dead: { http: { url: `http://127.0.0.1:${deadPort}/x` }, retry: { max_attempts: 1 } },
      },
    },
    { UPSTREAM_TOKEN: 'tok_secret_123' },
  );
});
after(async () => {
  await t?.close();
  await up?.close();
});

const run = async (operation: string, input: unknown = {}) => {
  const { body } = await t.call('POST', `/v1/operations/${operation}?async=true`, input);
  const final = await t.waitTerminal(body.request_id as string);
  return final;
};

describe('http kind: forwarding', () => {
  test('POSTs the input as JSON with the configured headers (${VAR} from the environment); the JSON answer is the result', async () => {
    const { status, body } = await t.call('POST', '/v1/operations/echo?async=false', { question: 'why?', n: 2 });
    assert.equal(status, 200);
    assert.equal(body.status, 'completed');
    assert.deepEqual(body.result, { got: { question: 'why?', n: 2 }, query: null });
    const call = up.calls.find((c) => c.url === '/echo' && c.method === 'POST');
    assert.ok(call);
    assert.equal(call.headers.authorization, 'Bearer tok_secret_123');
    assert.equal(call.headers['x-team'], 'search');
    assert.equal(call.headers['content-type'], 'application/json');
    assert.equal(call.headers['x-errand-request-id'], body.request_id);
  });

  test("GET sends the input's scalar fields as query parameters and no body", async () => {
    const final = await run('echo-get', { q: 'errand docs', page: 2, nested: { ignored: true } });
    assert.equal(final.status, 'completed');
    assert.deepEqual(final.result, { got: null, query: 'q=errand+docs&page=2' });
  });

  test("input cannot overwrite the query parameters written in the operator's url", async () => {
    const final = await run('echo-fixed', { api_key: 'tenant_key', format: 'xml', q: 'mine' });
    assert.equal(final.status, 'completed');
    const query = new URLSearchParams((final.result as { query: string }).query);
    assert.deepEqual(query.getAll('api_key'), ['op_key_42']);
    assert.deepEqual(query.getAll('format'), ['json']);
    assert.equal(query.get('q'), 'mine', 'other fields are still added');
  });

  test('a text answer is the result as a string', async () => {
    const final = await run('text');
    assert.equal(final.result, 'plain answer');
  });
});

describe('http kind: upstream failures', () => {
  test('503 is retried (Retry-After honoured), then the next answer completes the request', async () => {
    const final = await run('flaky');
    assert.equal(final.status, 'completed');
    assert.equal(final.attempt, 2);
    assert.deepEqual(final.result, { ok: true });
  });

  test('500 on every attempt → failed upstream_error with the status and body, after all attempts', async () => {
    const final = await run('broken');
    assert.equal(final.status, 'failed');
    assert.equal(final.attempt, 2);
    assert.equal(final.error?.type, 'upstream_error');
    assert.deepEqual(final.error?.details, { status: 500, body: 'upstream exploded' });
    assert.match(final.error?.message ?? '', /answered 500/);
  });

  test('429 is an upstream_error too (retried like 5xx)', async () => {
    const final = await run('limited');
    assert.equal(final.error?.type, 'upstream_error');
    assert.equal((final.error?.details as { status: number }).status, 429);
  });

  test('404 → upstream_rejected, not retried although attempts remain', async () => {
    const before = up.calls.filter((c) => c.url === '/missing').length;
    const final = await run('missing');
    assert.equal(final.status, 'failed');
    assert.equal(final.error?.type, 'upstream_rejected');
    assert.equal(final.error?.retryable, false);
    assert.equal(final.attempt, 1);
    assert.equal(up.calls.filter((c) => c.url === '/missing').length - before, 1);
  });

  test('no answer within http.timeout → upstream_timeout (retryable)', async () => {
    const final = await run('hang');
    assert.equal(final.error?.type, 'upstream_timeout');
    assert.equal(final.error?.retryable, true);
  });

  test('a refused connection → upstream_unreachable with the system code', async () => {
    const final = await run('dead');
    assert.equal(final.error?.type, 'upstream_unreachable');
    assert.equal((final.error?.details as { code?: string }).code, 'ECONNREFUSED');
  });

  test('an answer over max_response → upstream_response_too_large', async () => {
    const final = await run('big');
    assert.equal(final.error?.type, 'upstream_response_too_large');
    assert.equal(final.error?.retryable, false);
  });

  test('a binary answer or broken JSON → upstream_invalid_response', async () => {
    assert.equal((await run('png')).error?.type, 'upstream_invalid_response');
    assert.equal((await run('bad-json')).error?.type, 'upstream_invalid_response');
  });
});

describe("http kind: failure messages never name the operator's upstream", () => {
  test('an error status, a refused connection: the message and details carry no host, port or path', async () => {
    const host = new URL(up.url).host;
    for (const [operation, hidden] of [
      ['broken', [host, '/broken', '127.0.0.1']],
      ['dead', [`:${deadPort}`, '127.0.0.1', '/x']],
    ] as const) {
      const final = await run(operation);
      const shown = JSON.stringify(final.error);
      for (const text of hidden) assert.ok(!shown.includes(text), `${operation}: ${shown} names ${text}`);
    }
  });
});

describe('http kind: cancel', () => {
  test('cancelling the request aborts the upstream call', async () => {
    const { body } = await t.call('POST', '/v1/operations/held?async=true', {});
    const id = body.request_id as string;
    const aborted = up.aborted();
    await waitFor(() => up.calls.some((c) => c.headers['x-errand-request-id'] === id), { what: 'the upstream to see the call' });
    const res = await t.call('DELETE', `/v1/requests/${id}`);
    assert.equal(res.status, 200, res.raw);
    await aborted;
    assert.equal((await t.waitTerminal(id)).status, 'cancelled');
  });
});
