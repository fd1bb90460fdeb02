/**
 * The built `errand` binary against a real server process, starting requests:
 * submit (waiting, --async, --async --wait, --input JSON / @file / stdin,
 * --idempotency-key), chat and trigger, in human form and with --json; exit 1
 * for a failed request, 6 for a call the server refuses.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { http, killAllServers } from '../helpers/process.js';
import { jsonLines, runCli, startCliServer, type CliServer } from './cli.js';

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

describe('submit', () => {
  test('waits by default and prints the result; --json the status resource on one line; --input @file, - (stdin), or none ({})', async () => {
    const file = join(s.dir, 'input.json');
    writeFileSync(file, '{"from":"file"}');
    const [human, json, fromFile, fromStdin, none] = await Promise.all([
      errand(['submit', 'echo', '--input', '{"greeting":"hello"}']),
      errand(['submit', 'echo', '--input', '{"n":1}', '--json']),
      errand(['submit', 'echo', '--input', `@${file}`, '--json']),
      errand(['submit', 'echo', '--input', '-', '--json'], { stdin: '{"from":"stdin"}' }),
      errand(['submit', 'echo', '--json']),
    ]);
    assert.equal(human.code, 0, human.stderr);
    assert.deepEqual(JSON.parse(human.stdout), { greeting: 'hello' });
    assert.match(human.stdout, /\n {2}"greeting": "hello"\n/, 'indented for people');

    assert.equal(json.code, 0, json.stderr);
    const [doc, ...rest] = jsonLines(json.stdout);
    assert.equal(rest.length, 0, 'one document');
    assert.equal(doc.status, 'completed');
    assert.deepEqual(doc.result, { n: 1 });
    assert.match(doc.request_id as string, /^req_/);

    assert.deepEqual(jsonLines(fromFile.stdout)[0].result, { from: 'file' });
    assert.deepEqual(jsonLines(fromStdin.stdout)[0].result, { from: 'stdin' });
    assert.deepEqual(jsonLines(none.stdout)[0].result, {});
  });

  test('--async answers at once with the id; --async --wait waits for the end; --idempotency-key gives the same request', async () => {
    const keyed = ['submit', 'echo', '--async', '--json', '--idempotency-key', 'cli-key-1', '--input', '{"k":1}'];
    const [human, json, waited, first] = await Promise.all([
      errand(['submit', 'gated', '--async']),
      errand(['submit', 'echo', '--async', '--json', '--input', '{"a":1}']),
      errand(['submit', 'steps', '--async', '--wait', '--input', '{"steps":2,"step_ms":5,"echo":"x"}', '--json']),
      errand(keyed),
    ]);
    assert.equal(human.code, 0, human.stderr);
    const id = /^request\s+(req_\w+)$/m.exec(human.stdout)?.[1];
    assert.ok(id, human.stdout);
    assert.match(human.stdout, /^status\s+pending$/m);
    assert.match(human.stdout, new RegExp(`^follow\\s+errand watch ${id}$`, 'm'));
    assert.notEqual(await statusOf(id), 'completed', 'it did not wait for the gated request');
    s.openGate(id);

    const accepted = jsonLines(json.stdout)[0];
    assert.equal(accepted.status, 'pending');
    assert.equal(accepted.location, `/v1/requests/${accepted.request_id}`);

    assert.equal(waited.code, 0, waited.stderr);
    const done = jsonLines(waited.stdout)[0];
    assert.equal(done.status, 'completed');
    assert.equal(done.result.echo, 'x');

    const second = await errand(keyed);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(jsonLines(second.stdout)[0].request_id, jsonLines(first.stdout)[0].request_id);
  });

  test('failed exits 1 (error on stderr; --json: the failed resource on stdout), --timeout 4, an unknown operation 6', async () => {
    const [human, json, unknown, timedOut] = await Promise.all([
      errand(['submit', 'fail']),
      errand(['submit', 'fail', '--json']),
      errand(['submit', 'nope']),
      errand(['submit', 'gated', '--timeout', '0.5']),
    ]);
    assert.equal(timedOut.code, 4, timedOut.stderr);
    const left = /Request (req_\w+) was not finished after 500 ms .*it keeps running/.exec(timedOut.stderr)?.[1];
    assert.ok(left, timedOut.stderr);
    assert.equal(await statusOf(left), 'processing');
    s.openGate(left);

    assert.equal(human.code, 1, human.stderr);
    assert.equal(human.stdout, '');
    assert.match(human.stderr, /^errand: request req_\w+ failed: tool_error: boom\n$/);
    assert.equal(json.code, 1);
    const doc = jsonLines(json.stdout)[0];
    assert.equal(doc.status, 'failed');
    assert.equal(doc.error.type, 'tool_error');
    assert.equal(unknown.code, 6);
    assert.match(unknown.stderr, /^errand: 404 operation_not_found: .*nope/);
    assert.equal(unknown.stderr.trimEnd().split('\n').length, 1);
  });
});

describe('chat and trigger', () => {
  test('chat prints the answer’s text (--json: the status resource); --async the id', async () => {
    const [human, json, later] = await Promise.all([
      errand(['chat', 'hello there']),
      errand(['chat', 'hello again', '--json']),
      errand(['chat', 'later', '--async', '--json']),
    ]);
    assert.equal(human.code, 0, human.stderr);
    assert.equal(human.stdout, 'You said: hello there\n');
    assert.equal(json.code, 0, json.stderr);
    const doc = jsonLines(json.stdout)[0];
    assert.equal(doc.status, 'completed');
    assert.deepEqual(doc.result, { text: 'You said: hello again' });
    assert.equal(later.code, 0, later.stderr);
    assert.match(jsonLines(later.stdout)[0].request_id as string, /^req_/);
  });

  test('trigger answers with the accepted request; --wait prints the result; an unknown trigger exits 6', async () => {
    const [run, waited, unknown] = await Promise.all([
      errand(['trigger', 'hook', '--data', '{"event":"push"}', '--json']),
      errand(['trigger', 'hook', '--data', '{"event":"pull"}', '--wait']),
      errand(['trigger', 'nope', '--data', '{}']),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const accepted = jsonLines(run.stdout)[0];
    assert.match(accepted.request_id as string, /^req_/);
    assert.equal(accepted.status, 'pending');
    assert.equal(waited.code, 0, waited.stderr);
    assert.deepEqual(JSON.parse(waited.stdout), { event: 'pull' });
    assert.equal(unknown.code, 6);
    assert.match(unknown.stderr, /404 trigger_not_found/);
  });
});
