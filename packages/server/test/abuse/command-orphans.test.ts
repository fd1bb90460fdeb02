/**
 * Issue 11, item 6: a `command` program must not outlive the server that
 * started it, even when the server dies by SIGKILL (no exit hook runs). A real
 * `errand serve` runs a program that starts a grandchild and waits; the
 * server is SIGKILLed; the program and the grandchild must be gone within a
 * bounded wait. After a restart on the same SQLite file the request runs
 * again, and only the re-run's processes exist.
 *
 * Processes are recognised by their environment (/proc/<pid>/environ holds
 * ERRAND_REQUEST_ID and ERRAND_ATTEMPT), so a reused pid can never be
 * mistaken for one of ours, and cleanup only ever kills our own processes.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HAS_PROCFS, killProcessesOf, processesOf } from '../helpers/procfs.js';
import { http, killAllServers, makeTempDir, SERVER_PACKAGE_DIR, startServer, waitFor, writeConfig } from '../helpers/process.js';

after(killAllServers);

const PROGRAM = join(SERVER_PACKAGE_DIR, 'test', 'operations', 'fixtures', 'program.mjs');
describe('command processes die with the server (SIGKILL included)', { skip: HAS_PROCFS ? false : 'needs /proc' }, () => {
  test('SIGKILL the server: the program and its grandchild end; after a restart only the re-run runs', async (t) => {
    const { dir, cleanup } = makeTempDir('errand-orphans-');
    t.after(cleanup);
    const pids = join(dir, 'pids');
    mkdirSync(pids);
    const configPath = writeConfig(dir, {
      store: { url: `sqlite:${join(dir, 'errand.db')}` },
      engine: { lease_duration: 2, heartbeat_interval: 0.5, poll_interval: 0.2 },
      operations: {
        tree: {
          command: { run: [process.execPath, PROGRAM], grace: 0.5 },
          retry: { max_attempts: 3, initial_delay: 0.1, jitter: 0 },
        },
      },
      logging: { level: 'silent' },
    });

    const first = await startServer({ config: configPath });
    const res = await http('POST', `${first.url}/v1/operations/tree?async=true`, { mode: 'tree', pids_dir: pids });
    assert.equal(res.status, 202, res.text);
    const id = res.body.request_id as string;
    t.after(() => killProcessesOf(id));

    const attempt1 = await started(pids, 1);
    const before = processesOf(id);
    assert.ok(before.some((p) => p.pid === attempt1.pid) && before.some((p) => p.pid === attempt1.grandchild), JSON.stringify(before));

    const exit = await first.crash();
    assert.equal(exit.signal, 'SIGKILL');
    await waitFor(() => processesOf(id).length === 0, {
      what: `every process of ${id} to end after the server's SIGKILL (running before it: ${JSON.stringify(before)})`,
      timeoutMs: 10_000,
    });

    const second = await startServer({ config: configPath });
    const attempt2 = await started(pids, 2);
    const now = processesOf(id);
    assert.deepEqual(new Set(now.map((p) => p.attempt)), new Set(['2']), `only the re-run's processes run: ${JSON.stringify(now)}`);
    assert.ok(now.some((p) => p.pid === attempt2.pid) && now.some((p) => p.pid === attempt2.grandchild), JSON.stringify(now));

    const cancel = await http('DELETE', `${second.url}/v1/requests/${id}`);
    assert.equal(cancel.status, 200, cancel.text);
    second.kill('SIGTERM');
    assert.equal((await second.waitExit()).code, 0, second.diagnostics());
    await waitFor(() => processesOf(id).length === 0, { what: `the re-run's processes to end`, timeoutMs: 10_000 });
  });
});

/** The pids the `tree` mode of attempt `attempt` wrote to `<pids>/<attempt>.json` (a half-written file counts as not yet). */
function started(pids: string, attempt: number): Promise<{ pid: number; grandchild: number }> {
  const file = join(pids, `${attempt}.json`);
  return waitFor(() => existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { pid: number; grandchild: number }), {
    what: `attempt ${attempt} to start its program and grandchild`,
    timeoutMs: 15_000,
  });
}
