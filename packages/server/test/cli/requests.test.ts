/**
 * The built `errand` binary against a real server process, one request by id:
 * status, result, cancel and retry, in human form and with --json; exit 1
 * failed, 3 cancelled, 4 timed out, 6 refused by the server (404, 409).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { http, killAllServers, waitFor } from '../helpers/process.js';
import { jsonLines, runCli, startCliServer, type CliServer } from './cli.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

let s: CliServer;
/** `errand ...args` against the test server (ERRAND_URL, as a user would set it). */
const errand = (args: string[], options: { stdin?: string; env?: Record<string, string | undefined> } = {}) =>
  runCli(args, { ...options, env: { ERRAND_URL: s.url, ...options.env } });

before(async () => {
  s = await startCliServer();
});
after(async () => {
  await s?.cleanup();
  await killAllServers();
});

async function statusOf(id: string): Promise<string> {
  const res = await http('GET', `${s.url}/v1/requests/${id}`);
  return res.body.status as string;
}

async function waitStatus(id: string, status: string): Promise<void> {
  await waitFor(async () => (await statusOf(id)) === status, { timeoutMs: SAFETY_NET_MS, what: `${id} to be ${status}` });
}

describe('one request by id', () => {
  test('status prints aligned fields (exit 0 whatever the state); --json the resource; an unknown id exits 6', async () => {
    const id = await s.submitAsync('gated', { x: 1 });
    await waitFor(async () => (await http('GET', `${s.url}/v1/requests/${id}`)).body.progress === 25, {
      what: 'the gated request to report',
    });
    const [human, json, missing] = await Promise.all([
      errand(['status', id]),
      errand(['status', id, '--json']),
      errand(['status', 'req_01kf3v6q4c8x0d2m5n7p9r1s3t']),
    ]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^request    ${id}$`, 'm'));
    assert.match(human.stdout, /^operation {2}gated$/m);
    assert.match(human.stdout, /^status {5}processing$/m);
    assert.match(human.stdout, /^progress {3}25% {2}0\/3 prepare {2}waiting for the gate$/m);
    const doc = jsonLines(json.stdout)[0];
    assert.equal(doc.request_id, id);
    assert.equal(doc.progress, 25);
    s.openGate(id);
    assert.equal(missing.code, 6);
    assert.match(missing.stderr, /^errand: 404 request_not_found/);
  });

  test('result waits and prints the result; --timeout exits 4 and leaves the request running', async () => {
    const id = await s.submitAsync('gated', {});
    const timedOut = await errand(['result', id, '--timeout', '0.3']);
    assert.equal(timedOut.code, 4, timedOut.stderr);
    assert.match(timedOut.stderr, /keeps running/);
    assert.equal(await statusOf(id), 'processing');
    s.openGate(id);
    const run = await errand(['result', id]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { done: true, input: {} });
  });

  test('cancel, then result exits 3; cancelling again exits 6 (409); retry runs it again as a new request', async () => {
    const id = await s.submitAsync('gated', { again: true });
    await waitStatus(id, 'processing');
    const cancel = await errand(['cancel', id]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(cancel.stdout, `cancelled ${id}\n`);
    assert.equal(await statusOf(id), 'cancelled');

    const [result, json, again, retry] = await Promise.all([
      errand(['result', id]),
      errand(['result', id, '--json']),
      errand(['cancel', id]),
      errand(['retry', id, '--json']),
    ]);
    assert.equal(result.code, 3);
    assert.match(result.stderr, new RegExp(`^errand: request ${id} was cancelled`));
    assert.equal(json.code, 3);
    assert.equal(jsonLines(json.stdout)[0].status, 'cancelled');
    assert.equal(again.code, 6);
    assert.match(again.stderr, /409 request_already_finished/);
    assert.equal(retry.code, 0, retry.stderr);
    const rerun = jsonLines(retry.stdout)[0];
    assert.notEqual(rerun.request_id, id);
    s.openGate(rerun.request_id as string);
    const rerunResult = await errand(['result', rerun.request_id as string, '--json']);
    assert.equal(rerunResult.code, 0, rerunResult.stderr);
    assert.deepEqual(jsonLines(rerunResult.stdout)[0].result, { done: true, input: { again: true } });
  });

  test('retry --wait of a request that fails again exits 1; retrying a completed one exits 6', async () => {
    const [failed, done] = await Promise.all([errand(['submit', 'fail', '--json']), errand(['submit', 'echo', '--json'])]);
    const id = jsonLines(failed.stdout)[0].request_id as string;
    const [retry, notRetryable] = await Promise.all([
      errand(['retry', id, '--wait']),
      errand(['retry', jsonLines(done.stdout)[0].request_id as string]),
    ]);
    assert.equal(retry.code, 1, retry.stderr);
    assert.match(retry.stderr, /failed: tool_error: boom/);
    assert.equal(notRetryable.code, 6);
    assert.match(notRetryable.stderr, /409 request_not_retryable/);
  });
});
