/**
 * A database restart ends every node session at once, yet hands no running
 * request to another node (docs/decisions/0017-dead-node-from-its-session.md):
 * both live nodes reconnect and register again within the dead-node timeout,
 * so the rescuers, which see every lock free right after the restart, take
 * nothing. Checked once both nodes are registered again (any rescue would
 * have happened before that); then every request completes on its first
 * attempt, on the node that started it.
 *
 * Default lease (30 s) and heartbeat (10 s): no lease can expire during the
 * outage, so a rescue here could only come from the session check. A private
 * PostgreSQL server (test/helpers/privatePg.ts), never the shared one; a
 * `.fault.ts` file (`npm run test:faults`).
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { http, killAllServers, waitFor, type ServerProcess } from '../helpers/process.js';
import { postgresBinDir, startPrivatePostgres, type PrivatePostgres } from '../helpers/privatePg.js';
import { clusterFixture, type ClusterFixture } from './nodes.js';

const skip =
  postgresBinDir() === undefined && process.env.CI !== 'true' ? 'PostgreSQL server binaries (initdb, pg_ctl) are not installed' : false;

const PER_NODE = 3;

describe('PostgreSQL restarted while both nodes run requests', { skip }, () => {
  let db: PrivatePostgres;
  let fx: ClusterFixture;
  let a: ServerProcess;
  let b: ServerProcess;

  before(async () => {
    db = await startPrivatePostgres();
    fx = await clusterFixture({ pgUrl: db.url });
    const engine = { concurrency: 8, lease_duration: 30, heartbeat_interval: 10, poll_interval: 5 };
    [a, b] = await Promise.all([fx.start('node-a', { engine }), fx.start('node-b', { engine })]);
  });

  after(async () => {
    await killAllServers();
    await fx?.cleanup();
    await db?.destroy();
  });

  test('no running request changes hands; each completes on its first attempt', { timeout: 180_000 }, async (t) => {
    const ids: string[] = [];
    for (let i = 0; i < PER_NODE; i++) {
      for (const node of [a, b]) {
        const res = await http('POST', `${node.url}/v1/operations/hold?async=true`, { i });
        assert.equal(res.status, 202, res.text);
        ids.push(res.body.request_id as string);
      }
    }
    const running = await waitFor(
      async () => {
        const rows = await fx.sql<{ id: string; owner: string }>(
          `SELECT id, lease_owner AS owner FROM requests WHERE status = 'processing' ORDER BY id`,
        );
        const started = rows.every((r) => existsSync(join(fx.marks, `${r.id}.started.1.${r.owner.split(':').at(-2)}`)));
        return rows.length === ids.length && started && rows;
      },
      { what: 'every request to start', timeoutMs: 30_000, intervalMs: 25 },
    );
    const owners = new Set(running.map((r) => r.owner));
    t.diagnostic(`running on ${owners.size} node(s): ${[...owners].join(', ')}`);

    await db.stop('immediate');
    await db.start();
    await waitFor(() => db.isUp(), { what: 'PostgreSQL to accept connections again', timeoutMs: 60_000, intervalMs: 100 });
    const upAt = Date.now();
    // Both nodes registered again: two node sessions, both rows unmarked.
    await waitFor(
      async () => {
        const sessions = await fx.sql<{ n: number }>(
          `SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'node-_:%:node'`,
        );
        const rows = await fx.sql<{ lost: boolean }>(`SELECT lost_at IS NOT NULL AS lost FROM nodes`);
        return sessions[0]?.n === 2 && rows.length === 2 && rows.every((r) => !r.lost);
      },
      { what: 'both nodes to register again', timeoutMs: 30_000, intervalMs: 25 },
    );
    t.diagnostic(`both nodes registered again ${Date.now() - upAt} ms after the database accepted connections`);

    const afterRestart = await fx.sql<{ id: string; owner: string }>(
      `SELECT id, lease_owner AS owner FROM requests WHERE status = 'processing' ORDER BY id`,
    );
    assert.deepEqual(afterRestart, running, 'every request still runs where it ran, under the same claim');

    writeFileSync(join(fx.marks, 'release'), '');
    const final = await waitFor(
      async () => {
        const rows = await fx.sql<{ id: string; status: string; attempt: number }>(
          'SELECT id, status, attempt FROM requests WHERE id = ANY($1) ORDER BY id',
          [ids],
        );
        return rows.every((r) => r.status === 'completed') && rows;
      },
      { what: 'every request to complete', timeoutMs: 60_000, intervalMs: 50 },
    );
    assert.deepEqual(
      final.filter((r) => r.attempt !== 1),
      [],
      'no request ran a second attempt',
    );
  });
});
