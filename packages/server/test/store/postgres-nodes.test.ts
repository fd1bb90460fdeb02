/**
 * Node sessions on PostgreSQL (store/postgres/nodes.ts): a registered node's
 * running requests are taken back once its session has been gone for the
 * timeout, never while it holds its session, and not when the session comes
 * back within the timeout (a database restart). Times are the `now` given to
 * each sweep, so no test waits for the timeout itself; the only waits are for
 * a session's events (bounded).
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { systemClock } from '../../src/clock/index.js';
import type { Request } from '../../src/model/index.js';
import type { NodeRegistration, PostgresStore } from '../../src/store/index.js';
import { makeNewRequest, T0 } from '../helpers/factories.js';
import { openPgStore, pgExec, pgSkipReason } from '../helpers/pg.js';
import { waitFor } from '../helpers/process.js';
import { fixedRetry } from './retryPolicies.js';

const skip = await pgSkipReason();
const log = pino({ level: 'silent' });
/** Far longer than any test: no lease expires here, so whatever is rescued was rescued for its node's session. */
const LEASE = 10 * 3_600_000;
const TIMEOUT = 2000;

interface Node {
  registration: NodeRegistration;
  /** Every `onChange` so far, in order. */
  changes: boolean[];
}

async function register(store: PostgresStore, owner: string, t: TestContext): Promise<Node> {
  const changes: boolean[] = [];
  const registration = await store.nodeRegister({ owner, timers: systemClock, log, onChange: (held) => changes.push(held) });
  t.after(() => registration.stop());
  return { registration, changes };
}

async function claimAs(store: PostgresStore, owner: string, count = 1): Promise<Request[]> {
  for (let i = 0; i < count; i++) await store.requestInsert({ request: makeNewRequest() });
  const claimed = await store.requestClaim({ owner, now: T0 + 10_000, leaseMs: LEASE, limit: count });
  assert.equal(claimed.length, count);
  return claimed.map((c) => c.request);
}

const sweep = (store: PostgresStore, now: number) =>
  store.leaseRescueExpired({ now, limit: 100, deadNodeAfterMs: TIMEOUT, retry: fixedRetry(0) });

async function nodeRows(schema: string): Promise<Array<{ owner: string; lost_at: number | null }>> {
  const { rows } = await pgExec(`SELECT owner, lost_at::float8 AS lost_at FROM "${schema}".nodes ORDER BY owner`);
  return rows as Array<{ owner: string; lost_at: number | null }>;
}

describe('postgres: dead nodes noticed from their session', { skip }, () => {
  test("a live node's requests are never rescued through its session, however late the sweep", async (t) => {
    const { store, schema, cleanup } = await openPgStore();
    t.after(cleanup);
    const node = await register(store, 'live-node', t);
    assert.equal(node.registration.held, true);
    assert.deepEqual(node.changes, [true]);
    const [running] = await claimAs(store, 'live-node');
    for (const now of [T0 + 20_000, T0 + 20_000 + TIMEOUT, T0 + 3_600_000]) assert.deepEqual(await sweep(store, now), []);
    assert.deepEqual(await nodeRows(schema), [{ owner: 'live-node', lost_at: null }]);
    assert.equal((await store.requestGetById({ id: running!.id }))?.lease_owner, 'live-node');
  });

  test('a node whose session ended is rescued once the timeout has passed, not before; its late outcome is refused', async (t) => {
    const { store, schema, cleanup } = await openPgStore();
    t.after(cleanup);
    const gone = await register(store, 'gone-node', t);
    await register(store, 'other-node', t);
    const held = await claimAs(store, 'gone-node', 2);
    const [others] = await claimAs(store, 'other-node');
    await gone.registration.stop();

    const seen = T0 + 20_000;
    assert.deepEqual(await sweep(store, seen), [], 'the first sweep to see the session gone only marks it');
    assert.deepEqual(await nodeRows(schema), [
      { owner: 'gone-node', lost_at: seen },
      { owner: 'other-node', lost_at: null },
    ]);
    assert.deepEqual(await sweep(store, seen + TIMEOUT - 1), []);
    const rescued = await sweep(store, seen + TIMEOUT);
    assert.deepEqual(rescued.map((r) => r.request.id).sort(), held.map((r) => r.id).sort());
    for (const { kind, request } of rescued) {
      assert.equal(kind, 'retried');
      assert.equal(request.status, 'pending');
      assert.equal(request.attempt, 1);
      assert.equal(request.lease_owner, null);
      assert.equal(request.error?.type, 'lease_expired');
    }
    assert.deepEqual(await nodeRows(schema), [{ owner: 'other-node', lost_at: null }], 'a rescued dead node is forgotten');
    assert.equal((await store.requestGetById({ id: others!.id }))?.status, 'processing', "the live node's work stays");
    // The dead node's late outcome (it was only cut off, say) matches no row.
    const late = { id: held[0]!.id, attempt: 1, owner: 'gone-node', now: seen + TIMEOUT + 1 };
    assert.equal(await store.requestComplete({ ...late, result: 'late' }), null);
    assert.equal(await store.leaseExtend({ ...late, leaseMs: LEASE }), false);
  });

  test('a node registered again within the timeout (a database restart, a dropped connection) keeps its work', async (t) => {
    const { store, schema, cleanup } = await openPgStore();
    t.after(cleanup);
    const first = await register(store, 'node-r', t);
    const [running] = await claimAs(store, 'node-r');
    await first.registration.stop();
    assert.deepEqual(await sweep(store, T0 + 20_000), []);
    assert.equal((await nodeRows(schema))[0]?.lost_at, T0 + 20_000);
    // Back (same owner: the same process): the mark is cleared, so a sweep long after finds a live node.
    const again = await register(store, 'node-r', t);
    assert.equal(again.registration.held, true);
    assert.deepEqual(await nodeRows(schema), [{ owner: 'node-r', lost_at: null }]);
    assert.deepEqual(await sweep(store, T0 + 20_000 + 10 * TIMEOUT), []);
    assert.equal((await store.requestGetById({ id: running!.id }))?.lease_owner, 'node-r');
  });

  test('a session the server ends is re-established by itself, and nothing is rescued after it', async (t) => {
    // Its own application name, so only this session is ended (other test files may share the server).
    const nodeId = `kick-${process.pid}-${Date.now()}`;
    const { store, schema, cleanup } = await openPgStore({ nodeId });
    t.after(cleanup);
    const owner = 'node-k';
    const node = await register(store, owner, t);
    const [running] = await claimAs(store, owner);
    // What a database restart or a broken connection does to the session.
    await pgExec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [`${nodeId}:node`]);
    await waitFor(() => node.changes.length >= 3, {
      what: 'the session to be lost and registered again',
      timeoutMs: 15_000,
      intervalMs: 20,
    });
    assert.deepEqual(node.changes.slice(0, 3), [true, false, true]);
    assert.equal(node.registration.held, true);
    assert.deepEqual(await nodeRows(schema), [{ owner, lost_at: null }]);
    assert.deepEqual(await sweep(store, T0 + 3_600_000), []);
    assert.equal((await store.requestGetById({ id: running!.id }))?.lease_owner, owner);
  });

  test('a second registration of the same owner cannot take its lock, and takes nothing from the first', async (t) => {
    const { store, schema, cleanup } = await openPgStore();
    t.after(cleanup);
    const first = await register(store, 'twin', t);
    const [running] = await claimAs(store, 'twin');
    const second = await register(store, 'twin', t);
    assert.equal(second.registration.held, false, 'the lock is taken: the second session is not registered');
    assert.deepEqual(second.changes, []);
    await second.registration.stop();
    assert.equal(first.registration.held, true);
    for (const now of [T0 + 20_000, T0 + 3_600_000]) assert.deepEqual(await sweep(store, now), []);
    assert.deepEqual(await nodeRows(schema), [{ owner: 'twin', lost_at: null }]);
    assert.equal((await store.requestGetById({ id: running!.id }))?.lease_owner, 'twin');
  });
});
