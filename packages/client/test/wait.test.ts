/**
 * `wait()`: long-polls a server that holds the calls; falls back to polling
 * with backoff when the server (here a proxy that drops `?wait=`) answers at
 * once; honours `Retry-After`; gives up with ErrandTimeoutError; stops on abort.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Errand, ErrandTimeoutError } from '../src/index.js';
import { KEYS, killAllServers, startErrand, type TestErrand } from './helpers/errand.js';
import { fakeServer, httpProxy } from './helpers/proxy.js';

let errand: TestErrand;

before(async () => {
  errand = await startErrand();
});
after(async () => {
  await errand?.stop();
  await killAllServers();
});

const statusPolls = (seen: string[], id: string): string[] => seen.filter((s) => s.startsWith(`GET /v1/requests/${id}`));

describe('wait()', () => {
  test('long-polls with ?wait= while the server holds the calls', async () => {
    const proxy = await httpProxy(errand.url, () => {});
    try {
      const client = new Errand({ baseUrl: proxy.url, apiKey: KEYS.alpha });
      const gate = errand.gatePath('long-poll');
      const handle = await client.submit('gate', { gate }, { mode: 'async' });
      setTimeout(() => errand.open(gate), 1_500);
      const done = await handle.wait({ timeoutMs: 15_000 });
      assert.equal(done.status, 'completed');
      const polls = statusPolls(proxy.seen, handle.id);
      assert.ok(
        polls.slice(1).every((p) => /[?&]wait=/.test(p)),
        polls.join('\n'),
      );
      // Held calls: a handful of polls over 1.5 s (pending, processing, completed), not a busy loop.
      assert.ok(polls.length <= 5, `${polls.length} polls:\n${polls.join('\n')}`);
    } finally {
      await proxy.close();
    }
  });

  test('falls back to backoff polling when ?wait= is not honoured (a proxy drops it)', async () => {
    const proxy = await httpProxy(errand.url, (url) => url.searchParams.delete('wait'));
    try {
      const client = new Errand({ baseUrl: proxy.url, apiKey: KEYS.alpha, pollInitialMs: 100, pollMaxMs: 400 });
      const gate = errand.gatePath('backoff');
      const handle = await client.submit('gate', { gate }, { mode: 'async' });
      setTimeout(() => errand.open(gate), 1_500);
      const done = await handle.wait({ timeoutMs: 15_000 });
      assert.equal(done.status, 'completed');
      const polls = statusPolls(proxy.seen, handle.id);
      // Every poll reached the server without `wait`, so every one was answered at once: the client must
      // have spaced them (Retry-After 1 s from the server), not spun.
      assert.ok(polls.length >= 3 && polls.length <= 6, `${polls.length} polls:\n${polls.join('\n')}`);
      assert.ok(/[?&]wait=/.test(polls[1]!), 'it tried a long-poll first');
      // Once a long-poll came back at once with nothing new, it stopped asking for them.
      const firstPlain = polls.findIndex((p, i) => i > 0 && !p.includes('wait='));
      assert.ok(firstPlain > 0, `then polled without it:\n${polls.join('\n')}`);
      assert.ok(
        polls.slice(firstPlain).every((p) => !p.includes('wait=')),
        polls.join('\n'),
      );
    } finally {
      await proxy.close();
    }
  });

  test('longPoll: false polls without ?wait=', async () => {
    const proxy = await httpProxy(errand.url, () => {});
    try {
      const client = new Errand({ baseUrl: proxy.url, apiKey: KEYS.alpha, longPoll: false });
      const handle = await client.submit('slow', { steps: 2, step_ms: 300 }, { mode: 'async' });
      assert.equal((await handle.wait({ timeoutMs: 15_000 })).status, 'completed');
      const polls = statusPolls(proxy.seen, handle.id);
      assert.ok(polls.length >= 2);
      assert.ok(
        polls.every((p) => !p.includes('wait=')),
        polls.join('\n'),
      );
    } finally {
      await proxy.close();
    }
  });

  test('honours Retry-After between polls', async () => {
    const id = 'req_01kf3v6q4c8x0d2m5n7p9r1s3t';
    const resource = (status: string): string =>
      JSON.stringify({ request_id: id, status, operation: 'x', progress: null, result: status === 'completed' ? 1 : undefined });
    const fake = await fakeServer((i) => ({
      status: 200,
      headers: { 'content-type': 'application/json', etag: `"${i}"`, ...(i < 2 ? { 'retry-after': '1' } : {}) },
      body: resource(i < 2 ? 'processing' : 'completed'),
    }));
    try {
      const started = Date.now();
      const done = await new Errand({ baseUrl: fake.url, longPoll: false, pollInitialMs: 10, pollMaxMs: 20 })
        .request(id)
        .wait({ timeoutMs: 10_000 });
      assert.equal(done.status, 'completed');
      assert.equal(fake.requests.length, 3);
      assert.ok(Date.now() - started >= 1_900, `polled after ${Date.now() - started} ms, sooner than Retry-After`);
    } finally {
      await fake.close();
    }
  });

  test('a wait longer than timeoutMs rejects with ErrandTimeoutError; the request keeps running', async () => {
    const client = new Errand({ baseUrl: errand.url, apiKey: KEYS.alpha });
    const gate = errand.gatePath('timeout');
    const handle = await client.submit('gate', { gate }, { mode: 'async' });
    for (const longPoll of [true, false]) {
      const started = Date.now();
      const err = await handle.wait({ timeoutMs: 400, longPoll }).then(
        () => assert.fail('should time out'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ErrandTimeoutError, String(err));
      assert.equal(err.type, 'timeout');
      assert.equal(err.requestId, handle.id);
      assert.ok(err.lastStatus && ['pending', 'processing'].includes(err.lastStatus.status));
      // Well before a long-poll's 30 s would end: the client stops at its own limit (slack for a loaded machine).
      assert.ok(Date.now() - started < 10_000, 'gave up near the limit');
    }
    assert.equal((await handle.status()).status, 'processing');
    errand.open(gate);
    assert.equal((await handle.wait({ timeoutMs: 10_000 })).status, 'completed');
  });

  test('an aborted signal stops the wait with its reason', async () => {
    const client = new Errand({ baseUrl: errand.url, apiKey: KEYS.alpha });
    const gate = errand.gatePath('abort');
    const handle = await client.submit('gate', { gate }, { mode: 'async' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('user gave up')), 200);
    await assert.rejects(handle.wait({ signal: controller.signal }), /user gave up/);
    await handle.cancel();
  });
});
