/**
 * The Store conformance suite: every backend runs exactly these tests
 * (`exerciseStore(makeStore)`), so they behave the same for the engine.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canTransition, REQUEST_STATUSES, type Request, type RequestError, type RequestStatus } from '../../src/model/index.js';
import { storeCommits, type Store } from '../../src/store/index.js';
import { makeNewRequest, T0 } from '../helpers/factories.js';
import { exerciseDeliveries } from './deliveryConformance.js';
import { exerciseRateLimits } from './rateLimitConformance.js';
import { fixedRetry } from './retryPolicies.js';
import { exerciseScans } from './scanConformance.js';

export interface StoreHandle {
  store: Store;
  cleanup: () => Promise<void>;
}

const LEASE = 30_000;
const OWNER = 'node-a';
const boom: RequestError = { type: 'tool_error', message: 'boom', retryable: true };

export function exerciseStore(name: string, makeStore: () => Promise<StoreHandle>): void {
  describe(`Store conformance: ${name}`, () => {
    async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
      const handle = await makeStore();
      try {
        await fn(handle.store);
      } finally {
        await handle.cleanup();
      }
    }

    async function insertAndClaim(store: Store, overrides = {}) {
      const { request } = await store.requestInsert({ request: makeNewRequest(overrides) });
      const claimed = await store.requestClaim({ owner: OWNER, now: request.run_at, leaseMs: LEASE, limit: 1 });
      assert.equal(claimed.length, 1);
      return claimed[0]!.request;
    }

    test('requestInsert stores a pending request with its first event', () =>
      withStore(async (store) => {
        const fresh = makeNewRequest({ input: { text: 'héllo', n: [1, 2] }, metadata: { k: 'v' } });
        const { request, event } = await store.requestInsert({ request: fresh });
        assert.equal(request.status, 'pending');
        assert.equal(request.attempt, 0);
        assert.deepEqual(request.input, { text: 'héllo', n: [1, 2] });
        assert.deepEqual(request.metadata, { k: 'v' });
        assert.equal(request.result, null);
        assert.deepEqual(event, {
          request_id: fresh.id,
          seq: 1,
          type: 'status',
          data: { status: 'pending', attempt: 0 },
          created_at: fresh.created_at,
        });
        const got = await store.requestGetById({ id: fresh.id });
        assert.deepEqual(got, request);
      }));

    test('each write commits once in errand_store_commits_total; reads commit nothing', () =>
      withStore(async (store) => {
        const commits = async () => (await storeCommits.get()).values[0]?.value ?? 0;
        const start = await commits();
        const { request } = await store.requestInsert({ request: makeNewRequest() });
        assert.equal(await commits(), start + 1);
        await store.requestGetById({ id: request.id });
        await store.requestCounts();
        assert.equal(await commits(), start + 1);
        const claimed = await store.requestClaim({ owner: OWNER, now: request.run_at, leaseMs: LEASE, limit: 1 });
        assert.equal(claimed.length, 1);
        assert.ok(await store.requestComplete({ id: request.id, attempt: 1, owner: OWNER, now: request.run_at + 1, result: 1 }));
        assert.equal(await commits(), start + 3);
      }));

    test('concurrent inserts all commit, each with its own first event', () =>
      withStore(async (store) => {
        const fresh = Array.from({ length: 25 }, () => makeNewRequest());
        const results = await Promise.all(fresh.map((request) => store.requestInsert({ request })));
        assert.deepEqual(
          results.map((t) => t.request.id),
          fresh.map((r) => r.id),
        );
        assert.ok(results.every((t) => t.event.seq === 1));
        assert.equal((await store.requestCounts()).pending, 25);
      }));

    test('a duplicate id is refused without affecting inserts committed beside it', () =>
      withStore(async (store) => {
        const first = makeNewRequest();
        await store.requestInsert({ request: first });
        const other = makeNewRequest();
        const [dup, ok] = await Promise.allSettled([
          store.requestInsert({ request: { ...first } }),
          store.requestInsert({ request: other }),
        ]);
        assert.equal(dup.status, 'rejected');
        assert.equal(ok.status, 'fulfilled');
        assert.ok(await store.requestGetById({ id: other.id }));
        assert.equal((await store.requestCounts()).pending, 2);
      }));

    test('the store allows exactly the transitions of the state machine', () =>
      withStore(async (store) => {
        // Bring a fresh request into `from`, then try each store move; it must succeed iff canTransition allows it.
        async function inState(from: RequestStatus): Promise<Request> {
          const { request } = await store.requestInsert({ request: makeNewRequest() });
          if (from === 'pending') return request;
          const [claimed] = await store.requestClaim({ owner: OWNER, now: T0 + 100_000, leaseMs: LEASE, limit: 1 });
          assert.equal(claimed?.request.id, request.id);
          const ref = { id: request.id, attempt: 1, owner: OWNER, now: T0 + 100_001 };
          if (from === 'completed') await store.requestComplete({ ...ref, result: 1 });
          if (from === 'failed') await store.requestFail({ ...ref, error: boom });
          if (from === 'cancelled') await store.requestCancel({ id: request.id, now: ref.now });
          const now = await store.requestGetById({ id: request.id });
          assert.equal(now?.status, from);
          return now as Request;
        }
        const moves: Record<string, { to: RequestStatus; run: (r: Request) => Promise<boolean> }> = {
          claim: {
            to: 'processing',
            run: async (r) =>
              (await store.requestClaim({ owner: OWNER, now: T0 + 200_000, leaseMs: LEASE, limit: 10 })).some((t) => t.request.id === r.id),
          },
          complete: {
            to: 'completed',
            run: async (r) =>
              (await store.requestComplete({ id: r.id, attempt: r.attempt, owner: OWNER, now: T0 + 200_000, result: 2 })) !== null,
          },
          fail: {
            to: 'failed',
            run: async (r) =>
              (await store.requestFail({ id: r.id, attempt: r.attempt, owner: OWNER, now: T0 + 200_000, error: boom })) !== null,
          },
          retry: {
            to: 'pending',
            run: async (r) =>
              (await store.requestRetry({ id: r.id, attempt: r.attempt, owner: OWNER, now: T0 + 200_000, error: boom, runAt: T0 })) !==
              null,
          },
          cancel: {
            to: 'cancelled',
            run: async (r) => (await store.requestCancel({ id: r.id, now: T0 + 200_000 })).outcome === 'cancelled',
          },
          release: {
            to: 'pending',
            run: async (r) => (await store.requestRelease({ id: r.id, attempt: r.attempt, owner: OWNER, now: T0 + 200_000 })) !== null,
          },
        };
        for (const from of REQUEST_STATUSES) {
          for (const [name, move] of Object.entries(moves)) {
            // Clear the queue so a claim only ever sees the request under test.
            for (const p of await store.requestList({ statuses: ['pending'], limit: 100 }))
              await store.requestCancel({ id: p.id, now: T0 });
            const request = await inState(from);
            const happened = await move.run(request);
            assert.equal(happened, canTransition(from, move.to), `${name} from ${from}`);
            assert.equal(
              (await store.requestGetById({ id: request.id }))?.status,
              happened ? move.to : from,
              `${name} from ${from}: state after`,
            );
          }
        }
      }));

    test('requestGetById hides other tenants and unknown ids', () =>
      withStore(async (store) => {
        const { request } = await store.requestInsert({ request: makeNewRequest({ tenant: 'alpha' }) });
        assert.equal((await store.requestGetById({ id: request.id, tenant: 'alpha' }))?.id, request.id);
        assert.equal(await store.requestGetById({ id: request.id, tenant: 'beta' }), null);
        assert.equal(await store.requestGetById({ id: 'req_00000000000000000000000000' }), null);
      }));

    test('requestGetState reads the changing columns only, hiding other tenants and unknown ids', () =>
      withStore(async (store) => {
        const fresh = makeNewRequest({ tenant: 'alpha', input: { big: 'x'.repeat(1000) }, estimated_ms: 1500 });
        await store.requestInsert({ request: fresh });
        assert.deepEqual(await store.requestGetState({ id: fresh.id, tenant: 'alpha' }), {
          id: fresh.id,
          tenant: 'alpha',
          status: 'pending',
          attempt: 0,
          run_at: fresh.run_at,
          created_at: fresh.created_at,
          estimated_ms: 1500,
          started_at: null,
          completed_at: null,
          progress: null,
          error: null,
        });
        assert.equal(await store.requestGetState({ id: fresh.id, tenant: 'beta' }), null);
        assert.equal(await store.requestGetState({ id: 'req_00000000000000000000000000' }), null);
        const running = (await store.requestClaim({ owner: OWNER, now: fresh.run_at, leaseMs: LEASE, limit: 1 }))[0]!.request;
        const ref = { id: running.id, attempt: 1, owner: OWNER, now: T0 + 5 };
        await store.requestProgress({ ...ref, progress: { percent: 40, message: 'Reading' } });
        await store.requestFail({ ...ref, now: T0 + 9, error: boom });
        const state = await store.requestGetState({ id: fresh.id });
        assert.equal(state?.status, 'failed');
        assert.equal(state?.attempt, 1);
        assert.equal(state?.completed_at, T0 + 9);
        assert.deepEqual(state?.progress, { percent: 40, message: 'Reading' });
        assert.deepEqual(state?.error, boom);
        assert.ok(!('input' in state!) && !('result' in state!) && !('metadata' in state!));
      }));

    test('requestClaim takes due requests by priority, then run_at, then id, and starts an attempt', () =>
      withStore(async (store) => {
        const low = (await store.requestInsert({ request: makeNewRequest({ created_at: T0, priority: 0 }) })).request;
        const high = (await store.requestInsert({ request: makeNewRequest({ created_at: T0 + 1, priority: 5 }) })).request;
        const later = (await store.requestInsert({ request: makeNewRequest({ created_at: T0 + 2, run_at: T0 + 60_000 }) })).request;
        const claimed = await store.requestClaim({ owner: OWNER, now: T0 + 10, leaseMs: LEASE, limit: 10 });
        assert.deepEqual(
          claimed.map((t) => t.request.id),
          [high.id, low.id],
        );
        for (const { request, event } of claimed) {
          assert.equal(request.status, 'processing');
          assert.equal(request.attempt, 1);
          assert.equal(request.lease_owner, OWNER);
          assert.equal(request.lease_expires_at, T0 + 10 + LEASE);
          assert.equal(request.started_at, T0 + 10);
          assert.deepEqual(event.data, { status: 'processing', attempt: 1 });
          assert.equal(event.seq, 2);
        }
        assert.deepEqual(await store.requestClaim({ owner: 'node-b', now: T0 + 10, leaseMs: LEASE, limit: 10 }), []);
        const due = await store.requestClaim({ owner: OWNER, now: T0 + 60_000, leaseMs: LEASE, limit: 10 });
        assert.deepEqual(
          due.map((t) => t.request.id),
          [later.id],
        );
      }));

    test('requestClaim respects limit and per-operation limits', () =>
      withStore(async (store) => {
        for (let i = 0; i < 3; i++) await store.requestInsert({ request: makeNewRequest({ operation: 'a' }) });
        for (let i = 0; i < 3; i++) await store.requestInsert({ request: makeNewRequest({ operation: 'b' }) });
        await store.requestInsert({ request: makeNewRequest({ operation: 'c' }) });
        const now = T0 + 1000;
        const first = await store.requestClaim({ owner: OWNER, now, leaseMs: LEASE, limit: 10, operationLimits: { a: 1, b: 0 } });
        const ops = first.map((t) => t.request.operation).sort();
        assert.deepEqual(ops, ['a', 'c']);
        const second = await store.requestClaim({ owner: OWNER, now, leaseMs: LEASE, limit: 2 });
        assert.equal(second.length, 2);
        assert.equal((await store.requestCounts()).processing, 4);
        assert.equal((await store.requestCounts()).pending, 3);
      }));

    test('requestComplete is guarded by attempt and owner, and terminal states never change', () =>
      withStore(async (store) => {
        const running = await insertAndClaim(store);
        const ref = { id: running.id, now: T0 + 100 };
        assert.equal(await store.requestComplete({ ...ref, attempt: 2, owner: OWNER, result: 1 }), null, 'wrong attempt');
        assert.equal(await store.requestComplete({ ...ref, attempt: 1, owner: 'node-b', result: 1 }), null, 'wrong owner');
        const done = await store.requestComplete({ ...ref, attempt: 1, owner: OWNER, result: { text: 'ok' } });
        assert.ok(done);
        assert.equal(done.request.status, 'completed');
        assert.deepEqual(done.request.result, { text: 'ok' });
        assert.equal(done.request.completed_at, T0 + 100);
        assert.equal(done.request.lease_owner, null);
        assert.deepEqual(done.event.data, { status: 'completed', attempt: 1 });
        assert.equal(await store.requestComplete({ ...ref, attempt: 1, owner: OWNER, result: 2 }), null);
        assert.equal(await store.requestFail({ ...ref, attempt: 1, owner: OWNER, error: boom }), null);
        assert.equal(await store.requestRetry({ ...ref, attempt: 1, owner: OWNER, error: boom, runAt: T0 }), null);
        assert.equal(await store.requestProgress({ ...ref, attempt: 1, owner: OWNER, progress: { percent: 1 } }), null);
        const cancel = await store.requestCancel({ id: running.id, now: T0 + 200 });
        assert.equal(cancel.outcome, 'already_finished');
        assert.equal((await store.requestGetById({ id: running.id }))?.status, 'completed');
      }));

    test('writes made together (group commit) keep their own outcomes', () =>
      withStore(async (store) => {
        const [a, b, c] = [await insertAndClaim(store), await insertAndClaim(store), await insertAndClaim(store)];
        const retryAt = T0 + 5000;
        // One turn of the event loop: the store may write them in one transaction, each guarded on its own.
        const [done, stale, failed, retried, again] = await Promise.all([
          store.requestComplete({ id: a.id, attempt: 1, owner: OWNER, now: T0 + 1, result: { n: 'a' } }),
          store.requestComplete({ id: b.id, attempt: 1, owner: 'node-b', now: T0 + 2, result: { n: 'b' } }),
          store.requestFail({ id: b.id, attempt: 1, owner: OWNER, now: T0 + 3, error: boom }),
          store.requestRetry({ id: c.id, attempt: 1, owner: OWNER, now: T0 + 4, error: boom, runAt: retryAt }),
          store.requestComplete({ id: a.id, attempt: 1, owner: OWNER, now: T0 + 5, result: { n: 'twice' } }),
        ]);
        assert.equal(done?.kind, 'completed');
        assert.deepEqual(done?.request.result, { n: 'a' });
        assert.equal(done?.event.created_at, T0 + 1, "each item's own time");
        assert.equal(stale, null, "another owner's outcome is refused");
        assert.equal(failed?.kind, 'failed');
        assert.deepEqual(failed?.request.error, boom);
        assert.equal(retried?.kind, 'retried');
        assert.equal(retried?.request.run_at, retryAt);
        assert.equal(again, null, 'a request completes once, even when both writes are queued together');
        const events = await store.eventListAfter({ id: a.id, afterSeq: 0, limit: 100 });
        assert.deepEqual(
          events.map((e) => (e.data as { status: string }).status),
          ['pending', 'processing', 'completed'],
        );
        // A write that violates a constraint fails alone; the others made with it hold.
        const original = (await store.requestInsert({ request: makeNewRequest() })).request;
        await store.requestInsert({ request: makeNewRequest({ retry_of: original.id }) });
        const inserts = await Promise.allSettled(
          [makeNewRequest(), makeNewRequest({ retry_of: original.id }), makeNewRequest()].map((request) =>
            store.requestInsert({ request }),
          ),
        );
        assert.deepEqual(
          inserts.map((r) => r.status),
          ['fulfilled', 'rejected', 'fulfilled'],
        );
        for (const r of [inserts[0], inserts[2]]) {
          assert.ok(r?.status === 'fulfilled' && (await store.requestGetById({ id: r.value.request.id })));
        }
      }));

    test('a completed request stores a null result as JSON null', () =>
      withStore(async (store) => {
        const running = await insertAndClaim(store);
        const done = await store.requestComplete({ id: running.id, attempt: 1, owner: OWNER, now: T0, result: null });
        assert.equal(done?.request.result, null);
      }));

    test('requestFail records the error', () =>
      withStore(async (store) => {
        const running = await insertAndClaim(store);
        const failed = await store.requestFail({ id: running.id, attempt: 1, owner: OWNER, now: T0 + 5, error: boom });
        assert.equal(failed?.request.status, 'failed');
        assert.deepEqual(failed?.request.error, boom);
        assert.deepEqual(failed?.event.data, { status: 'failed', attempt: 1, error: boom });
      }));

    test('requestRetry returns the request to pending at runAt; the stale attempt can no longer finish it', () =>
      withStore(async (store) => {
        const running = await insertAndClaim(store);
        const retried = await store.requestRetry({ id: running.id, attempt: 1, owner: OWNER, now: T0 + 10, error: boom, runAt: T0 + 2000 });
        assert.equal(retried?.request.status, 'pending');
        assert.equal(retried?.request.run_at, T0 + 2000);
        assert.deepEqual(retried?.request.error, boom);
        assert.equal(await store.requestNextRunAt({ after: T0 + 10 }), T0 + 2000);
        assert.deepEqual(await store.requestClaim({ owner: OWNER, now: T0 + 1999, leaseMs: LEASE, limit: 1 }), []);
        const again = await store.requestClaim({ owner: 'node-b', now: T0 + 2000, leaseMs: LEASE, limit: 1 });
        assert.equal(again[0]?.request.attempt, 2);
        assert.equal(await store.requestComplete({ id: running.id, attempt: 1, owner: OWNER, now: T0 + 2001, result: 'late' }), null);
        const done = await store.requestComplete({ id: running.id, attempt: 2, owner: 'node-b', now: T0 + 2002, result: 'ok' });
        assert.equal(done?.request.status, 'completed');
      }));

    test('requestRelease hands a claimed request back without counting the attempt', () =>
      withStore(async (store) => {
        const running = await insertAndClaim(store);
        assert.equal(
          await store.requestRelease({ id: running.id, attempt: 1, owner: 'node-b', now: T0 + 5 }),
          null,
          'only the claim holder',
        );
        const released = await store.requestRelease({ id: running.id, attempt: 1, owner: OWNER, now: T0 + 5 });
        assert.equal(released?.request.status, 'pending');
        assert.equal(released?.request.attempt, 0);
        assert.equal(released?.request.run_at, T0 + 5);
        assert.equal(released?.request.lease_owner, null);
        assert.deepEqual(released?.event.data, { status: 'pending', attempt: 0, released: true });
        const again = await store.requestClaim({ owner: OWNER, now: T0 + 5, leaseMs: LEASE, limit: 1 });
        assert.equal(again[0]?.request.attempt, 1);
        assert.equal((await store.requestComplete({ id: running.id, attempt: 1, owner: OWNER, now: T0 + 6, result: 'ok' })) !== null, true);
      }));

    test('progress and output are guarded and logged with gapless sequence numbers', () =>
      withStore(async (store) => {
        const running = await insertAndClaim(store);
        const ref = { id: running.id, attempt: 1, owner: OWNER, now: T0 + 1 };
        const p = await store.requestProgress({
          ...ref,
          progress: { percent: 40, message: 'Reading', current_step: 'read', total_steps: 5, completed_steps: 2 },
        });
        assert.deepEqual(p?.request.progress, {
          percent: 40,
          message: 'Reading',
          current_step: 'read',
          total_steps: 5,
          completed_steps: 2,
        });
        const out = await store.eventAppend({ ...ref, type: 'output', data: { text: 'chunk' } });
        assert.equal(out?.seq, 4);
        assert.equal(await store.eventAppend({ ...ref, owner: 'node-b', type: 'output', data: 'x' }), null);
        assert.equal(await store.requestProgress({ ...ref, attempt: 2, progress: { percent: 1 } }), null);
        await store.requestComplete({ ...ref, result: 'done' });
        const events = await store.eventListAfter({ id: running.id, afterSeq: 0, limit: 100 });
        assert.deepEqual(
          events.map((e) => e.seq),
          [1, 2, 3, 4, 5],
        );
        assert.deepEqual(
          events.map((e) => e.type),
          ['status', 'status', 'progress', 'output', 'status'],
        );
        assert.deepEqual(events[3]?.data, { text: 'chunk' });
        assert.deepEqual(
          (await store.eventListAfter({ id: running.id, afterSeq: 3, limit: 1 })).map((e) => e.seq),
          [4],
        );
      }));

    test('requestCancel cancels pending and processing requests once, and respects tenants', () =>
      withStore(async (store) => {
        const pending = (await store.requestInsert({ request: makeNewRequest() })).request;
        const c1 = await store.requestCancel({ id: pending.id, now: T0 + 1 });
        assert.equal(c1.outcome, 'cancelled');
        if (c1.outcome !== 'cancelled') return;
        assert.equal(c1.wasProcessing, false);
        assert.equal(c1.transition.request.status, 'cancelled');
        assert.equal(c1.transition.request.error?.type, 'cancelled');
        assert.deepEqual(await store.requestClaim({ owner: OWNER, now: T0 + 10, leaseMs: LEASE, limit: 5 }), []);
        assert.equal((await store.requestCancel({ id: pending.id, now: T0 + 2 })).outcome, 'already_finished');

        const running = await insertAndClaim(store, { tenant: 'alpha' });
        assert.equal((await store.requestCancel({ id: running.id, tenant: 'beta', now: T0 })).outcome, 'not_found');
        const c2 = await store.requestCancel({ id: running.id, tenant: 'alpha', now: T0 + 3 });
        assert.equal(c2.outcome === 'cancelled' && c2.wasProcessing, true);
        assert.equal(await store.requestComplete({ id: running.id, attempt: 1, owner: OWNER, now: T0 + 4, result: 'late' }), null);
        assert.equal((await store.requestGetById({ id: running.id }))?.status, 'cancelled');
        assert.equal((await store.requestCancel({ id: 'req_00000000000000000000000000', now: T0 })).outcome, 'not_found');
      }));

    test('leaseExtend renews only the current claim', () =>
      withStore(async (store) => {
        const running = await insertAndClaim(store);
        assert.equal(await store.leaseExtend({ id: running.id, attempt: 1, owner: OWNER, now: T0 + 10_000, leaseMs: LEASE }), true);
        assert.equal((await store.requestGetById({ id: running.id }))?.lease_expires_at, T0 + 10_000 + LEASE);
        assert.equal(await store.leaseExtend({ id: running.id, attempt: 1, owner: 'node-b', now: T0, leaseMs: LEASE }), false);
        assert.equal(await store.leaseExtend({ id: running.id, attempt: 2, owner: OWNER, now: T0, leaseMs: LEASE }), false);
      }));

    test('concurrent lease renewals share one commit, each still guarded by its own claim', () =>
      withStore(async (store) => {
        const running = [];
        for (let i = 0; i < 12; i++) running.push(await insertAndClaim(store));
        const commits = async () => (await storeCommits.get()).values[0]?.value ?? 0;
        const start = await commits();
        const now = T0 + 10_000;
        // Every attempt of a node renews its lease each heartbeat; renewals made together commit together.
        const held = await Promise.all([
          ...running.map((r) => store.leaseExtend({ id: r.id, attempt: 1, owner: OWNER, now, leaseMs: LEASE })),
          store.leaseExtend({ id: 'req_00000000000000000000000000', attempt: 1, owner: OWNER, now, leaseMs: LEASE }),
        ]);
        assert.deepEqual(held, [...running.map(() => true), false]);
        assert.equal(await commits(), start + 1);
        for (const r of running) assert.equal((await store.requestGetById({ id: r.id }))?.lease_expires_at, now + LEASE);
        // A stale claim in the same group is refused; the current ones beside it are renewed.
        const [stale, current] = await Promise.all([
          store.leaseExtend({ id: running[0]!.id, attempt: 1, owner: 'node-b', now: now + 1, leaseMs: LEASE }),
          store.leaseExtend({ id: running[1]!.id, attempt: 1, owner: OWNER, now: now + 1, leaseMs: LEASE }),
        ]);
        assert.deepEqual([stale, current], [false, true]);
      }));

    test('leaseRescueExpired retries requests with attempts left and fails exhausted ones', () =>
      withStore(async (store) => {
        const retryable = await insertAndClaim(store, { max_attempts: 3 });
        const exhausted = await insertAndClaim(store, { max_attempts: 1 });
        const fresh = await insertAndClaim(store, { created_at: T0 + 50_000 });
        const now = T0 + LEASE + 5_000; // past the leases of the first two (claimed at T0 + a few ms), not of `fresh`
        const rescued = await store.leaseRescueExpired({ now, limit: 10, retry: fixedRetry(60_000, { echo: 1000 }) });
        const byId = new Map(rescued.map((t) => [t.request.id, t.request]));
        assert.equal(byId.size, 2);
        assert.equal(byId.get(retryable.id)?.status, 'pending');
        assert.equal(byId.get(retryable.id)?.run_at, now + 1000);
        assert.equal(byId.get(retryable.id)?.error?.type, 'lease_expired');
        assert.equal(byId.get(exhausted.id)?.status, 'failed');
        assert.equal(byId.get(exhausted.id)?.error?.type, 'lease_expired');
        assert.equal((await store.requestGetById({ id: fresh.id }))?.status, 'processing');
        // The old owner's late outcome is refused.
        assert.equal(await store.requestComplete({ id: retryable.id, attempt: 1, owner: OWNER, now, result: 'late' }), null);
      }));

    test('leaseRescueExpired with allExcept takes back live leases of other owners only', () =>
      withStore(async (store) => {
        const theirs = await insertAndClaim(store);
        const { request } = await store.requestInsert({ request: makeNewRequest() });
        await store.requestClaim({ owner: 'me', now: request.run_at, leaseMs: LEASE, limit: 1 });
        const rescued = await store.leaseRescueExpired({ now: T0 + 10, limit: 10, allExcept: 'me', retry: fixedRetry(0) });
        assert.deepEqual(
          rescued.map((t) => t.request.id),
          [theirs.id],
        );
        assert.equal((await store.requestGetById({ id: request.id }))?.status, 'processing');
      }));

    test('leaseRescueExpired with deadNodeAfterMs leaves live leases of unregistered owners alone', () =>
      withStore(async (store) => {
        // No node registered a session (SQLite never does; PostgreSQL nodes do through nodeRegister): lease expiry only.
        const live = await insertAndClaim(store);
        const rescued = await store.leaseRescueExpired({ now: T0 + LEASE - 1, limit: 10, deadNodeAfterMs: 0, retry: fixedRetry(0) });
        assert.deepEqual(rescued, []);
        assert.equal((await store.requestGetById({ id: live.id }))?.status, 'processing');
      }));

    test('requestList filters by tenant, status and operation, newest first, paginated by id', () =>
      withStore(async (store) => {
        const ids: string[] = [];
        for (let i = 0; i < 7; i++) {
          const { request } = await store.requestInsert({
            request: makeNewRequest({ tenant: i % 2 ? 'beta' : 'alpha', operation: i < 4 ? 'a' : 'b' }),
          });
          ids.push(request.id);
        }
        const all = await store.requestList({ limit: 100 });
        assert.deepEqual(
          all.map((r) => r.id),
          [...ids].reverse(),
        );
        const alpha = await store.requestList({ tenant: 'alpha', limit: 100 });
        assert.ok(alpha.every((r) => r.tenant === 'alpha'));
        assert.equal(alpha.length, 4);
        assert.equal((await store.requestList({ operation: 'b', limit: 100 })).length, 3);
        const page1 = await store.requestList({ limit: 3 });
        const page2 = await store.requestList({ limit: 3, beforeId: page1[2]!.id });
        const page3 = await store.requestList({ limit: 3, beforeId: page2[2]!.id });
        assert.deepEqual(
          [...page1, ...page2, ...page3].map((r) => r.id),
          [...ids].reverse(),
        );
        await store.requestCancel({ id: ids[0]!, now: T0 });
        assert.deepEqual(
          (await store.requestList({ statuses: ['cancelled'], limit: 10 })).map((r) => r.id),
          [ids[0]],
        );
        assert.equal((await store.requestList({ statuses: ['pending', 'cancelled'], limit: 10 })).length, 7);
      }));

    test('requestPurgeFinished deletes finished requests and their events, never unfinished ones', () =>
      withStore(async (store) => {
        const old = await insertAndClaim(store);
        await store.requestComplete({ id: old.id, attempt: 1, owner: OWNER, now: T0 + 10, result: 1 });
        const recent = await insertAndClaim(store);
        await store.requestComplete({ id: recent.id, attempt: 1, owner: OWNER, now: T0 + 5000, result: 1 });
        const pending = (await store.requestInsert({ request: makeNewRequest({ created_at: T0 - 100_000 }) })).request;
        assert.equal(await store.requestPurgeFinished({ before: T0 + 1000, limit: 10, now: T0 + 9000, tombstoneUntil: T0 + 20_000 }), 1);
        assert.equal(await store.requestGetById({ id: old.id }), null);
        assert.deepEqual(await store.tombstoneGet({ id: old.id, tenant: 'alpha' }), {
          id: old.id,
          tenant: 'alpha',
          status: 'completed',
          completed_at: T0 + 10,
          purged_at: T0 + 9000,
          expires_at: T0 + 20_000,
        });
        assert.equal(await store.tombstoneGet({ id: old.id, tenant: 'beta' }), null, 'tombstones respect tenants');
        assert.equal(await store.tombstonePurgeExpired({ now: T0 + 19_999, limit: 10 }), 0);
        assert.equal(await store.tombstonePurgeExpired({ now: T0 + 20_000, limit: 10 }), 1);
        assert.equal(await store.tombstoneGet({ id: old.id }), null);
        assert.deepEqual(await store.eventListAfter({ id: old.id, afterSeq: 0, limit: 10 }), []);
        assert.ok(await store.requestGetById({ id: recent.id }));
        assert.ok(await store.requestGetById({ id: pending.id }));
      }));

    test('requestInsertIdempotent creates once per tenant and key, and reports fingerprint matches', () =>
      withStore(async (store) => {
        const key = { tenant: 'alpha', key: 'k-1', fingerprint: 'f1', expiresAt: T0 + 86_400_000 };
        const first = await store.requestInsertIdempotent({ request: makeNewRequest({ created_at: T0 }), key });
        assert.equal(first.outcome, 'created');
        if (first.outcome !== 'created') return;
        const replay = await store.requestInsertIdempotent({ request: makeNewRequest({ created_at: T0 + 1 }), key });
        assert.deepEqual(replay.outcome === 'existing' && [replay.request.id, replay.sameFingerprint], [first.transition.request.id, true]);
        const other = await store.requestInsertIdempotent({
          request: makeNewRequest({ created_at: T0 + 2 }),
          key: { ...key, fingerprint: 'f2' },
        });
        assert.equal(other.outcome === 'existing' && other.sameFingerprint, false);
        const otherTenant = await store.requestInsertIdempotent({
          request: makeNewRequest({ created_at: T0 + 3 }),
          key: { ...key, tenant: 'beta' },
        });
        assert.equal(otherTenant.outcome, 'created', 'keys are scoped per tenant');
        // 50 concurrent submissions with one key create exactly one request.
        const burst = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            store.requestInsertIdempotent({ request: makeNewRequest({ created_at: T0 + 10 + i }), key: { ...key, key: 'burst' } }),
          ),
        );
        assert.equal(burst.filter((b) => b.outcome === 'created').length, 1);
        assert.equal(new Set(burst.map((b) => (b.outcome === 'created' ? b.transition.request.id : b.request.id))).size, 1);
        // An expired key is spent: the next use creates a new request.
        const later = await store.requestInsertIdempotent({
          request: makeNewRequest({ created_at: T0 + 86_400_000 }),
          key: { ...key, expiresAt: T0 + 2 * 86_400_000 },
        });
        assert.equal(later.outcome, 'created');
        assert.equal(
          await store.idempotencyPurgeExpired({ now: T0 + 86_400_000, limit: 100 }),
          2,
          "beta's key and the burst key expire; alpha's was renewed",
        );
        assert.equal(await store.idempotencyPurgeExpired({ now: T0 + 2 * 86_400_000, limit: 100 }), 1);
      }));

    test('operationStatsRecord accumulates a decayed histogram per operation', () =>
      withStore(async (store) => {
        assert.equal(await store.operationStatsGet({ operation: 'a' }), null);
        for (let i = 0; i < 10; i++) await store.operationStatsRecord({ operation: 'a', durationsMs: [1000], now: T0 + i, decay: 0.9 });
        const stats = await store.operationStatsGet({ operation: 'a' });
        assert.equal(stats?.histogram.count, 10);
        assert.ok(Math.abs((stats?.histogram.total ?? 0) - (1 - 0.9 ** 10) / (1 - 0.9)) < 1e-6);
        assert.equal(stats?.updated_at, T0 + 9);
        assert.equal(await store.operationStatsGet({ operation: 'b' }), null);
        // Several run times in one call (the estimator's flush) count as if recorded one by one.
        const many = await store.operationStatsRecord({ operation: 'c', durationsMs: Array(10).fill(1000), now: T0 + 9, decay: 0.9 });
        assert.deepEqual(many.histogram, stats?.histogram);
        assert.deepEqual((await store.operationStatsGet({ operation: 'c' }))?.histogram, stats?.histogram);
      }));

    test('requestGetByRetryOf finds the one request that re-runs another', () =>
      withStore(async (store) => {
        const original = (await store.requestInsert({ request: makeNewRequest() })).request;
        assert.equal(await store.requestGetByRetryOf({ id: original.id }), null);
        const rerun = (await store.requestInsert({ request: makeNewRequest({ retry_of: original.id }) })).request;
        assert.equal(rerun.retry_of, original.id);
        assert.equal((await store.requestGetByRetryOf({ id: original.id }))?.id, rerun.id);
        await assert.rejects(
          () => store.requestInsert({ request: makeNewRequest({ retry_of: original.id }) }),
          'at most one re-run per request',
        );
      }));

    test('batches: inserted with their items in one go, read back in order, claimed within their concurrency', () =>
      withStore(async (store) => {
        const batch = {
          id: 'bat_01kf3v6q4c8x0d2m5n7p9r1s3t',
          tenant: 'alpha',
          operation: 'echo',
          concurrency: 2,
          total: 5,
          webhook_url: null,
          metadata: { k: 1 },
          created_at: T0,
        };
        const requests = Array.from({ length: 5 }, (_, i) => makeNewRequest({ created_at: T0 + i, batch_id: batch.id, input: { i } }));
        const { transitions } = await store.batchInsert({ batch, requests });
        assert.equal(transitions.length, 5);
        const other = (await store.requestInsert({ request: makeNewRequest({ created_at: T0 + 10 }) })).request;
        const read = await store.batchGetById({ id: batch.id, tenant: 'alpha' });
        assert.deepEqual(read?.batch, batch);
        assert.deepEqual(
          read?.items.map((r) => r.id),
          requests.map((r) => r.id),
        );
        assert.equal(await store.batchGetById({ id: batch.id, tenant: 'beta' }), null);
        const first = await store.requestClaim({ owner: OWNER, now: T0 + 100, leaseMs: LEASE, limit: 10 });
        const fromBatch = first.filter((t) => t.request.batch_id === batch.id);
        assert.equal(fromBatch.length, 2, 'no more than the batch concurrency in one claim');
        assert.ok(
          first.some((t) => t.request.id === other.id),
          'other work is not held back by a saturated batch',
        );
        assert.deepEqual(
          await store.requestClaim({ owner: OWNER, now: T0 + 100, leaseMs: LEASE, limit: 10 }),
          [],
          'the batch is at its limit',
        );
        const done = fromBatch[0]!.request;
        await store.requestComplete({ id: done.id, attempt: 1, owner: OWNER, now: T0 + 101, result: 1 });
        const next = await store.requestClaim({ owner: OWNER, now: T0 + 102, leaseMs: LEASE, limit: 10 });
        assert.equal(next.length, 1, 'one slot freed, one more item');
        assert.equal(await store.batchPurgeEmpty({ before: T0 + 1_000_000 }), 0, 'a batch with items stays');
      }));

    test('requestNextRunAt and requestCounts reflect pending work', () =>
      withStore(async (store) => {
        assert.equal(await store.requestNextRunAt({ after: 0 }), null);
        assert.deepEqual(await store.requestCounts(), { pending: 0, processing: 0 });
        await store.requestInsert({ request: makeNewRequest({ created_at: T0, run_at: T0 + 500 }) });
        await store.requestInsert({ request: makeNewRequest({ created_at: T0 + 1, run_at: T0 + 1 }) });
        assert.equal(await store.requestNextRunAt({ after: 0 }), T0 + 1);
        assert.equal(await store.requestNextRunAt({ after: T0 + 1 }), T0 + 500, 'strictly after');
        assert.equal(await store.requestNextRunAt({ after: T0 + 500 }), null);
        assert.deepEqual(await store.requestCounts(), { pending: 2, processing: 0 });
        assert.deepEqual(await store.requestCounts({ operation: 'echo' }), { pending: 2, processing: 0 });
        assert.deepEqual(await store.requestCounts({ operation: 'other' }), { pending: 0, processing: 0 });
      }));

    exerciseDeliveries(withStore);
    exerciseRateLimits(withStore);
    exerciseScans(withStore);

    test('close is idempotent', async () => {
      const handle = await makeStore();
      await handle.store.close();
      await handle.store.close();
      await handle.cleanup();
    });
  });
}
