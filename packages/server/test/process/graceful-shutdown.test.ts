/**
 * SIGTERM on the real process: the node stops accepting work at once (its
 * listener stays open while it drains, so a new submission is answered 503
 * shutting_down with Retry-After, never a refused connection, and status polls
 * are still served), lets a running handler finish within
 * `server.shutdown_grace`, and exits 0. A handler
 * that outlives the grace period is aborted and its request released back to
 * `pending` (the attempt not counted), and the next process on the same SQLite
 * file runs it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  http,
  isConnectionError,
  killAllServers,
  makeTempDir,
  startServer,
  waitFor,
  writeConfig,
  writeStepsOperation,
  type ServerProcess,
} from '../helpers/process.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

after(killAllServers);

function setup(grace: number) {
  const { dir, cleanup } = makeTempDir('errand-term-');
  const markers = join(dir, 'markers');
  mkdirSync(markers);
  writeStepsOperation(dir, 'steps.mjs', markers);
  const dbPath = join(dir, 'errand.db');
  const configPath = writeConfig(dir, {
    server: { shutdown_grace: grace },
    store: { url: `sqlite:${dbPath}` },
    engine: { lease_duration: 2, heartbeat_interval: 0.5, poll_interval: 0.2, concurrency: 4 },
    workflow: { retry: { max_attempts: 3, initial_delay: 0.1, jitter: 0 } },
    operations: { steps: { module: './steps.mjs' } },
    logging: { level: 'silent' },
  });
  return { dir, cleanup, markers, dbPath, configPath };
}

/** Submits one async request and waits until its handler has made progress. */
async function submitAndWaitRunning(server: ServerProcess, input: Record<string, unknown>): Promise<string> {
  const res = await http('POST', `${server.url}/v1/operations/steps?async=true`, input);
  assert.equal(res.status, 202, res.text);
  const id = res.body.request_id as string;
  await waitFor(
    async () => {
      const s = await http('GET', `${server.url}/v1/requests/${id}`);
      return s.body.status === 'processing' && (s.body.completed_steps ?? 0) >= 1;
    },
    { timeoutMs: SAFETY_NET_MS, what: `${id} to be processing` },
  );
  return id;
}

/** After SIGTERM: /ready stops answering 200 (503 shutting_down, or the listener is closed). */
async function waitNotAccepting(server: ServerProcess): Promise<void> {
  await waitFor(
    async () => {
      try {
        const res = await http('GET', `${server.url}/ready`, undefined, {}, 2_000);
        return res.status !== 200;
      } catch (err) {
        if (isConnectionError(err)) return true;
        throw err;
      }
    },
    { timeoutMs: SAFETY_NET_MS, what: '/ready to stop answering 200 after SIGTERM' },
  );
}

/** While the node drains, a new submission is answered 503 shutting_down with Retry-After on the open listener. */
async function assertAnswers503(server: ServerProcess): Promise<void> {
  const res = await http('POST', `${server.url}/v1/operations/steps?async=true`, { steps: 1 }, { connection: 'close' }, 5_000);
  assert.equal(res.status, 503, `a submission during the drain was answered ${res.status}: ${res.text}`);
  assert.equal(res.body?.error?.type, 'shutting_down');
  assert.equal(res.headers.get('retry-after'), '1');
}

/** A new submission at the very end of a short drain: 503 shutting_down, or no connection once the drain is over. */
async function assertRefusesNewWork(server: ServerProcess): Promise<string> {
  let res;
  try {
    res = await http('POST', `${server.url}/v1/operations/steps?async=true`, { steps: 1 }, { connection: 'close' }, 5_000);
  } catch (err) {
    if (!isConnectionError(err)) throw err;
    return 'refused: connection failed';
  }
  assert.equal(res.status, 503, `a submission during shutdown was answered ${res.status}: ${res.text}`);
  assert.equal(res.body?.error?.type, 'shutting_down');
  return 'refused: 503 shutting_down';
}

function markerAttempts(markers: string, id: string): number[] {
  return readdirSync(markers)
    .filter((n) => n.startsWith(`${id}.`))
    .map((n) => Number(n.slice(id.length + 1)))
    .sort();
}

describe('graceful shutdown on SIGTERM', () => {
  test('stops accepting, lets the running handler finish within the grace period, exits 0', async (t) => {
    const { cleanup, markers, configPath } = setup(15);
    t.after(cleanup);
    const first = await startServer({ config: configPath });
    const id = await submitAndWaitRunning(first, { steps: 80, step_ms: 50 }); // ~4 s of work

    const termAt = Date.now();
    first.kill('SIGTERM');
    await waitNotAccepting(first);
    // The handler still runs: the listener is open, new work gets the documented 503, the status is served.
    await assertAnswers503(first);
    const polled = await http('GET', `${first.url}/v1/requests/${id}`, undefined, { connection: 'close' }, 5_000);
    assert.equal(polled.status, 200, polled.text);
    assert.ok(first.running, 'the node should still be draining (its handler has ~4 s of work) when new work is refused');
    const exit = await first.waitExit(15_000);
    const drainMs = Date.now() - termAt;
    assert.equal(exit.code, 0, first.diagnostics());
    assert.equal(exit.signal, null);
    assert.ok(drainMs < 15_000, `drain took ${drainMs} ms`);
    // The handler ran to its end before the process exited.
    assert.deepEqual(markerAttempts(markers, id), [1], first.diagnostics());

    const second = await startServer({ config: configPath });
    const r = await http('GET', `${second.url}/v1/requests/${id}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.status, 'completed', JSON.stringify(r.body));
    assert.equal(r.body.attempt, 1);
    assert.equal(r.body.result.attempt, 1);
    assert.equal(r.body.result.steps, 80);
    // Nothing submitted during the drain was stored.
    const all = await http('GET', `${second.url}/v1/requests?limit=100`);
    assert.deepEqual(
      all.body.data.map((x: { request_id: string }) => x.request_id),
      [id],
    );
    second.kill('SIGTERM');
    assert.equal((await second.waitExit()).code, 0, second.diagnostics());
  });

  test('a handler longer than the grace period is released (attempt not counted) and run at the next start', async (t) => {
    const { cleanup, markers, configPath, dbPath } = setup(0.5);
    t.after(cleanup);
    const first = await startServer({ config: configPath });
    const id = await submitAndWaitRunning(first, { steps: 60, step_ms: 50 }); // ~3 s of work

    const termAt = Date.now();
    first.kill('SIGTERM');
    await waitNotAccepting(first);
    t.diagnostic(await assertRefusesNewWork(first));
    const exit = await first.waitExit(10_000);
    const drainMs = Date.now() - termAt;
    assert.equal(exit.code, 0, first.diagnostics());
    assert.ok(drainMs < 2_500, `the drain should end near the 0.5 s grace, not wait for the ~3 s handler; took ${drainMs} ms`);
    t.diagnostic(`drain took ${drainMs} ms`);
    assert.deepEqual(markerAttempts(markers, id), [], 'the first attempt must not have run to its end');

    // Between the two processes the stored request is back in `pending`, its attempt given back (read straight from the file).
    const db = new Database(dbPath);
    try {
      const row = db.prepare('SELECT status, attempt FROM requests WHERE id = ?').get(id) as
        { status: string; attempt: number } | undefined;
      assert.deepEqual(row, { status: 'pending', attempt: 0 });
    } finally {
      db.close();
    }

    const second = await startServer({ config: configPath });
    const final = await waitFor(
      async () => {
        const r = await http('GET', `${second.url}/v1/requests/${id}`);
        assert.equal(r.status, 200, r.text);
        return ['completed', 'failed', 'cancelled'].includes(r.body.status) ? r.body : undefined;
      },
      { timeoutMs: SAFETY_NET_MS, intervalMs: 50, what: `${id} to finish after the restart` },
    );
    assert.equal(final.status, 'completed', JSON.stringify(final));
    assert.equal(final.attempt, 1, 'the interrupted attempt did not count');
    assert.equal(final.result.attempt, 1);
    assert.deepEqual(markerAttempts(markers, id), [1]);
    assert.ok(existsSync(join(markers, `${id}.1`)));
    second.kill('SIGTERM');
    assert.equal((await second.waitExit()).code, 0, second.diagnostics());
  });
});
