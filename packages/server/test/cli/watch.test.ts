/**
 * `errand watch` (built binary, real server). Under a pseudo-terminal
 * (util-linux `script`) it draws a cli-progress bar that moves with the
 * request's progress, reaches 100 % and is followed by the result; through a
 * pipe it prints one line per change on stderr and the result alone on
 * stdout; with --json one event per line and then the status resource.
 * Failed, cancelled, timed-out and unknown requests exit 1, 3, 4 and 6. Behind
 * a proxy that refuses event streams it falls back to long-polling the status.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { text } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import { CLI_PATH, http, killAllServers, waitFor } from '../helpers/process.js';
import { jsonLines, runCli, startCli, startCliServer, startInTerminal, type CliProcess, type CliServer } from './cli.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

let s: CliServer;
const env = () => ({ ERRAND_URL: s.url });

before(async () => {
  s = await startCliServer();
});
after(async () => {
  await s?.cleanup();
  await killAllServers();
});

/** Removes terminal control sequences, and keeps what follows the last carriage return of each line (what is left on screen). */
function screen(raw: string): string {
  // eslint-disable-next-line no-control-regex
  const plain = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');
  return plain
    .split('\n')
    .map((line) => line.replace(/\r$/, '').split('\r').at(-1) ?? '')
    .join('\n');
}

/** A gated request that has reported its first progress (25 %, step "prepare"). */
async function gatedRunning(input: Record<string, unknown> = {}): Promise<string> {
  const id = await s.submitAsync('gated', input);
  await waitFor(async () => (await http('GET', `${s.url}/v1/requests/${id}`)).body.progress === 25, { what: `${id} to report 25%` });
  return id;
}

function watchPiped(args: string[]): CliProcess {
  return startCli([process.execPath, CLI_PATH, 'watch', ...args], { env: env() });
}

describe('on a terminal', () => {
  test('a progress bar with percent, step and message that reaches 100 %, then the result', async () => {
    const id = await gatedRunning({ topic: 'bars' });
    const watch = startInTerminal(['watch', id], { env: env() });
    // The bar is drawn from the live state: 25 %, step "0/3 prepare", the message.
    await watch.waitOutput((out) => /25% \| 0\/3 prepare \| waiting for the gate/.test(out), SAFETY_NET_MS, 'the bar at 25%');
    s.openGate(id);
    const run = await watch.exited();
    assert.equal(run.code, 0, run.stdout);
    assert.match(run.stdout, /\u2588{30} 100% \| /, 'a full bar at 100%');
    assert.ok(run.stdout.includes('\x1b[?25l'), 'the cursor was hidden while drawing');
    const shown = screen(run.stdout);
    const bar = shown.split('\n').find((line) => line.includes('100%'));
    assert.ok(bar?.startsWith(id), `the bar is labelled with the id: ${bar}`);
    // After the bar: the result, indented JSON.
    const after100 = shown.slice(shown.indexOf('100%'));
    assert.match(after100, /"done": true/);
    assert.match(after100, /"topic": "bars"/);
  });

  test('a request cancelled while watched: the bar stops short of 100 % and the exit status is 3', async () => {
    const id = await gatedRunning();
    const watch = startInTerminal(['watch', id], { env: env() });
    await watch.waitOutput((out) => /25% \|/.test(out), SAFETY_NET_MS, 'the bar at 25%');
    const res = await http('DELETE', `${s.url}/v1/requests/${id}`);
    assert.equal(res.status, 200, res.text);
    const run = await watch.exited();
    assert.equal(run.code, 3, run.stdout);
    assert.doesNotMatch(run.stdout, /100%/);
    assert.match(run.stdout, new RegExp(`request ${id} was cancelled`));
  });

  test('an already finished request shows the full bar and the result at once', async () => {
    const done = jsonLines((await runCli(['submit', 'echo', '--input', '{"at":"once"}', '--json'], { env: env() })).stdout)[0];
    const run = await startInTerminal(['watch', done.request_id as string], { env: env() }).exited();
    assert.equal(run.code, 0, run.stdout);
    assert.match(run.stdout, /100% \|/);
    assert.match(run.stdout, /"at": "once"/);
  });
});

describe('through a pipe', () => {
  test('one line per change of progress on stderr; stdout is the result alone', async () => {
    const id = await gatedRunning();
    const watch = watchPiped([id]);
    await watch.waitOutput((_out, err) => err.includes('25%  0/3 prepare  waiting for the gate\n'), SAFETY_NET_MS, 'the 25% line');
    s.openGate(id);
    const run = await watch.exited();
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { done: true, input: {} });
    assert.ok(!run.stderr.includes('\r') && !run.stderr.includes('\x1b'), 'no terminal control sequences in a pipe');
    const lines = run.stderr.split('\n');
    const at = (text: string) => lines.findIndex((line) => line.startsWith(text));
    assert.ok(at('25%') < at('60%') && at('60%') < at('90%') && at('90%') < at('100%'), run.stderr);
    assert.match(lines[at('90%')]!, /^90% {2}2\/3 finish {2}almost there$/);
  });

  test('--json: each event as a line, then the final status resource', async () => {
    const id = await gatedRunning();
    const watch = watchPiped([id, '--json']);
    await watch.waitOutput((out) => out.includes('"event":"progress"'), SAFETY_NET_MS, 'the first progress event');
    s.openGate(id);
    const run = await watch.exited();
    assert.equal(run.code, 0, run.stderr);
    const docs = jsonLines(run.stdout);
    const events = docs.slice(0, -1);
    assert.ok(events.every((d) => d.request_id === id && typeof d.id === 'number' && typeof d.event === 'string'));
    const ids = events.map((d) => d.id as number);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      'in log order',
    );
    assert.deepEqual(
      events.filter((d) => d.event === 'progress').map((d) => d.data.percent),
      [25, 60, 90],
    );
    assert.equal(events.at(-1).event, 'completed');
    const final = docs.at(-1);
    assert.equal(final.status, 'completed');
    assert.deepEqual(final.result, { done: true, input: {} });
  });

  test('failed exits 1, --timeout exits 4 (the request keeps running), an unknown id exits 6', async () => {
    const [failedRun, id] = await Promise.all([runCli(['submit', 'fail', '--json'], { env: env() }), gatedRunning()]);
    const failed = jsonLines(failedRun.stdout)[0].request_id as string;
    const [fail, timedOut, unknown] = await Promise.all([
      watchPiped([failed]).exited(),
      watchPiped([id, '--timeout', '0.5']).exited(),
      watchPiped(['req_01kf3v6q4c8x0d2m5n7p9r1s3t']).exited(),
    ]);
    assert.equal(fail.code, 1, fail.stderr);
    assert.match(fail.stderr, /failed: tool_error: boom\n$/);

    assert.equal(timedOut.code, 4, timedOut.stderr);
    // The last line (or the only one: on a loaded machine the timeout can come before any progress line).
    assert.match(timedOut.stderr, /(?:^|\n)errand: [^\n]*keeps running[^\n]*\n$/, 'the last line says so');
    assert.doesNotMatch(timedOut.stderr, /\n\s+at /, 'no stack trace');
    assert.equal((await http('GET', `${s.url}/v1/requests/${id}`)).body.status, 'processing');
    s.openGate(id);

    assert.equal(unknown.code, 6);
    assert.match(unknown.stderr, /^errand: 404 request_not_found/);
  });
});

/**
 * A reverse proxy in front of the test server that answers event streams with
 * a plain page, as a buffering proxy might: everything else is forwarded.
 */
async function proxyWithoutStreams(target: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    void (async () => {
      if ((req.url ?? '').includes('/events')) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('event streams are not allowed here');
        return;
      }
      const body = await text(req);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string' && name !== 'host') headers[name] = value;
      const upstream = await fetch(`${target}${req.url ?? '/'}`, { method: req.method, headers, body: body === '' ? undefined : body });
      const answer = Buffer.from(await upstream.arrayBuffer());
      const out: Record<string, string> = {};
      upstream.headers.forEach((value, name) => {
        if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(name)) out[name] = value;
      });
      res.writeHead(upstream.status, out);
      res.end(answer);
    })().catch(() => res.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  return { url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, server };
}

describe('without an event stream', () => {
  test('watch falls back to long-polling the status: progress still shows, and the result', async () => {
    const proxy = await proxyWithoutStreams(s.url);
    try {
      const id = await gatedRunning();
      const watch = startCli([process.execPath, CLI_PATH, 'watch', id], { env: { ERRAND_URL: proxy.url } });
      await watch.waitOutput((_out, err) => err.includes('25%  0/3 prepare  waiting for the gate\n'), SAFETY_NET_MS, 'the 25% line');
      s.openGate(id);
      const run = await watch.exited();
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(JSON.parse(run.stdout), { done: true, input: {} });
      assert.match(run.stderr, /^100%/m);
    } finally {
      proxy.server.closeAllConnections();
      proxy.server.close();
    }
  });
});
