/**
 * Every method of the client against a real `errand serve` process: submitting
 * (operations, chat, triggers, batches), handles (status, wait, result,
 * events, cancel, retry, deliveries), callbacks, idempotency, list and the
 * seed-compatible names.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import {
  Errand,
  RequestCancelledError,
  RequestFailedError,
  verifyWebhook,
  type RequestEventMessage,
  type StatusResource,
} from '../src/index.js';
import { KEYS, killAllServers, startErrand, WEBHOOK_SECRET, type TestErrand } from './helpers/errand.js';

let errand: TestErrand;
let client: Errand;

before(async () => {
  errand = await startErrand();
  client = new Errand({ baseUrl: errand.url, apiKey: KEYS.alpha });
});
after(async () => {
  await errand?.stop();
  await killAllServers();
});

describe('submit', () => {
  test('async: a handle with the 202 answer, then the result', async () => {
    const handle = await client.submit('echo', { hello: 'world' }, { mode: 'async' });
    assert.match(handle.id, /^req_/);
    assert.equal(handle.initial, undefined);
    assert.equal(handle.accepted?.request_id, handle.id);
    assert.equal(handle.location, `/v1/requests/${handle.id}`);
    assert.deepEqual(await handle.result({ timeoutMs: 10_000 }), { echo: { hello: 'world' } });
  });

  test('sync: the terminal status resource comes with the handle', async () => {
    const handle = await client.submit('echo', [1, 2, 3], { mode: 'sync' });
    assert.equal(handle.initial?.status, 'completed');
    assert.deepEqual(handle.initial?.result, { echo: [1, 2, 3] });
    const waited = await handle.wait();
    assert.equal(waited, handle.initial, 'a terminal sync answer needs no further call');
  });

  test('the same idempotency key gets the same request, replayed', async () => {
    const key = `client-test-${Date.now()}`;
    const first = await client.submit('echo', { n: 1 }, { mode: 'async', idempotencyKey: key });
    const second = await client.submit('echo', { n: 1 }, { mode: 'async', idempotencyKey: key });
    assert.equal(second.id, first.id);
    assert.equal(first.replayed, false);
    assert.equal(second.replayed, true);
    assert.equal(second.idempotencyKey, key);
  });

  test('each call without a key gets its own generated key', async () => {
    const a = await client.submit('echo', { n: 2 }, { mode: 'async' });
    const b = await client.submit('echo', { n: 2 }, { mode: 'async' });
    assert.notEqual(a.id, b.id);
    assert.match(a.idempotencyKey ?? '', /^[0-9a-f-]{36}$/);
    assert.notEqual(a.idempotencyKey, b.idempotencyKey);
  });

  test('metadata is refused by submit() (the operations endpoint has no place for it)', async () => {
    await assert.rejects(client.submit('echo', {}, { metadata: { a: 1 } }), { type: 'invalid_option' });
  });
});

describe('chat, chatAsync, chatStream, trigger', () => {
  test('chat() answers with the terminal resource; extra input fields reach the operation', async () => {
    const status = await client.chat('hello there', { input: { user_id: 'user_123' }, metadata: { from: 'test' } });
    assert.equal(status.status, 'completed');
    assert.deepEqual(status.result, { text: 'You said: hello there', user_id: 'user_123' });
    assert.deepEqual(status.metadata, { from: 'test' });
  });

  test('chat() waits when the server answers 202', async () => {
    const status = await client.chat('wait for me', { mode: 'async', timeoutMs: 10_000 });
    assert.equal(status.status, 'completed');
  });

  test('chatAsync() returns a handle at once', async () => {
    const handle = await client.chatAsync('Research AI trends');
    assert.equal(handle.accepted?.status, 'pending');
    const result = await handle.result<{ text: string }>({ timeoutMs: 10_000 });
    assert.equal(result.text, 'You said: Research AI trends');
  });

  test('chatStream() yields the request, the chunks and the outcome', async () => {
    const events = [];
    for await (const event of client.chatStream('one two three')) events.push(event);
    assert.equal(events[0]?.event, 'request');
    const text = events
      .filter((e) => e.event === 'output')
      .map((e) => e.data as string)
      .join('');
    assert.equal(text, 'one two three');
    const last = events.at(-1);
    assert.equal(last?.event, 'completed');
  });

  test('trigger() runs the trigger operation with the data, async, and records the trigger', async () => {
    const handle = await client.trigger('hook', { action: 'opened' }, { metadata: { source: 'test' } });
    assert.ok(handle.accepted, 'triggers answer 202');
    const done = await handle.wait({ timeoutMs: 10_000 });
    assert.deepEqual(done.result, { echo: { action: 'opened' } });
    assert.deepEqual(done.metadata, { source: 'test', trigger: 'hook' });
  });

  test('trigger() with mode sync waits', async () => {
    const handle = await client.trigger('hook', { x: 1 }, { mode: 'sync' });
    assert.equal(handle.initial?.status, 'completed');
  });
});

describe('handles', () => {
  test('status() and getRequestStatus() read the resource', async () => {
    const handle = await client.submit('echo', { a: 1 }, { mode: 'sync' });
    const status = await handle.status();
    assert.equal(status.request_id, handle.id);
    assert.deepEqual(await client.getRequestStatus(handle.id), status);
  });

  test('wait() long-polls and reports progress along the way', async () => {
    const handle = await client.submit('slow', { steps: 4, step_ms: 150 }, { mode: 'async' });
    const seen: StatusResource[] = [];
    const done = await handle.wait({ timeoutMs: 15_000, onProgress: (s) => seen.push(s) });
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { steps: 4, echo: null });
    assert.ok(seen.length >= 2, `saw ${seen.length} states`);
    assert.ok(seen.every((s) => s.status === 'pending' || s.status === 'processing'));
    assert.ok(
      seen.some((s) => s.current_step !== null),
      'a progress report was seen',
    );
  });

  test('result() of a failed request rejects with RequestFailedError carrying the error', async () => {
    const handle = await client.submit('fail', { reason: 'no luck' }, { mode: 'async' });
    const err = await handle.result({ timeoutMs: 10_000 }).then(
      () => assert.fail('should reject'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RequestFailedError);
    assert.equal(err.requestId, handle.id);
    assert.equal(err.error.type, 'handler_error');
    assert.match(err.error.message, /no luck/);
    assert.equal(err.resource.status, 'failed');
  });

  test('cancel() and cancelRequest() cancel and answer the cancelled resource; result() then rejects', async () => {
    const handle = await client.submit('slow', { steps: 100, step_ms: 200 }, { mode: 'async' });
    const cancelled = await handle.cancel();
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(cancelled.error?.type, 'cancelled');
    await assert.rejects(
      handle.result({ timeoutMs: 5_000 }),
      (e: unknown) => e instanceof RequestCancelledError && e.requestId === handle.id,
    );

    const other = await client.submit('slow', { steps: 100, step_ms: 200 }, { mode: 'async' });
    assert.equal((await client.cancelRequest(other.id)).status, 'cancelled');
    await assert.rejects(client.cancelRequest(other.id), { type: 'request_already_finished', status: 409 });
  });

  test('retry() re-runs a failed request as a new one, the same one every time', async () => {
    const handle = await client.submit('fail', {}, { mode: 'sync' });
    assert.equal(handle.initial?.status, 'failed');
    const rerun = await handle.retry();
    assert.notEqual(rerun.id, handle.id);
    assert.equal(rerun.retryOf, handle.id);
    assert.equal((await handle.retry()).id, rerun.id);
    const done = await rerun.wait({ timeoutMs: 10_000 });
    assert.equal(done.retry_of, handle.id);
    assert.equal(done.status, 'failed');
  });

  test('events() replays and follows to the terminal event, with ids from 1', async () => {
    const handle = await client.submit('slow', { steps: 3, step_ms: 50 }, { mode: 'async' });
    const events: RequestEventMessage[] = [];
    for await (const event of handle.events()) events.push(event);
    assert.deepEqual(
      events.map((e) => e.id),
      events.map((_, i) => i + 1),
    );
    assert.equal(events[0]?.event, 'status');
    assert.ok(events.some((e) => e.event === 'progress'));
    const last = events.at(-1)!;
    assert.equal(last.event, 'completed');
    if (last.event === 'completed') assert.deepEqual(last.data.result, { steps: 3, echo: null });

    // From a resume point: only the events after it; after the last one: nothing (204).
    const tail: RequestEventMessage[] = [];
    for await (const event of handle.events({ after: 2 })) tail.push(event);
    assert.deepEqual(
      tail.map((e) => e.id),
      events.slice(2).map((e) => e.id),
    );
    const none: RequestEventMessage[] = [];
    for await (const event of handle.events({ after: last.id })) none.push(event);
    assert.deepEqual(none, []);
  });

  test('events() stops when the consumer breaks, and on abort', async () => {
    const handle = await client.submit('slow', { steps: 50, step_ms: 100 }, { mode: 'async' });
    for await (const event of handle.events()) if (event.event === 'progress') break;
    const controller = new AbortController();
    const events = handle.events({ signal: controller.signal });
    const first = await events.next();
    assert.equal(first.done, false);
    controller.abort(new Error('stop here'));
    await assert.rejects(events.next(), /stop here/);
    await handle.cancel();
  });

  test('callbacks: onProgress and onComplete; onError for a failure', async () => {
    const progress: StatusResource[] = [];
    let completed: StatusResource | undefined;
    const handle = await client.submit(
      'slow',
      { steps: 3, step_ms: 100 },
      {
        mode: 'async',
        onProgress: (s) => progress.push(s),
        onComplete: (s) => (completed = s),
        onError: (e) => assert.fail(String(e)),
        timeoutMs: 15_000,
      },
    );
    await handle.watching;
    assert.equal(completed?.status, 'completed');
    assert.ok(progress.length >= 1);

    let failure: unknown;
    const bad = await client.submit('fail', {}, { mode: 'async', onError: (e) => (failure = e), timeoutMs: 15_000 });
    await bad.watching;
    assert.ok(failure instanceof RequestFailedError);
  });

  test('deliveries(): the signed webhook delivery, verifiable with verifyWebhook', async () => {
    const received: { headers: Record<string, string>; body: string }[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        received.push({ headers: req.headers as Record<string, string>, body });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as { port: number }).port;
    try {
      const handle = await client.submit('echo', { hook: true }, { mode: 'sync', webhookUrl: `http://127.0.0.1:${port}/hook` });
      assert.equal(handle.initial?.status, 'completed');
      let deliveries = await handle.deliveries();
      for (let i = 0; i < 200 && deliveries[0]?.status !== 'delivered'; i++) {
        await new Promise((r) => setTimeout(r, 25)); // bounded poll: 200 x 25 ms
        deliveries = await handle.deliveries();
      }
      assert.equal(deliveries.length, 1);
      assert.equal(deliveries[0]?.status, 'delivered');
      assert.equal(received.length, 1);
      const payload = (await verifyWebhook(received[0]!.body, received[0]!.headers, WEBHOOK_SECRET)) as { request_id: string };
      assert.equal(payload.request_id, handle.id);
      // The standardwebhooks package agrees on the same delivery.
      assert.deepEqual(new Webhook(WEBHOOK_SECRET).verify(received[0]!.body, received[0]!.headers), payload);
    } finally {
      receiver.close();
    }
  });
});

describe('batch and list', () => {
  test('batch(): a handle per item; wait() until every item is terminal', async () => {
    const batch = await client.batch('echo', [{ i: 1 }, { i: 2 }, { i: 3 }], { concurrency: 2 });
    assert.match(batch.id, /^bat_/);
    assert.equal(batch.requests.length, 3);
    const done = await batch.wait({ timeoutMs: 20_000 });
    assert.equal(done.status, 'completed');
    assert.equal(done.succeeded, 3);
    assert.deepEqual(await batch.requests[1]!.result(), { echo: { i: 2 } });
    assert.equal((await client.getBatch(batch.id)).requestIds.length, 3);
  });

  test('list() follows cursors across pages, newest first, filtered', async () => {
    const beta = new Errand({ baseUrl: errand.url, apiKey: KEYS.beta });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await beta.submit('echo', { i }, { mode: 'sync' })).id);
    const listed: string[] = [];
    for await (const status of beta.list({ limit: 2, operation: 'echo', status: ['completed'] })) listed.push(status.request_id);
    assert.deepEqual(listed, [...ids].reverse(), 'tenant beta sees its five requests, newest first, over three pages');
    const none: string[] = [];
    for await (const status of beta.list({ status: 'failed' })) none.push(status.request_id);
    assert.deepEqual(none, []);
  });
});
