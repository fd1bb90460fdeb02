/**
 * PostgreSQL across nodes: two stores (two pools, as two nodes have) on one
 * schema claim at the same time; each request is claimed once, and operation
 * and batch limits hold across both. Migrations run concurrently from two
 * stores on a fresh schema apply once.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Request } from '../../src/model/index.js';
import { PostgresStore, type Store } from '../../src/store/index.js';
import { PG_MIGRATIONS } from '../../src/store/postgres/migrations/index.js';
import { makeNewRequest, T0 } from '../helpers/factories.js';
import { dropSchema, freshSchema, openPgStore, PG_URL, pgClient, pgExec, pgSkipReason } from '../helpers/pg.js';

const LEASE = 30_000;
const skip = await pgSkipReason();

/** Two stores on one fresh schema: node-a's and node-b's. */
async function twoNodes(): Promise<{ a: PostgresStore; b: PostgresStore; schema: string }> {
  const first = await openPgStore({ nodeId: 'node-a' });
  const b = new PostgresStore({ url: PG_URL, schema: first.schema, poolSize: 4, nodeId: 'node-b' });
  await b.migrate();
  after(async () => {
    await b.close();
    await first.cleanup();
  });
  return { a: first.store, b, schema: first.schema };
}

async function insertMany(store: Store, n: number, overrides: Parameters<typeof makeNewRequest>[0] = {}): Promise<Request[]> {
  const out: Request[] = [];
  for (let i = 0; i < n; i += 50) {
    const chunk = Array.from({ length: Math.min(50, n - i) }, (_, j) => makeNewRequest({ created_at: T0 + i + j, ...overrides }));
    out.push(...(await Promise.all(chunk.map((request) => store.requestInsert({ request })))).map((t) => t.request));
  }
  return out;
}

describe('postgres: several nodes on one database', { skip }, () => {
  test('concurrent claims from two nodes never claim one request twice', async () => {
    const { a, b } = await twoNodes();
    const inserted = await insertMany(a, 300);
    const claimedBy = new Map<string, string>();
    const doubles: string[] = [];
    async function drain(store: Store, owner: string): Promise<void> {
      for (let round = 0; round < 200; round++) {
        const claimed = await store.requestClaim({ owner, now: T0 + 10_000, leaseMs: LEASE, limit: 7 });
        if (claimed.length === 0 && (await store.requestCounts()).pending === 0) return;
        for (const { request } of claimed) {
          if (claimedBy.has(request.id)) doubles.push(request.id);
          claimedBy.set(request.id, owner);
          assert.equal(request.attempt, 1);
          assert.equal(request.lease_owner, owner);
        }
      }
      throw new Error(`${owner} did not drain the queue in 200 rounds`);
    }
    await Promise.all([drain(a, 'node-a'), drain(b, 'node-b'), drain(a, 'node-a2'), drain(b, 'node-b2')]);
    assert.deepEqual(doubles, []);
    assert.equal(claimedBy.size, inserted.length);
    const owners = new Set(claimedBy.values());
    assert.ok(owners.size >= 2, `work was shared (${[...owners].join(', ')})`);
    assert.deepEqual(await a.requestCounts(), { pending: 0, processing: 300 });
    // Every request logged exactly one claim: seq 2 is its only `processing` event.
    const { rows } = await pgExec(
      `SELECT count(*)::int AS n FROM ${a.settings.schema}.request_events WHERE type = 'status' AND data LIKE '{"status":"processing"%'`,
    );
    assert.equal(rows[0].n, 300);
  });

  test('an operation limit and a batch concurrency hold across two nodes claiming at once', async () => {
    const { a, b, schema } = await twoNodes();
    const LIMIT = 3;
    await insertMany(a, 60, { operation: 'limited' });
    await insertMany(a, 20, { operation: 'free' });
    const batch = {
      id: 'bat_01kf3v6q4c8x0d2m5n7p9r1s3t',
      tenant: 'alpha',
      operation: 'echo',
      concurrency: 2,
      total: 30,
      webhook_url: null,
      metadata: null,
      created_at: T0,
    };
    await a.batchInsert({
      batch,
      requests: Array.from({ length: 30 }, (_, i) => makeNewRequest({ created_at: T0 + 100 + i, batch_id: batch.id })),
    });
    const observer = await pgClient();
    after(() => observer.end());
    let maxLimited = 0;
    let maxBatch = 0;
    async function worker(store: Store, owner: string): Promise<number> {
      const mine = new Map<string, Request>();
      let done = 0;
      for (let round = 0; round < 500; round++) {
        const runningLimited = [...mine.values()].filter((r) => r.operation === 'limited').length;
        const claimed = await store.requestClaim({
          owner,
          now: T0 + 10_000,
          leaseMs: LEASE,
          limit: 4,
          operationLimits: { limited: LIMIT - runningLimited },
        });
        for (const { request } of claimed) mine.set(request.id, request);
        const { rows } = await observer.query(
          `SELECT count(*) FILTER (WHERE operation = 'limited')::int AS limited, count(*) FILTER (WHERE batch_id IS NOT NULL)::int AS batch
           FROM ${schema}.requests WHERE status = 'processing'`,
        );
        maxLimited = Math.max(maxLimited, rows[0].limited);
        maxBatch = Math.max(maxBatch, rows[0].batch);
        // Finish one running request per round, so slots keep freeing up while the other node claims.
        const first = mine.values().next().value;
        if (first) {
          assert.ok(await store.requestComplete({ id: first.id, attempt: first.attempt, owner, now: T0 + 10_001, result: null }));
          mine.delete(first.id);
          done++;
        }
        if (claimed.length === 0 && mine.size === 0 && (await store.requestCounts()).pending === 0) return done;
      }
      throw new Error(`${owner} did not finish in 500 rounds`);
    }
    const [doneA, doneB] = await Promise.all([worker(a, 'node-a'), worker(b, 'node-b')]);
    assert.equal(doneA + doneB, 110, 'every request ran once');
    assert.ok(maxLimited <= LIMIT, `at most ${LIMIT} "limited" requests ran at once across both nodes (saw ${maxLimited})`);
    assert.ok(maxBatch <= 2, `at most the batch concurrency ran at once across both nodes (saw ${maxBatch})`);
    assert.ok(maxLimited >= 2, 'the limit was reached, so the test exercised it');
  });

  test('migrations run at once from two stores on a fresh schema apply once', async () => {
    const schema = freshSchema();
    after(() => dropSchema(schema));
    const stores = [1, 2, 3].map(() => new PostgresStore({ url: PG_URL, schema, poolSize: 2 }));
    after(() => Promise.all(stores.map((s) => s.close())));
    const reports = await Promise.all(stores.map((s) => s.applyMigrations()));
    const versions = PG_MIGRATIONS.map((m) => m.version);
    assert.deepEqual(
      reports.map((r) => r.applied.length).sort(),
      [0, 0, versions.length],
      'one store applied them all, the others found them done',
    );
    assert.ok(reports.every((r) => r.version === Math.max(...versions)));
    const { rows } = await pgExec(`SELECT version FROM ${schema}.errand_migrations ORDER BY version`);
    assert.deepEqual(
      rows,
      versions.map((version) => ({ version })),
    );
    assert.deepEqual((await stores[0]!.applyMigrations()).applied, [], 'idempotent');
    const { request } = await stores[1]!.requestInsert({ request: makeNewRequest() });
    assert.equal((await stores[2]!.requestGetById({ id: request.id }))?.status, 'pending');
  });
});
