/**
 * PostgreSQL connection concerns: a database that cannot be reached is
 * `store_unavailable` (HTTP 503 + Retry-After), never a silent success; the
 * NOTIFY contract other nodes listen to; the database clock.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import type pg from 'pg';
import { loadConfig } from '../../src/config/index.js';
import { DatabaseClock, systemClock } from '../../src/clock/index.js';
import { createServer } from '../../src/server.js';
import { ErrandError } from '../../src/model/index.js';
import { applicationName, openStore, PostgresStore } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { makeNewRequest, T0 } from '../helpers/factories.js';
import { openPgStore, pgClient, pgSkipReason } from '../helpers/pg.js';
import { freePort, waitFor } from '../helpers/process.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

const skip = await pgSkipReason();

const isUnavailable = (err: unknown) =>
  err instanceof ErrandError && err.type === 'store_unavailable' && err.status === 503 && err.retryAfterSeconds === 1;

describe('postgres: an unreachable database is store_unavailable', () => {
  test('every call on a pool pointed at a closed port fails with store_unavailable', async () => {
    const port = await freePort();
    const store = new PostgresStore({ url: `postgres://postgres@127.0.0.1:${port}/test`, connectTimeoutMs: 2000, poolSize: 2 });
    after(() => store.close());
    await assert.rejects(() => store.migrate(), isUnavailable);
    await assert.rejects(() => store.requestInsert({ request: makeNewRequest() }), isUnavailable, 'a write is never acknowledged');
    await assert.rejects(() => store.requestGetById({ id: 'req_00000000000000000000000000' }), isUnavailable);
    await assert.rejects(() => store.requestClaim({ owner: 'n', now: T0, leaseMs: 1000, limit: 5 }), isUnavailable);
    await assert.rejects(() => store.dbNow(), isUnavailable);
    await assert.rejects(() => openStore({ url: `postgresql://postgres@127.0.0.1:${port}/test`, connectTimeoutMs: 2000 }), isUnavailable);
  });

  test('through the API, an unreachable database answers 503 with Retry-After', async () => {
    const port = await freePort();
    const store = new PostgresStore({ url: `postgres://postgres@127.0.0.1:${port}/test`, connectTimeoutMs: 1000, poolSize: 2 });
    const config = loadConfig({ overrides: { logging: { level: 'silent' } }, env: {} });
    const node = await createServer({ config, test: { store, clock: systemClock } });
    after(() => node.close(0));
    const res = await node.app.inject({ method: 'GET', url: '/v1/requests/req_01kf3v6q4c8x0d2m5n7p9r1s3t' });
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.headers['retry-after'], '1');
    assert.equal((JSON.parse(res.body) as { error: { type: string } }).error.type, 'store_unavailable');
  });

  test('bad URLs and schema names are refused with a clear message', () => {
    assert.throws(
      () => new PostgresStore({ url: 'postgres://postgres@127.0.0.1/test?schema=Robert%27);DROP' }),
      /schema .* must be a lower-case SQL identifier/,
    );
    assert.throws(() => new PostgresStore({ url: 'postgres://[bad' }), /not a valid postgres:\/\/ URL/);
  });

  test('a closed store refuses calls with store_unavailable', { skip }, async () => {
    const { store, cleanup } = await openPgStore();
    await cleanup();
    await assert.rejects(
      () => store.requestCounts(),
      (err: unknown) => err instanceof ErrandError && err.type === 'store_unavailable' && /closed/.test(err.message),
    );
    await store.close(); // idempotent
  });

  test('a connection killed mid-transaction fails that call with store_unavailable; the pool carries on', { skip }, async () => {
    // A name of this run's own: pg_stat_activity spans every database of the server, and other runs may be killing theirs.
    const victim = `victim-node-${randomBytes(4).toString('hex')}`;
    const { store, schema, cleanup } = await openPgStore({ nodeId: victim });
    after(cleanup);
    await store.requestInsert({ request: makeNewRequest({ operation: 'limited' }) });
    // Hold the operation's claim lock, so the claim below waits inside its transaction.
    const holder = await pgClient();
    after(() => holder.end());
    await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`${schema}:op:limited`]);
    const claim = store.requestClaim({ owner: victim, now: T0 + 1000, leaseMs: 30_000, limit: 1, operationLimits: { limited: 1 } });
    const waiting = await waitFor(
      async () =>
        (
          await holder.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() AND wait_event_type = 'Lock'`,
            [victim],
          )
        ).rows[0]?.pid,
      { what: 'the claim to wait for the lock', timeoutMs: SAFETY_NET_MS },
    );
    await holder.query('SELECT pg_terminate_backend($1)', [waiting]);
    await assert.rejects(claim, isUnavailable);
    await holder.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [`${schema}:op:limited`]);
    const [claimed] = await store.requestClaim({
      owner: victim,
      now: T0 + 1000,
      leaseMs: 30_000,
      limit: 1,
      operationLimits: { limited: 1 },
    });
    assert.equal(claimed?.request.attempt, 1, 'nothing of the killed claim was kept, and the next one works');
  });

  test('database errors that are not outages surface as they are', { skip }, async () => {
    const { store, cleanup } = await openPgStore();
    after(cleanup);
    const request = makeNewRequest();
    await store.requestInsert({ request });
    await assert.rejects(
      () => store.requestInsert({ request }),
      (err: unknown) => !(err instanceof ErrandError) && (err as { code?: string }).code === '23505',
      'a duplicate id is a unique violation, not an outage',
    );
  });
});

describe('postgres: NOTIFY contract', { skip }, () => {
  /** Collects the notifications of `channel` on a connection of its own. */
  async function listen(channel: string): Promise<{ got: Record<string, unknown>[]; client: pg.Client }> {
    const client = await pgClient();
    after(() => client.end());
    const got: Record<string, unknown>[] = [];
    client.on('notification', (n) => {
      if (n.channel === channel) got.push(JSON.parse(n.payload ?? 'null') as Record<string, unknown>);
    });
    await client.query(`LISTEN ${channel}`);
    return { got, client };
  }

  test('each committed event notifies errand_events with its request, seq, type, status, operation, node and schema', async () => {
    const { store, schema, cleanup } = await openPgStore({ nodeId: 'node-a:42:abcdef' });
    after(cleanup);
    const { got } = await listen('errand_events');
    const mine = () => got.filter((p) => p.sc === schema);
    const { request } = await store.requestInsert({ request: makeNewRequest({ operation: 'summarize' }) });
    const [claimed] = await store.requestClaim({ owner: 'node-a', now: request.run_at, leaseMs: 30_000, limit: 1 });
    const ref = { id: request.id, attempt: claimed!.request.attempt, owner: 'node-a', now: request.run_at + 1 };
    await store.requestProgress({ ...ref, progress: { percent: 50 } });
    await store.eventAppend({ ...ref, type: 'output', data: 'x'.repeat(20_000) });
    await store.requestComplete({ ...ref, result: 'done' });
    await waitFor(() => mine().length >= 5, { what: 'five notifications', timeoutMs: SAFETY_NET_MS });
    assert.deepEqual(mine(), [
      { r: request.id, s: 1, t: 'status', st: 'pending', o: 'summarize', n: 'node-a:42:abcdef', sc: schema },
      { r: request.id, s: 2, t: 'status', st: 'processing', o: 'summarize', n: 'node-a:42:abcdef', sc: schema },
      { r: request.id, s: 3, t: 'progress', st: 'processing', o: 'summarize', n: 'node-a:42:abcdef', sc: schema },
      { r: request.id, s: 4, t: 'output', st: 'processing', o: 'summarize', n: 'node-a:42:abcdef', sc: schema },
      { r: request.id, s: 5, t: 'status', st: 'completed', o: 'summarize', n: 'node-a:42:abcdef', sc: schema },
    ]);
  });

  test('a rolled-back write notifies nothing', async () => {
    const { store, schema, cleanup } = await openPgStore();
    after(cleanup);
    const { got } = await listen('errand_events');
    const key = { tenant: 'alpha', key: 'k', fingerprint: 'f', expiresAt: T0 + 60_000 };
    // The second insert's transaction fails after its request row (duplicate id in one batch insert) and rolls back.
    const dup = makeNewRequest();
    const batch = {
      id: 'bat_01kf3v6q4c8x0d2m5n7p9r1s3t',
      tenant: 'alpha',
      operation: 'echo',
      concurrency: 1,
      total: 2,
      webhook_url: null,
      metadata: null,
      created_at: T0,
    };
    await assert.rejects(() =>
      store.batchInsert({
        batch,
        requests: [
          { ...dup, batch_id: batch.id },
          { ...dup, batch_id: batch.id },
        ],
      }),
    );
    const { outcome } = await store.requestInsertIdempotent({ request: makeNewRequest(), key });
    assert.equal(outcome, 'created');
    await waitFor(() => got.some((p) => p.sc === schema), { what: 'the committed insert', timeoutMs: SAFETY_NET_MS });
    assert.equal(got.filter((p) => p.sc === schema).length, 1, 'only the committed insert notified');
  });

  test('a delivery falling due notifies errand_deliveries', async () => {
    const { store, schema, cleanup } = await openPgStore({ nodeId: 'node-b' });
    after(cleanup);
    const { got } = await listen('errand_deliveries');
    const { request } = await store.requestInsert({ request: makeNewRequest({ webhook_url: 'https://hooks.example.com/x' }) });
    await store.requestCancel({ id: request.id, now: T0 + 5 });
    const [delivery] = await store.deliveryListForRequest({ requestId: request.id });
    await waitFor(() => got.some((p) => p.sc === schema), { what: 'the delivery notification', timeoutMs: SAFETY_NET_MS });
    assert.deepEqual(
      got.filter((p) => p.sc === schema),
      [{ d: delivery!.id, at: T0 + 5, n: 'node-b', sc: schema }],
    );
  });

  test('application_name keeps at most 63 bytes of the node id, never cutting a character', () => {
    assert.equal(applicationName('short'), 'short');
    const long = `${'é'.repeat(40)}:1:abc`;
    const name = applicationName(long);
    assert.ok(Buffer.byteLength(name) <= 63);
    assert.ok(long.startsWith(name));
  });
});

describe('postgres: the database clock', () => {
  test('dbNow reads the database clock', { skip }, async () => {
    const { store, cleanup } = await openPgStore();
    after(cleanup);
    const before = Date.now();
    const db = await store.dbNow();
    assert.ok(Math.abs(db - before) < 5000, 'this machine and its database agree within seconds');
  });

  test('DatabaseClock follows the database clock, refreshes its offset, and never runs backwards', async () => {
    const local = new ManualClock(T0);
    let dbAhead = 10_000;
    let reads = 0;
    const clock = await DatabaseClock.start({
      local,
      refreshMs: 60_000,
      readDbNow: async () => {
        reads++;
        return local.now() + dbAhead;
      },
    });
    after(() => clock.stop());
    assert.equal(clock.now(), T0 + 10_000);
    dbAhead = 12_000;
    await local.advance(60_000);
    assert.equal(reads, 2, 'refreshed once per refreshMs');
    assert.equal(clock.now(), T0 + 60_000 + 12_000);
    dbAhead = -100_000; // NTP stepped the database clock back
    await local.advance(60_000);
    assert.equal(clock.offsetMs, -100_000);
    assert.equal(clock.now(), T0 + 60_000 + 12_000, 'holds still instead of going back');
    await local.advance(200_000);
    assert.equal(clock.now(), T0 + 320_000 - 100_000);
    assert.equal(reads, 6);
    await clock.stop();
    await local.advance(600_000);
    assert.equal(reads, 6, 'no refresh after stop');
  });

  test('DatabaseClock keeps its offset when a refresh fails or its sample is too slow', async () => {
    const local = new ManualClock(T0);
    const errors: unknown[] = [];
    let mode: 'ok' | 'fail' | 'slow' = 'ok';
    const clock = await DatabaseClock.start({
      local,
      refreshMs: 1000,
      maxRoundTripMs: 100,
      onError: (err) => errors.push(err),
      readDbNow: async () => {
        if (mode === 'fail') throw new ErrandError('store_unavailable');
        if (mode === 'slow') await local.advance(500);
        return local.now() + (mode === 'ok' ? 3000 : 9000);
      },
    });
    after(() => clock.stop());
    assert.equal(clock.offsetMs, 3000);
    mode = 'fail';
    await local.advance(1000);
    assert.equal(errors.length, 1);
    assert.equal(clock.offsetMs, 3000);
    mode = 'slow';
    assert.equal(await clock.refresh(), false);
    assert.equal(clock.offsetMs, 3000);
    await assert.rejects(
      DatabaseClock.start({ local, readDbNow: () => Promise.reject(new ErrandError('store_unavailable')) }),
      (err: unknown) => err instanceof ErrandError,
    );
  });
});
