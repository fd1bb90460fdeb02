/**
 * The cluster link against the real PostgreSQL server: the LISTEN connection
 * (raw `pg_notify` from a second client, reconnect after its backend is
 * terminated), the PostgreSQL notification source (payloads parsed, other
 * schemas dropped) and the relay that turns other nodes' notifications into
 * engine actions. The engine here runs on a SQLite file standing in for the
 * shared database: "another node" writes to that store directly (no engine
 * events) and announces it with the NOTIFY payload the PostgreSQL store's
 * trigger sends. The relay's decisions alone: relay-decisions.test.ts.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { startCluster, type Cluster } from '../../src/cluster/index.js';
import { loadConfig } from '../../src/config/index.js';
import { systemClock } from '../../src/clock/index.js';
import type { Request, RequestEvent } from '../../src/model/index.js';
import { createServer, type ErrandServer } from '../../src/server.js';
import { DELIVERIES_CHANNEL, EVENTS_CHANNEL, NotifyListener, postgresNotifications } from '../../src/store/index.js';
import { makeNewRequest, tempDir } from '../helpers/factories.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

const PG_URL = process.env.ERRAND_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const silent = pino({ level: 'silent' });

interface Aborts {
  reasons: Map<string, string>;
}
const aborts = ((globalThis as Record<string, unknown>).__clusterAborts ??= { reasons: new Map() }) as Aborts;

let sender: pg.Client;

before(async () => {
  sender = new pg.Client({ connectionString: PG_URL });
  await sender.connect();
});

after(async () => {
  await sender.end();
});

function notify(channel: string, payload: unknown): Promise<unknown> {
  return sender.query('SELECT pg_notify($1, $2)', [channel, typeof payload === 'string' ? payload : JSON.stringify(payload)]);
}

/** Ends every backend whose application_name is `name` (what a dropped connection or a database restart does). */
async function terminateBackends(name: string): Promise<number> {
  const { rows } = await sender.query<{ ok: boolean }>(
    'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
    [name],
  );
  return rows.length;
}

describe('NotifyListener', () => {
  test('receives raw NOTIFY on its channels, and reconnects (reporting it) after its backend is terminated', async (t) => {
    const got: Array<{ channel: string; payload: string }> = [];
    const connections: boolean[] = [];
    const name = `listener-test-${process.pid}`;
    const listener = new NotifyListener({
      url: PG_URL,
      channels: [EVENTS_CHANNEL, DELIVERIES_CHANNEL],
      applicationName: name,
      timers: systemClock,
      log: silent,
      initialBackoffMs: 20,
      maxBackoffMs: 200,
      onNotification: (channel, payload) => {
        if (payload.includes(name)) got.push({ channel, payload });
      },
      onConnected: ({ reconnected }) => connections.push(reconnected),
    });
    t.after(() => listener.stop());
    await listener.start();
    assert.equal(listener.connected, true);
    assert.deepEqual(connections, [false]);

    await notify(EVENTS_CHANNEL, `first ${name}`);
    await notify(DELIVERIES_CHANNEL, `second ${name}`);
    await notify('some_other_channel', `ignored ${name}`);
    await waitFor(() => got.length >= 2, { what: 'two notifications', timeoutMs: SAFETY_NET_MS });
    assert.deepEqual(got, [
      { channel: EVENTS_CHANNEL, payload: `first ${name}` },
      { channel: DELIVERIES_CHANNEL, payload: `second ${name}` },
    ]);

    assert.equal(await terminateBackends(name), 1);
    await waitFor(() => connections.length === 2, { what: 'the reconnect', timeoutMs: SAFETY_NET_MS });
    assert.deepEqual(connections, [false, true]);
    assert.equal(listener.connected, true);
    await notify(EVENTS_CHANNEL, `third ${name}`);
    await waitFor(() => got.length === 3, { what: 'a notification after the reconnect', timeoutMs: SAFETY_NET_MS });
    assert.equal(got[2]?.payload, `third ${name}`);
  });

  test('keeps retrying with backoff while the database cannot be reached, without throwing', async (t) => {
    let failures = 0;
    const listener = new NotifyListener({
      // Nothing listens on port 1: every attempt is refused at once.
      url: 'postgres://postgres@127.0.0.1:1/test',
      channels: [EVENTS_CHANNEL],
      applicationName: 'unreachable',
      timers: systemClock,
      log: silent,
      initialBackoffMs: 10,
      maxBackoffMs: 40,
      onNotification: () => {},
      onConnected: () => assert.fail('must not connect'),
      onDisconnected: () => void (failures += 1),
    });
    t.after(() => listener.stop());
    await listener.start();
    assert.equal(listener.connected, false);
    await waitFor(() => failures >= 3, { what: 'three failed attempts', timeoutMs: SAFETY_NET_MS });
  });
});

describe('ClusterRelay', () => {
  let server: ErrandServer;
  let cluster: Cluster;
  let cleanup: () => void;
  let receiver: Receiver;

  before(async () => {
    receiver = await startReceiver();
    const tmp = tempDir();
    cleanup = tmp.cleanup;
    const hang = join(tmp.dir, 'hang.mjs');
    writeFileSync(
      hang,
      `export default { run(input, ctx) {
        return new Promise((resolve, reject) => ctx.signal.addEventListener('abort', () => {
          globalThis.__clusterAborts.reasons.set(ctx.request_id, String(ctx.signal.reason?.type));
          reject(ctx.signal.reason);
        }));
      } };`,
    );
    writeFileSync(join(tmp.dir, 'echo.mjs'), 'export default { run: (input) => input };');
    const config = loadConfig({
      baseDir: tmp.dir,
      env: {},
      overrides: {
        store: { url: `sqlite:${join(tmp.dir, 'errand.db')}` },
        logging: { level: 'silent' },
        // Long poll, lease and heartbeat: whatever happens within a few seconds here was caused by a notification.
        engine: { poll_interval: 600, lease_duration: 600, heartbeat_interval: 300 },
        webhooks: { allow: ['127.0.0.1'] },
        operations: { hang: { module: hang }, echo: { module: join(tmp.dir, 'echo.mjs') } },
      },
    });
    server = await createServer({ config, log: silent });
    const source = postgresNotifications(PG_URL, { applicationName: `${server.engine.nodeId}:listen`.slice(0, 63) });
    cluster = await startCluster({ engine: server.engine, source, log: silent, fallbackMs: 100 });
  });

  after(async () => {
    await cluster.stop();
    await server.close(0);
    await receiver.close();
    cleanup();
  });

  /** A request another node wrote: inserted straight into the store, so this engine did not see it. */
  async function remoteInsert(overrides: Parameters<typeof makeNewRequest>[0] = {}): Promise<Request> {
    const now = Date.now();
    const { request } = await server.store.requestInsert({
      request: makeNewRequest({ operation: 'echo', created_at: now, run_at: now, deadline: now + 3_600_000, ...overrides }),
    });
    return request;
  }

  /** Claims `id` as node B (at `now`, so a delayed request can be claimed by B only). */
  async function claimAsB(id: string, now: number): Promise<Request> {
    const claimed = await server.store.requestClaim({ owner: 'node-b', now, leaseMs: 600_000, limit: 100 });
    const mine = claimed.find((c) => c.request.id === id);
    assert.ok(mine, `node B claims ${id}`);
    return mine.request;
  }

  function note(request: Request, seq: number, node = 'node-b', type = 'status') {
    return { r: request.id, s: seq, t: type, st: request.status, o: request.operation, n: node };
  }

  test('a pending notification from another node wakes the dispatcher at once (not at the 600 s poll)', async () => {
    const request = await remoteInsert();
    await notify(EVENTS_CHANNEL, note(request, 1));
    const done = await waitFor(
      async () => {
        const r = await server.store.requestGetById({ id: request.id });
        return r?.status === 'completed' ? r : undefined;
      },
      { what: 'the remote submission to be run here', timeoutMs: SAFETY_NET_MS },
    );
    assert.deepEqual(done.result, request.input);
    assert.equal(done.lease_owner, null);
  });

  test("remote events reach this node's subscribers in order, once each; a sync wait returns the remote result", async () => {
    const runAt = Date.now() + 3_600_000;
    const inserted = await remoteInsert({ run_at: runAt, deadline: runAt + 3_600_000 });
    const seen: RequestEvent[] = [];
    const off = server.engine.events.onRequest(inserted.id, ({ event }) => seen.push(event));
    const waiting = server.engine.waitForTerminal(inserted.id, 10_000);

    await notify(EVENTS_CHANNEL, note(inserted, 1));
    const claimed = await claimAsB(inserted.id, runAt);
    await notify(EVENTS_CHANNEL, note(claimed, 2));
    const progress = await server.store.requestProgress({
      id: inserted.id,
      attempt: 1,
      owner: 'node-b',
      now: runAt + 1,
      progress: { percent: 50 },
    });
    assert.ok(progress);
    const completed = await server.store.requestComplete({
      id: inserted.id,
      attempt: 1,
      owner: 'node-b',
      now: runAt + 2,
      result: { on: 'node-b' },
    });
    assert.ok(completed);
    // The progress notification arrives late and twice, the completion once: still 1..4 once each.
    await notify(EVENTS_CHANNEL, note(completed.request, 4));
    await notify(EVENTS_CHANNEL, note(progress.request, 3, 'node-b', 'progress'));
    await notify(EVENTS_CHANNEL, note(progress.request, 3, 'node-b', 'progress'));

    const final = await waiting;
    assert.equal(final?.status, 'completed');
    assert.deepEqual(final?.result, { on: 'node-b' });
    await waitFor(() => seen.length >= 4, { what: 'four forwarded events', timeoutMs: SAFETY_NET_MS });
    off();
    assert.deepEqual(
      seen.map((e) => [e.seq, e.type]),
      [
        [1, 'status'],
        [2, 'status'],
        [3, 'progress'],
        [4, 'status'],
      ],
    );
  });

  test("this node's own notifications are skipped (its engine already published them)", async () => {
    const before = { ...cluster.relay.stats, ...cluster.subscription.stats };
    const request = await remoteInsert({ run_at: Date.now() + 3_600_000 });
    const seen: number[] = [];
    const off = server.engine.events.onRequest(request.id, ({ event }) => seen.push(event.seq));
    await notify(EVENTS_CHANNEL, note(request, 1, server.engine.nodeId));
    await notify(EVENTS_CHANNEL, 'not json at all');
    await waitFor(() => cluster.subscription.stats.invalid > before.invalid, {
      what: 'the invalid notification',
      timeoutMs: SAFETY_NET_MS,
    });
    off();
    assert.equal(cluster.relay.stats.own, before.own + 1);
    assert.deepEqual(seen, []);
  });

  test('notifications from another schema of the same database (another cluster) are ignored', async () => {
    const before = cluster.subscription.stats;
    const runAt = Date.now() + 3_600_000;
    const request = await remoteInsert({ run_at: runAt, deadline: runAt + 3_600_000 });
    const claimed = await claimAsB(request.id, runAt);
    const seen: number[] = [];
    const off = server.engine.events.onRequest(request.id, ({ event }) => seen.push(event.seq));
    // Another cluster's event 2: if it were taken for ours, the relay would start after seq 1 and never send 1.
    await notify(EVENTS_CHANNEL, { ...note(claimed, 2), sc: 'some_other_cluster' });
    // Ours (this node's schema is the connection's current_schema(), here `public`): read from the start.
    await notify(EVENTS_CHANNEL, { ...note(request, 1), sc: 'public' });
    await waitFor(() => seen.includes(2), { what: 'the events of this schema', timeoutMs: SAFETY_NET_MS });
    off();
    assert.deepEqual(seen, [1, 2]);
    assert.ok(cluster.subscription.stats.foreign > before.foreign);
  });

  test('a cancel committed by another node aborts the handler running here', async () => {
    const request = await server.engine.submit({ tenant: 'alpha', operation: 'hang', input: {}, mode: 'async' });
    await waitFor(async () => (await server.store.requestGetById({ id: request.id }))?.status === 'processing', {
      what: 'the handler to start',
      timeoutMs: SAFETY_NET_MS,
    });
    assert.equal(server.engine.runningCount, 1);
    // Node A's API accepts the cancel: a store write this engine does not see, then its notification.
    const outcome = await server.store.requestCancel({ id: request.id, now: Date.now() });
    assert.equal(outcome.outcome, 'cancelled');
    assert.ok(outcome.outcome === 'cancelled');
    await notify(EVENTS_CHANNEL, note(outcome.transition.request, outcome.transition.event.seq, 'node-a'));
    await waitFor(() => aborts.reasons.get(request.id), { what: 'the handler to be aborted', timeoutMs: SAFETY_NET_MS });
    assert.equal(aborts.reasons.get(request.id), 'cancelled');
    await waitFor(() => server.engine.runningCount === 0, { what: 'the worker slot to free', timeoutMs: SAFETY_NET_MS });
  });

  test("a delivery notification wakes the webhook deliverer: another node's outcome is sent at once (not at the 600 s poll)", async () => {
    const runAt = Date.now() + 3_600_000;
    const inserted = await remoteInsert({ run_at: runAt, deadline: runAt + 3_600_000, webhook_url: `${receiver.url}/hook` });
    await claimAsB(inserted.id, runAt);
    // Node B completes it: the outbox row is written in the same transaction, then announced.
    const next = receiver.next('/hook', 5000);
    assert.ok(await server.store.requestComplete({ id: inserted.id, attempt: 1, owner: 'node-b', now: Date.now(), result: 'from b' }));
    await notify(DELIVERIES_CHANNEL, '');
    const got = await next;
    assert.equal(JSON.parse(got.body).request_id ?? JSON.parse(got.body).data?.request_id, inserted.id);
  });

  test('after the LISTEN connection drops, a waiter still gets the terminal event it missed (resync from the log)', async () => {
    const runAt = Date.now() + 3_600_000;
    const inserted = await remoteInsert({ run_at: runAt, deadline: runAt + 3_600_000 });
    const claimed = await claimAsB(inserted.id, runAt);
    assert.equal(claimed.status, 'processing');
    const waiting = server.engine.waitForTerminal(inserted.id, 15_000);
    const resyncs = cluster.relay.stats.resyncs;

    // Completed and never announced (its notification was lost with the connection)...
    const completed = await server.store.requestComplete({ id: inserted.id, attempt: 1, owner: 'node-b', now: runAt + 5, result: 42 });
    assert.ok(completed);
    // ...and the connection drops: the reconnect must read what was missed.
    assert.equal(await terminateBackends(`${server.engine.nodeId}:listen`.slice(0, 63)), 1);

    const final = await waiting;
    assert.equal(final?.status, 'completed');
    assert.equal(final?.result, 42);
    assert.ok(cluster.relay.stats.resyncs > resyncs, 'resynced from the log');
    await waitFor(() => cluster.subscription.connected, { what: 'the listener to reconnect', timeoutMs: SAFETY_NET_MS });
  });
});
