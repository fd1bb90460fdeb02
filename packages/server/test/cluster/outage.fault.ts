/**
 * A database outage under load: two real nodes take a steady stream of
 * submissions while PostgreSQL is stopped (`pg_ctl stop -m immediate`, a
 * crash as far as the nodes can tell) and started again.
 * - While it is down, the API answers `503` + `Retry-After` with the
 *   `store_unavailable` envelope, and both processes stay up.
 * - When it is back, both recover by themselves (no restart): submissions
 *   are acknowledged again, and cross-node wake-ups work again (the LISTEN
 *   connection reconnected).
 * - Nothing acknowledged (202) is lost: every one of them is in the database
 *   and completes.
 *
 * The database is a private PostgreSQL server made for this file
 * (test/helpers/privatePg.ts: initdb in a temp dir, its own port), so
 * stopping it never touches the machine's shared server or anyone else's
 * tests. It needs PostgreSQL's server binaries (initdb, pg_ctl): without them
 * it skips, except under CI=true, where it fails. It is a `.fault.ts` file,
 * outside the `*.test.ts` glob, run by `npm test` after the other files
 * because it loads the machine.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { http, killAllServers, waitFor, type HttpAnswer, type ServerProcess } from '../helpers/process.js';
import { postgresBinDir, startPrivatePostgres, type PrivatePostgres } from '../helpers/privatePg.js';
import { clusterFixture, type ClusterFixture } from './nodes.js';

const skip =
  postgresBinDir() === undefined && process.env.CI !== 'true' ? 'PostgreSQL server binaries (initdb, pg_ctl) are not installed' : false;

describe('PostgreSQL stopped and restarted under load', { skip }, () => {
  let db: PrivatePostgres;
  let fx: ClusterFixture;
  let a: ServerProcess;
  let b: ServerProcess;
  const pgIsUp = () => db.isUp();
  /** Starts the database if it is not running. */
  const ensurePgUp = async () => {
    if (await db.isUp()) return;
    await db.start();
    await waitFor(pgIsUp, { what: 'PostgreSQL to accept connections again', timeoutMs: 60_000, intervalMs: 200 });
  };

  before(async () => {
    db = await startPrivatePostgres();
    fx = await clusterFixture({ pgUrl: db.url });
    const engine = { concurrency: 8, lease_duration: 3, heartbeat_interval: 1, poll_interval: 5 };
    [a, b] = await Promise.all([fx.start('node-a', { engine }), fx.start('node-b', { engine })]);
  });

  after(async () => {
    await killAllServers();
    await fx?.cleanup();
    await db?.destroy();
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
      await db.stop('immediate');
      phase = 'down';
      t.diagnostic(`stopped PostgreSQL after ${beforeCount} acknowledged submissions`);
      await waitFor(() => unavailable.size === 2, { what: 'both nodes to answer 503', timeoutMs: 30_000 }).catch((err: unknown) => {
        throw new Error(
          `${(err as Error).message}\nother answers: ${others.slice(0, 5).join('\n')}\n${a.diagnostics().slice(-3000)}\n${b.diagnostics().slice(-3000)}`,
        );
      });
      assert.ok(!(await pgIsUp()), 'the database really is down');
      await db.start();
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
