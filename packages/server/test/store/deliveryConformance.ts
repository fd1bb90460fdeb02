/**
 * Store conformance for the webhook outbox (called from conformance.ts, so
 * every backend runs it): deliveries are written with the terminal transition,
 * claimed under a lease, completed / failed / retried with guarded updates,
 * taken back from dead nodes, redelivered, listed, and purged with their request.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Request, RequestError } from '../../src/model/index.js';
import type { Store } from '../../src/store/index.js';
import { makeNewRequest, T0 } from '../helpers/factories.js';
import { fixedRetry } from './retryPolicies.js';

const LEASE = 30_000;
const HOOK = 'https://hooks.example.com/errand';
const outcome = { startedAt: T0, durationMs: 12, statusCode: 200, responseExcerpt: 'ok' };

export function exerciseDeliveries(withStore: (fn: (store: Store) => Promise<void>) => Promise<void>): void {
  async function running(store: Store, overrides: Parameters<typeof makeNewRequest>[0] = {}): Promise<Request> {
    const { request } = await store.requestInsert({ request: makeNewRequest({ webhook_url: HOOK, ...overrides }) });
    const [claimed] = await store.requestClaim({ owner: 'w', now: request.run_at, leaseMs: LEASE, limit: 1 });
    assert.equal(claimed?.request.id, request.id);
    return claimed.request;
  }
  const claimRef = (r: Request, now: number) => ({ id: r.id, attempt: r.attempt, owner: 'w', now });

  test('outbox: every terminal transition of a request with a webhook_url writes one delivery with its payload', () =>
    withStore(async (store) => {
      const a = await running(store, { metadata: { k: 1 } });
      await store.requestComplete({ ...claimRef(a, T0 + 100), result: { text: 'hi' } });
      const b = await running(store);
      const err: RequestError = { type: 'tool_error', message: 'boom', retryable: false };
      await store.requestFail({ ...claimRef(b, T0 + 100), error: err });
      const { request: c } = await store.requestInsert({ request: makeNewRequest({ webhook_url: HOOK }) });
      await store.requestCancel({ id: c.id, now: T0 + 100 });
      const d = await running(store, { max_attempts: 1 });
      await store.leaseRescueExpired({ now: T0 + LEASE * 2, limit: 10, retry: fixedRetry(0) });
      const { request: silent } = await store.requestInsert({ request: makeNewRequest({ webhook_url: null }) });
      await store.requestCancel({ id: silent.id, now: T0 + 100 });

      const [da] = await store.deliveryListForRequest({ requestId: a.id });
      assert.ok(da);
      assert.match(da.id, /^dlv_/);
      assert.equal(da.status, 'pending');
      assert.equal(da.event, 'request.completed');
      assert.equal(da.url, HOOK);
      assert.equal(da.tenant, a.tenant);
      assert.equal(da.next_attempt_at, T0 + 100);
      assert.deepEqual(da.attempts, []);
      const payload = JSON.parse(da.payload) as Record<string, unknown>;
      assert.deepEqual(
        { request_id: payload.request_id, status: payload.status, result: payload.result, metadata: payload.metadata },
        { request_id: a.id, status: 'completed', result: { text: 'hi' }, metadata: { k: 1 } },
      );
      const [db] = await store.deliveryListForRequest({ requestId: b.id });
      assert.deepEqual(JSON.parse(db!.payload).error, err);
      assert.equal((await store.deliveryListForRequest({ requestId: c.id }))[0]?.event, 'request.cancelled');
      const [dd] = await store.deliveryListForRequest({ requestId: d.id });
      assert.equal(JSON.parse(dd!.payload).error.type, 'lease_expired');
      assert.deepEqual(await store.deliveryListForRequest({ requestId: silent.id }), [], 'no webhook_url, no delivery');
    }));

  test('outbox: non-terminal transitions and stale outcomes write nothing', () =>
    withStore(async (store) => {
      const r = await running(store);
      await store.requestRetry({ ...claimRef(r, T0 + 10), error: { type: 'x', message: 'x', retryable: true }, runAt: T0 + 20 });
      assert.equal(await store.requestComplete({ ...claimRef(r, T0 + 30), result: 1 }), null, 'stale claim');
      assert.deepEqual(await store.deliveryListForRequest({ requestId: r.id }), []);
      assert.equal(await store.deliveryNextDueAt(), null);
    }));

  test('deliveryClaim takes due deliveries once, under a lease; deliveryComplete records the attempt', () =>
    withStore(async (store) => {
      const r = await running(store);
      await store.requestComplete({ ...claimRef(r, T0 + 100), result: 1 });
      assert.equal(await store.deliveryNextDueAt(), T0 + 100);
      assert.deepEqual(await store.deliveryClaim({ owner: 'n1', now: T0 + 99, leaseMs: 5000, limit: 10 }), [], 'not due yet');
      const [claimed, ...rest] = await Promise.all([
        store.deliveryClaim({ owner: 'n1', now: T0 + 100, leaseMs: 5000, limit: 10 }),
        store.deliveryClaim({ owner: 'n2', now: T0 + 100, leaseMs: 5000, limit: 10 }),
      ]);
      assert.equal(claimed.length + rest.flat().length, 1, 'one node wins the claim');
      const delivery = [...claimed, ...rest.flat()][0]!;
      const owner = delivery.lease_owner!;
      assert.equal(delivery.status, 'delivering');
      assert.equal(delivery.attempt, 1);
      assert.equal(delivery.lease_expires_at, T0 + 5100);
      assert.equal(await store.deliveryNextDueAt(), T0 + 5100, 'the lease expiry is the next thing due');
      const other = owner === 'n1' ? 'n2' : 'n1';
      assert.equal(
        await store.deliveryComplete({ id: delivery.id, owner: other, attempt: 1, now: T0 + 110, ...outcome }),
        null,
        'not the owner',
      );
      const done = await store.deliveryComplete({ id: delivery.id, owner, attempt: 1, now: T0 + 110, ...outcome });
      assert.equal(done?.status, 'delivered');
      assert.equal(done?.finished_at, T0 + 110);
      assert.equal(done?.next_attempt_at, null);
      assert.equal(await store.deliveryComplete({ id: delivery.id, owner, attempt: 1, now: T0 + 111, ...outcome }), null, 'only once');
      const [listed] = await store.deliveryListForRequest({ requestId: r.id });
      assert.deepEqual(listed?.attempts, [
        { series: 1, attempt: 1, started_at: T0, duration_ms: 12, status_code: 200, error: null, response_excerpt: 'ok' },
      ]);
      assert.equal(await store.deliveryNextDueAt(), null);
    }));

  test('deliveryFail retries at retryAt, or ends the series as failed', () =>
    withStore(async (store) => {
      const r = await running(store);
      await store.requestComplete({ ...claimRef(r, T0 + 100), result: 1 });
      const [first] = await store.deliveryClaim({ owner: 'n1', now: T0 + 100, leaseMs: 5000, limit: 1 });
      const error = { type: 'http_status', message: 'The receiver answered 500' };
      const retrying = await store.deliveryFail({
        id: first!.id,
        owner: 'n1',
        attempt: 1,
        now: T0 + 120,
        ...outcome,
        statusCode: 500,
        error,
        retryAt: T0 + 5000,
      });
      assert.equal(retrying?.status, 'pending');
      assert.equal(retrying?.next_attempt_at, T0 + 5000);
      assert.equal(retrying?.last_status_code, 500);
      assert.deepEqual(retrying?.last_error, error);
      assert.deepEqual(await store.deliveryClaim({ owner: 'n1', now: T0 + 4999, leaseMs: 5000, limit: 1 }), []);
      const [second] = await store.deliveryClaim({ owner: 'n1', now: T0 + 5000, leaseMs: 5000, limit: 1 });
      assert.equal(second?.attempt, 2);
      const gone = { type: 'gone', message: 'The receiver answered 410 Gone' };
      const failed = await store.deliveryFail({
        id: first!.id,
        owner: 'n1',
        attempt: 2,
        now: T0 + 5010,
        ...outcome,
        statusCode: 410,
        error: gone,
        retryAt: null,
      });
      assert.equal(failed?.status, 'failed');
      assert.equal(failed?.finished_at, T0 + 5010);
      const [listed] = await store.deliveryListForRequest({ requestId: r.id });
      assert.deepEqual(
        listed?.attempts.map((a) => [a.attempt, a.status_code, a.error?.type]),
        [
          [1, 500, 'http_status'],
          [2, 410, 'gone'],
        ],
      );
    }));

  test('deliveryRelease gives the attempt back; deliveryRescueExpired takes back dead leases', () =>
    withStore(async (store) => {
      const r = await running(store);
      await store.requestComplete({ ...claimRef(r, T0 + 100), result: 1 });
      const [d] = await store.deliveryClaim({ owner: 'n1', now: T0 + 100, leaseMs: 5000, limit: 1 });
      assert.equal(await store.deliveryRelease({ id: d!.id, owner: 'n2', attempt: 1, now: T0 + 101 }), false);
      assert.equal(await store.deliveryRelease({ id: d!.id, owner: 'n1', attempt: 1, now: T0 + 101 }), true);
      const [again] = await store.deliveryClaim({ owner: 'n1', now: T0 + 101, leaseMs: 5000, limit: 1 });
      assert.equal(again?.attempt, 1, 'a released attempt does not count');
      assert.equal(await store.deliveryRescueExpired({ now: T0 + 5000, limit: 10 }), 0, 'lease still live');
      assert.equal(await store.deliveryRescueExpired({ now: T0 + 5000, limit: 10, allExcept: 'n1' }), 0, 'held by the survivor');
      assert.equal(await store.deliveryRescueExpired({ now: T0 + 5101, limit: 10 }), 1, 'expired');
      assert.equal(
        await store.deliveryComplete({ id: d!.id, owner: 'n1', attempt: 1, now: T0 + 5102, ...outcome }),
        null,
        'the dead claim is stale',
      );
      const [taken] = await store.deliveryClaim({ owner: 'n2', now: T0 + 5101, leaseMs: 5000, limit: 1 });
      assert.equal(taken?.lease_owner, 'n2');
      assert.equal(await store.deliveryRescueExpired({ now: T0 + 5102, limit: 10, allExcept: 'n3' }), 1, 'another owner at start-up');
    }));

  test('deliveryRedeliver starts a new series with the same id and payload, except while sending', () =>
    withStore(async (store) => {
      const r = await running(store);
      await store.requestComplete({ ...claimRef(r, T0 + 100), result: 1 });
      const [d] = await store.deliveryClaim({ owner: 'n1', now: T0 + 100, leaseMs: 5000, limit: 1 });
      const busy = await store.deliveryRedeliver({ id: d!.id, requestId: r.id, now: T0 + 101 });
      assert.equal(busy.outcome, 'in_progress');
      await store.deliveryComplete({ id: d!.id, owner: 'n1', attempt: 1, now: T0 + 110, ...outcome });
      assert.equal((await store.deliveryRedeliver({ id: d!.id, requestId: 'req_other', now: T0 + 200 })).outcome, 'not_found');
      assert.equal((await store.deliveryRedeliver({ id: 'dlv_missing', requestId: r.id, now: T0 + 200 })).outcome, 'not_found');
      const again = await store.deliveryRedeliver({ id: d!.id, requestId: r.id, now: T0 + 200 });
      assert.equal(again.outcome, 'scheduled');
      if (again.outcome !== 'scheduled') return;
      assert.deepEqual(
        [
          again.delivery.id,
          again.delivery.payload,
          again.delivery.status,
          again.delivery.series,
          again.delivery.attempt,
          again.delivery.next_attempt_at,
        ],
        [d!.id, d!.payload, 'pending', 2, 0, T0 + 200],
      );
      const [claimed] = await store.deliveryClaim({ owner: 'n1', now: T0 + 200, leaseMs: 5000, limit: 1 });
      await store.deliveryComplete({ id: d!.id, owner: 'n1', attempt: 1, now: T0 + 210, ...outcome });
      assert.equal(claimed?.series, 2);
      const [listed] = await store.deliveryListForRequest({ requestId: r.id });
      assert.deepEqual(
        listed?.attempts.map((a) => [a.series, a.attempt]),
        [
          [1, 1],
          [2, 1],
        ],
      );
    }));

  test('requestPurgeFinished deletes a request’s deliveries with it', () =>
    withStore(async (store) => {
      const r = await running(store);
      await store.requestComplete({ ...claimRef(r, T0 + 100), result: 1 });
      const [d] = await store.deliveryClaim({ owner: 'n1', now: T0 + 100, leaseMs: 5000, limit: 1 });
      await store.deliveryComplete({ id: d!.id, owner: 'n1', attempt: 1, now: T0 + 110, ...outcome });
      assert.equal(await store.requestPurgeFinished({ before: T0 + 1000, limit: 10, now: T0 + 2000, tombstoneUntil: T0 + 9000 }), 1);
      assert.deepEqual(await store.deliveryListForRequest({ requestId: r.id }), []);
    }));
}
