/**
 * Event streams survive dropped connections: a TCP proxy between the client
 * and the real server is severed mid-stream, and the client resumes with
 * `Last-Event-ID`, losing and repeating nothing. Also `tail()` over
 * `GET /v1/events`, and a stream that goes silent (idle timeout).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Errand, ErrandNetworkError, type ChatStreamEvent, type RequestEventMessage, type TailEvent } from '../src/index.js';
import { KEYS, killAllServers, startErrand, type TestErrand } from './helpers/errand.js';
import { fakeServer, tcpProxy, type TcpProxy } from './helpers/proxy.js';

let errand: TestErrand;
let proxy: TcpProxy;
let client: Errand;

before(async () => {
  errand = await startErrand();
  proxy = await tcpProxy(errand.url);
  client = new Errand({ baseUrl: proxy.url, apiKey: KEYS.alpha });
});
after(async () => {
  await proxy?.close();
  await errand?.stop();
  await killAllServers();
});

describe('resume after a dropped stream', () => {
  test('events(): severed after two chunks, resumed with Last-Event-ID, nothing lost or repeated', async () => {
    const gate = errand.gatePath('events-resume');
    const handle = await client.submit('gate', { gate, before: ['a', 'b'], after: ['c', 'd'] }, { mode: 'async' });
    const events: RequestEventMessage[] = [];
    const connectionsBefore = proxy.connections;
    for await (const event of handle.events({ signal: AbortSignal.timeout(20_000) })) {
      events.push(event);
      if (event.event === 'output' && event.data === 'b') {
        proxy.sever(); // the client's connection dies mid-stream
        errand.open(gate); // and the request moves on meanwhile
      }
    }
    const outputs = events.filter((e) => e.event === 'output').map((e) => e.data);
    assert.deepEqual(outputs, ['a', 'b', 'c', 'd']);
    assert.deepEqual(
      events.map((e) => e.id),
      events.map((_, i) => i + 1),
      'every event once, in order',
    );
    assert.equal(events.at(-1)?.event, 'completed');
    assert.ok(proxy.connections - connectionsBefore >= 2, 'the client reconnected');
  });

  test('chatStream(): severed mid-answer, resumed on the events endpoint', async () => {
    // The chat fixture holds after the first word until its gate opens: sever there, then open it.
    const gate = errand.gatePath('chat-resume');
    const events: ChatStreamEvent[] = [];
    const connectionsBefore = proxy.connections;
    for await (const event of client.chatStream('alpha beta gamma delta', { input: { gate }, signal: AbortSignal.timeout(20_000) })) {
      events.push(event);
      if (event.event === 'output' && event.data === 'alpha') {
        proxy.sever();
        errand.open(gate);
      }
    }
    assert.ok(proxy.connections - connectionsBefore >= 2, 'the client reconnected');
    assert.equal(events[0]?.event, 'request');
    const text = events
      .filter((e) => e.event === 'output')
      .map((e) => e.data as string)
      .join('');
    assert.equal(text, 'alpha beta gamma delta');
    assert.equal(events.at(-1)?.event, 'completed');
    assert.ok(!events.some((e) => e.event === 'progress' || (e.event === 'status' && e.data.status === 'processing')));
  });

  test('events(): gives up after maxReconnects with network_error when the server stays away', async () => {
    const down = await fakeServer(() => 'hang-up');
    try {
      const c = new Errand({ baseUrl: down.url, maxReconnects: 2 });
      const iterate = async (): Promise<void> => {
        for await (const _ of c.request('req_01kf3v6q4c8x0d2m5n7p9r1s3t').events()) assert.fail('no event expected');
      };
      await assert.rejects(iterate(), (e: unknown) => e instanceof ErrandNetworkError && e.type === 'network_error');
      assert.equal(down.requests.length, 3, 'the first connection and two reconnects');
    } finally {
      await down.close();
    }
  });

  test('a stream that goes silent past idleTimeoutMs counts as dropped and is resumed', async () => {
    // The server sends keep-alives every second; 300 ms without a byte is "dead". Each reconnect resumes.
    const gate = errand.gatePath('idle');
    const c = new Errand({ baseUrl: proxy.url, apiKey: KEYS.alpha, idleTimeoutMs: 300, maxReconnects: 50 });
    const connectionsBefore = proxy.connections;
    const handle = await c.submit('gate', { gate, before: ['x'], after: ['y'] }, { mode: 'async' });
    const events: RequestEventMessage[] = [];
    let opened = false;
    for await (const event of handle.events({ signal: AbortSignal.timeout(20_000) })) {
      events.push(event);
      if (event.event === 'output' && !opened) {
        opened = true;
        setTimeout(() => errand.open(gate), 1_000); // opens after a few idle reconnects
      }
    }
    assert.deepEqual(
      events.filter((e) => e.event === 'output').map((e) => e.data),
      ['x', 'y'],
    );
    assert.ok(proxy.connections - connectionsBefore >= 3, `reconnected while idle (${proxy.connections - connectionsBefore} connections)`);
    assert.deepEqual(
      events.map((e) => e.id),
      events.map((_, i) => i + 1),
    );
  });
});

describe('tail()', () => {
  test('live events of my requests, filtered by operation; reconnects after a drop', async () => {
    const controller = new AbortController();
    const seen: TailEvent[] = [];
    const connectionsBefore = proxy.connections;
    // Enough seen: events before and after the drop, a progress event among them.
    const done = (): boolean => seen.length >= 3 && proxy.connections > connectionsBefore + 1 && seen.some((e) => e.type === 'progress');
    const tailing = (async () => {
      for await (const event of client.tail({ operation: 'slow', signal: controller.signal })) {
        seen.push(event);
        if (seen.length === 1) proxy.sever();
        if (done()) break;
      }
    })();
    // The tail is live only: submit after it is connected, and again after the drop.
    const deadline = Date.now() + 15_000;
    const submitted: string[] = [];
    for (let i = 0; i < 100 && Date.now() < deadline && !done(); i++) {
      submitted.push((await client.submit('slow', { steps: 2, step_ms: 20 }, { mode: 'sync', timeoutMs: 10_000 })).id);
      await new Errand({ baseUrl: errand.url, apiKey: KEYS.alpha }).submit('echo', {}, { mode: 'sync', timeoutMs: 10_000 }); // filtered out
      await Promise.race([tailing, new Promise((r) => setTimeout(r, 100))]);
    }
    controller.abort();
    await tailing.catch(() => {});
    assert.ok(seen.length >= 3, `saw ${seen.length} events`);
    assert.ok(proxy.connections > connectionsBefore + 1, 'the tail reconnected after the drop');
    assert.ok(
      seen.every((e) => e.operation === 'slow' && e.tenant === 'alpha' && submitted.includes(e.request_id)),
      'only my slow requests',
    );
    assert.ok(
      seen.some((e) => e.type === 'progress'),
      'progress events too',
    );
  });

  test('another tenant sees none of them', async () => {
    const controller = new AbortController();
    const beta = new Errand({ baseUrl: errand.url, apiKey: KEYS.beta });
    const seen: TailEvent[] = [];
    const tailing = (async () => {
      for await (const event of beta.tail({ signal: controller.signal })) seen.push(event);
    })();
    const mine = await client.submit('slow', { steps: 2, step_ms: 20 }, { mode: 'sync', timeoutMs: 10_000 });
    const theirs = await beta.submit('echo', { beta: true }, { mode: 'sync', timeoutMs: 10_000 });
    const deadline = Date.now() + 10_000;
    for (let i = 0; i < 200 && Date.now() < deadline && !seen.some((e) => e.request_id === theirs.id && e.status === 'processing'); i++) {
      await new Promise((r) => setTimeout(r, 25)); // bounded poll for the tail to show beta's own request
    }
    controller.abort();
    await tailing.catch(() => {});
    assert.ok(
      seen.some((e) => e.request_id === theirs.id),
      'beta sees its own request',
    );
    assert.ok(!seen.some((e) => e.request_id === mine.id), 'but not the ones of alpha');
  });
});
