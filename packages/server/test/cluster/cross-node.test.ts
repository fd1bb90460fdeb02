/**
 * Two real nodes on one PostgreSQL schema: what one node accepts, the other
 * runs, and the first still streams, waits on and cancels it.
 *
 * Node A gets `engine.concurrency: 1` and its one slot is taken by a request
 * that waits forever (submitted before B starts, so A runs it): from then on
 * everything submitted through A is run by B. Which process ran what is read
 * from the operations' marker files and results (their pid), not from the nodes.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pgSkipReason } from '../helpers/pg.js';
import { http, killAllServers, waitFor, type ServerProcess } from '../helpers/process.js';
import { connectSse, dataOf } from '../helpers/sse.js';
import { clusterFixture, type ClusterFixture } from './nodes.js';

const skip = await pgSkipReason();

describe('two nodes on one database', { skip }, () => {
  let fx: ClusterFixture;
  let a: ServerProcess;
  let b: ServerProcess;

  before(async () => {
    fx = await clusterFixture();
    // Long heartbeats, leases and polls: B can only hear of new work, and of a cancel, through the notifications.
    // (A timing bound would say the same less surely: on a loaded machine a wake-up can take seconds.)
    const engine = { concurrency: 1, lease_duration: 600, heartbeat_interval: 200, poll_interval: 600 };
    a = await fx.start('node-a', { engine });
    const blocker = await http('POST', `${a.url}/v1/operations/wait?async=true`, {});
    assert.equal(blocker.status, 202, blocker.text);
    await waitFor(() => existsSync(join(fx.marks, `${blocker.body.request_id}.started.${a.pid}`)), {
      what: "A's slot to be taken",
      timeoutMs: 10_000,
    });
    b = await fx.start('node-b', { engine: { ...engine, concurrency: 8 } });
  });

  after(async () => {
    await killAllServers();
    await fx?.cleanup();
  });

  test('a sync call on A returns the result computed on B', async () => {
    const res = await http('POST', `${a.url}/v1/operations/where?mode=sync`, { steps: 2, step_ms: 20 }, {}, 60_000);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, 'completed');
    assert.equal(res.body.result.pid, b.pid, `ran on B (pid ${b.pid}), not A (pid ${a.pid})`);
    // It finished at all, so B was woken by the notification: its next poll is 10 minutes away.
  });

  test('SSE on A streams, without gaps, a request running on B', async () => {
    const submitted = await http('POST', `${a.url}/v1/operations/where?async=true`, { steps: 5, step_ms: 60 });
    assert.equal(submitted.status, 202, submitted.text);
    const id = submitted.body.request_id as string;
    const stream = await connectSse(`${a.url}/v1/requests/${id}/events`);
    assert.equal(stream.status, 200);
    const events = await stream.untilEnd(15_000);
    assert.deepEqual(
      events.map((e) => Number(e.id)),
      events.map((_, i) => i + 1),
      `ids 1..n without gaps: ${events.map((e) => `${e.id}:${e.event}`).join(' ')}`,
    );
    const types = events.map((e) => e.event);
    assert.equal(types.filter((t) => t === 'progress').length, 5);
    assert.deepEqual(
      events.filter((e) => e.event === 'output').map((e) => dataOf(e)),
      [0, 1, 2, 3, 4].map((i) => `chunk ${i} `),
    );
    const last = events.at(-1);
    assert.equal(last?.event, 'completed');
    assert.equal(dataOf(last).result.pid, b.pid);
  });

  test('GET /v1/events on A carries, in order, every event of a request submitted to and run on B', async () => {
    const feed = await connectSse(`${a.url}/v1/events?operation=where`);
    assert.equal(feed.status, 200);
    try {
      const submitted = await http('POST', `${b.url}/v1/operations/where?async=true`, { steps: 2, step_ms: 20 });
      assert.equal(submitted.status, 202, submitted.text);
      const id = submitted.body.request_id as string;
      const events = await feed.waitFor(
        (all) => all.some((e) => dataOf(e).request_id === id && dataOf(e).status === 'completed'),
        15_000,
        "B's request to complete on A's feed",
      );
      const mine = events.filter((e) => dataOf(e).request_id === id).map((e) => dataOf(e));
      assert.deepEqual(
        mine.map((m) => m.seq),
        mine.map((_, i) => i + 1),
        `seqs 1..n, no gap, no repeat: ${mine.map((m) => `${m.seq}:${m.type}`).join(' ')}`,
      );
      assert.equal(mine[0].status, 'pending');
      assert.ok(mine.every((m) => m.operation === 'where' && m.tenant !== undefined));
    } finally {
      feed.destroy();
    }
  });

  test("a cancel accepted by A aborts the handler running on B at once (not at B's next heartbeat)", async () => {
    const submitted = await http('POST', `${a.url}/v1/operations/wait?async=true`, {});
    assert.equal(submitted.status, 202, submitted.text);
    const id = submitted.body.request_id as string;
    await waitFor(() => existsSync(join(fx.marks, `${id}.started.${b.pid}`)), { what: 'the handler to start on B', timeoutMs: 30_000 });
    const cancel = await http('DELETE', `${a.url}/v1/requests/${id}`);
    assert.ok(cancel.status === 200 || cancel.status === 202, cancel.text);
    const aborted = join(fx.marks, `${id}.aborted.${b.pid}`);
    await waitFor(() => existsSync(aborted), { what: 'the handler on B to be aborted', timeoutMs: 30_000 });
    assert.equal(readFileSync(aborted, 'utf8'), 'cancelled');
    // Within the wait above, long before B's next heartbeat (200 s) or poll (600 s): the cancel's notification did it.
    const status = await http('GET', `${b.url}/v1/requests/${id}`);
    assert.equal(status.body.status, 'cancelled');
    // Nothing ran it on A.
    assert.deepEqual(
      readdirSync(fx.marks).filter((f) => f.startsWith(id) && f.endsWith(`.${a.pid}`)),
      [],
    );
  });
});
