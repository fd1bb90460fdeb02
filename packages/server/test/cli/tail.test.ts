/**
 * `errand tail` (built binary, real server): the live events of every request
 * the key may see, one line each (or one JSON document each with --json),
 * filtered by --operation, stopping after --count events or at Ctrl-C (exit
 * 130); an undeclared operation is the server's 400 (exit 6).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLI_PATH, http, killAllServers } from '../helpers/process.js';
import { jsonLines, runCli, startCli, startCliServer, type CliServer } from './cli.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

let s: CliServer;
const env = () => ({ ERRAND_URL: s.url });
const tail = (args: string[]) => startCli([process.execPath, CLI_PATH, 'tail', ...args], { env: env() });

before(async () => {
  s = await startCliServer();
});
after(async () => {
  await s?.cleanup();
  await killAllServers();
});

/** The `ticker` reports progress every 25 ms until cancelled: a tail that connects at any time sees some. */
async function withTicker<T>(fn: (id: string) => Promise<T>): Promise<T> {
  const id = await s.submitAsync('ticker', {});
  try {
    return await fn(id);
  } finally {
    await http('DELETE', `${s.url}/v1/requests/${id}`);
  }
}

describe('tail', () => {
  test('--json --count N: N events of my requests, one document per line, then exit 0', async () => {
    await withTicker(async (id) => {
      const run = await tail(['--json', '--count', '3']).exited();
      assert.equal(run.code, 0, run.stderr);
      const docs = jsonLines(run.stdout);
      assert.equal(docs.length, 3);
      for (const doc of docs) {
        assert.equal(doc.request_id, id);
        assert.equal(doc.operation, 'ticker');
        assert.equal(doc.type, 'progress');
        assert.equal(doc.status, 'processing');
        assert.match(doc.data.message as string, /^tick \d+$/);
      }
      const seqs = docs.map((d) => d.seq as number);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
    });
  });

  test('human lines: time, request, operation, status, event and a summary; --operation filters', async () => {
    await withTicker(async (id) => {
      const echoes = tail(['--operation', 'echo', '--count', '1']);
      const ticks = tail(['--operation', 'ticker', '--count', '2']);
      const tickRun = await ticks.exited();
      assert.equal(tickRun.code, 0, tickRun.stderr);
      const lines = tickRun.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 2);
      for (const line of lines) {
        assert.match(line, new RegExp(`^\\d\\d:\\d\\d:\\d\\d {2}${id} {2}ticker {2}processing {2}progress {2}\\d+% {2}tick \\d+$`));
      }
      // The echo tail saw none of the ticks; an echo request ends it.
      assert.equal(echoes.stdout, '');
      const submitted = await runCli(['submit', 'echo', '--input', '{"for":"tail"}', '--json'], { env: env() });
      const echoId = jsonLines(submitted.stdout)[0].request_id as string;
      const echoRun = await echoes.exited();
      assert.equal(echoRun.code, 0, echoRun.stderr);
      assert.match(echoRun.stdout, new RegExp(`${echoId} {2}echo `));
    });
  });

  test('Ctrl-C stops it with exit 130; an undeclared operation exits 6 with the server’s 400', async () => {
    await withTicker(async () => {
      const running = tail([]);
      await running.waitOutput((out) => out.includes('ticker'), SAFETY_NET_MS, 'a first line');
      running.kill('SIGINT');
      const run = await running.exited(10_000);
      assert.equal(run.code, 130, run.stderr);
    });
    const bad = await runCli(['tail', '--operation', 'nope'], { env: env() });
    assert.equal(bad.code, 6, bad.stderr);
    assert.match(bad.stderr, /^errand: 400 invalid_parameter: operation: no operation named "nope"/);
  });
});
