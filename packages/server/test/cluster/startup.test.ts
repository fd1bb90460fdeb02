/**
 * Start-up against a PostgreSQL database that cannot be reached: the real
 * `errand serve` says what is wrong, retries with backoff for
 * `store.startup_timeout`, then exits non-zero (a supervisor restarts it).
 * Nothing listens on 127.0.0.1 port 1, so every attempt is refused at once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { CLI_PATH, makeTempDir, waitFor, writeConfig } from '../helpers/process.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

const tmp = makeTempDir('errand-startup-');
after(() => tmp.cleanup());

test('an unreachable database at start-up: logged retries for store.startup_timeout, then exit 2 with the reason', async () => {
  const config = writeConfig(tmp.dir, {
    store: { url: 'postgres://errand:s3cret@127.0.0.1:1/errand', startup_timeout: '1.5s' },
    logging: { level: 'warn' },
  });
  const child = spawn(process.execPath, [CLI_PATH, 'serve', '--config', config, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  // From the first retry message, not from the spawn: a node starting on a loaded machine may take many seconds to get there.
  let firstRetryAt: number | undefined;
  const collect = (c: string) => {
    out += c;
    if (firstRetryAt === undefined && out.includes('cannot reach the database')) firstRetryAt = Date.now();
  };
  child.stdout.setEncoding('utf8').on('data', collect);
  child.stderr.setEncoding('utf8').on('data', collect);
  const exit = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const elapsed = Date.now() - (firstRetryAt ?? Date.now());
  await waitFor(() => out.includes('errand:'), { what: 'the final message', timeoutMs: SAFETY_NET_MS });

  assert.equal(exit, 2, out);
  const retries = out.split('\n').filter((line) => line.includes('cannot reach the database at postgres://errand:***@127.0.0.1:1/errand'));
  assert.ok(retries.length >= 2, `retried with a message each time:\n${out}`);
  assert.match(
    out,
    /errand: could not reach the database at postgres:\/\/errand:\*\*\*@127\.0\.0\.1:1\/errand within store\.startup_timeout \(2s\): .*ECONNREFUSED.* \(store_unavailable\)/,
  );
  assert.ok(!out.includes('s3cret'), 'the password is never printed');
  // It gave up by itself (exit 2 above, with the configured limit in its message); and not at the first failure.
  assert.ok(elapsed >= 500, `kept trying for the configured time (${elapsed} ms after the first retry message)`);
});
