/**
 * A database outage under load: two real nodes take a steady stream of
 * submissions while PostgreSQL is stopped (`pg_ctlcluster … stop -m
 * immediate`, a crash as far as the nodes can tell) and started again.
 * - While it is down, the API answers `503` + `Retry-After` with the
 *   `store_unavailable` envelope, and both processes stay up.
 * - When it is back, both recover by themselves (no restart): submissions
 *   are acknowledged again, and cross-node wake-ups work again (the LISTEN
 *   connection reconnected).
 * - Nothing acknowledged (202) is lost: every one of them is in the database
 *   and completes.
 *
 * This stops the machine's PostgreSQL, which every other PostgreSQL test uses:
 * it is a `.fault.ts` file, outside the `*.test.ts` glob, run by `npm test`
 * alone after every other test file has finished, and only does anything when
 * ERRAND_TEST_PG_OUTAGE=1 (.ci/run sets it; it needs root for pg_ctlcluster).
 * The database is always started again (after hook).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { pgExec, pgSkipReason } from '../helpers/pg.js';
import { http, killAllServers, waitFor, type HttpAnswer, type ServerProcess } from '../helpers/process.js';
import { clusterFixture, type ClusterFixture } from './nodes.js';

const enabled = process.env.ERRAND_TEST_PG_OUTAGE === '1';
const skip = enabled ? await pgSkipReason() : 'stops the shared PostgreSQL server: set ERRAND_TEST_PG_OUTAGE=1 (npm test runs this file alone, after the others)';

/** The local cluster's version (the folder under /etc/postgresql), for pg_ctlcluster. */
function pgVersion(): string {
  const versions = readdirSync('/etc/postgresql').filter((v) => /^\d+$/.test(v));
  assert.equal(versions.length, 1, `one PostgreSQL version in /etc/postgresql, found ${versions.join(', ')}`);
  return versions[0]!;
}

function pgCtl(action: 'stop' | 'start'): void {
  const args = ['--skip-systemctl-redirect', pgVersion(), 'main', action];
  if (action === 'stop') args.push('-m', 'immediate');
  execFileSync('pg_ctlcluster', args, { stdio: 'pipe', timeout: 60_000 });
}

async function pgIsUp(): Promise<boolean> {
  try {
    await pgExec('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

/** Starts the database if it is not running (idempotent: `start` on a running cluster fails, so check first). */
async function ensurePgUp(): Promise<void> {
  if (await pgIsUp()) return;
  try {
    pgCtl('start');
  } catch (err) {
    // Already starting or running: the wait below decides.
    process.stderr.write(`pg_ctlcluster start: ${(err as Error).message}\n`);
  }
  await waitFor(pgIsUp, { what: 'PostgreSQL to accept connections again', timeoutMs: 60_000, intervalMs: 200 });
}

describe('PostgreSQL stopped and restarted under load', { skip }, () => {
  let fx: ClusterFixture;
  let a: ServerProcess;
  let b: ServerProcess;

  before(async () => {
    fx = await clusterFixture();
    const engine = { concurrency: 8, lease_duration: 3, heartbeat_interval: 1, poll_interval: 5 };
    [a, b] = await Promise.all([fx.start('node-a', { engine }), fx.start('node-b', { engine })]);
  });

  after(async () => {
    // Whatever happened above, the database must be running for everyone else.
    await ensurePgUp();
    await killAllServers();
    await fx?.cleanup();
  });

  test('503 + Retry-After while it is down, recovery by itself, nothing acknowledged lost', { timeout: 180_000 }, async (t) => {
    const accepted: string[] = [];
    const unavailable = new Map<ServerProcess, HttpAnswer>();
    const others: string[] = [];
    let phase: 'before' | 'down' | 'after' = 'before';
    const acceptedAfter = new Set<ServerProcess>();
    let stop = false;
    let sent = 0;

    const submitter = async (node: ServerProcess) => {
      for (let i = 0; i < 100_000 && !stop; i++) {
        sent += 1;
        let res: HttpAnswer;
        try {
          res = await http('POST', `${node.url}/v1/operations/noop?async=true`, { i, ms: 10 }, {}, 15_000);
        } catch (err) {
          others.push(`${node === a ? 'A' : 'B'}: ${(err as Error).message}`);
          continue;
        }
        if (res.status === 202) {
          accepted.push(res.body.request_id as string);
          if (phase === 'after') acceptedAfter.add(node);
        } else if (res.status === 503) {
          if (!unavailable.has(node)) unavailable.set(node, res);
          // Seen it: hold this worker until the database is started again, rather than spin on 503s.
          await waitFor(() => phase === 'after' || stop, { what: 'the database to be started again', timeoutMs: 90_000, intervalMs: 20 });
        } else {
          others.push(`${node === a ? 'A' : 'B'}: ${res.status} ${res.text}`);
        }
      }
    };
    const load = Promise.all([a, b, a, b].map((node) => submitter(node)));

    try {
      await waitFor(() => accepted.length >= 100, { what: '100 acknowledged submissions before the outage', timeoutMs: 30_000 });
      const beforeCount = accepted.length;
      pgCtl('stop');
      phase = 'down';
      t.diagnostic(`stopped PostgreSQL after ${beforeCount} acknowledged submissions`);
      await waitFor(() => unavailable.size === 2, { what: 'both nodes to answer 503', timeoutMs: 30_000 }).catch((err: unknown) => {
        throw new Error(
          `${(err as Error).message}\nother answers: ${others.slice(0, 5).join('\n')}\n${a.diagnostics().slice(-3000)}\n${b.diagnostics().slice(-3000)}`,
        );
      });
      assert.ok(!(await pgIsUp()), 'the database really is down');
      pgCtl('start');
      await waitFor(pgIsUp, { what: 'PostgreSQL to accept connections again', timeoutMs: 60_000, intervalMs: 200 });
      phase = 'after';
      await waitFor(() => acceptedAfter.size === 2, { what: 'both nodes to acknowledge submissions again', timeoutMs: 30_000 });
    } finally {
      stop = true;
      await load;
      await ensurePgUp();
    }
    t.diagnostic(`sent ${sent}, acknowledged ${accepted.length}`);

    assert.deepEqual(others, [], 'no answer but 202 or 503, and no dropped connection: the nodes stayed up');
    assert.ok(a.running && b.running, 'both processes survived the outage');
    for (const [node, res] of unavailable) {
      assert.equal(res.body.error.type, 'store_unavailable', `${node.url}: ${res.text}`);
      assert.equal(res.body.error.retryable, true);
      assert.match(res.headers.get('retry-after') ?? '', /^\d+$/, 'Retry-After in seconds');
    }

    const done = await waitFor(
      async () => {
        const rows = await fx.sql<{ status: string; n: number }>(
          'SELECT status, COUNT(*)::int AS n FROM requests WHERE id = ANY($1) GROUP BY status',
          [accepted],
        );
        const counts = Object.fromEntries(rows.map((r) => [r.status, r.n]));
        return (counts.pending ?? 0) + (counts.processing ?? 0) === 0 && counts;
      },
      { what: 'every acknowledged request to be terminal', timeoutMs: 60_000, intervalMs: 200 },
    );
    assert.deepEqual(done, { completed: accepted.length }, 'every acknowledged request is in the database and completed');

    // Both LISTEN connections are back (cross-node wake-ups, fan-out and cancels work again).
    const listeners = await waitFor(
      async () => {
        const rows = await fx.sql<{ name: string }>(
          `SELECT application_name AS name FROM pg_stat_activity WHERE application_name LIKE 'node-_:%:listen' ORDER BY 1`,
        );
        return rows.length === 2 && rows.map((r) => r.name.split(':')[0]);
      },
      { what: "both nodes' LISTEN connections to be re-established", timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.deepEqual(listeners, ['node-a', 'node-b']);
  });
});
