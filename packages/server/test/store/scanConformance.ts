/**
 * Store conformance for reads whose cost must not grow with what requests
 * carry, and for retention around webhooks (called from conformance.ts, so
 * every backend runs it):
 * - `requestStatsByOperation` aggregates in the database: counts, bucket
 *   series, the queued series, nearest-rank percentiles, per tenant, bounded;
 * - summary reads (`requestList`, `requestGetSummary`, `batchGetById`) never
 *   return inputs, and leave out results past `resultMaxBytes`;
 * - retention purges batch-level deliveries with their batch and never purges
 *   a request or batch whose delivery is still pending or retrying.
 * Times are explicit (`T0 + …`), never the wall clock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestError } from '../../src/model/index.js';
import type { OperationRequestStats, Store } from '../../src/store/index.js';
import { makeBatch, makeNewRequest, T0 } from '../helpers/factories.js';

const MINUTE = 60_000;
const HOOK = 'https://hooks.example.com/errand';
const boom: RequestError = { type: 'tool_error', message: 'boom', retryable: false };
const attempt = { startedAt: T0, durationMs: 5, statusCode: 500, responseExcerpt: null };

interface Finished {
  tenant?: string;
  operation?: string;
  created: number;
  started: number;
  ended: number;
  outcome?: 'completed' | 'failed';
  input?: unknown;
  result?: unknown;
  webhook_url?: string | null;
  batch_id?: string | null;
}

/** Inserts a request and runs it to its outcome at the given times (nothing else may be pending meanwhile). */
async function finished(store: Store, f: Finished): Promise<string> {
  const fresh = makeNewRequest({
    created_at: f.created,
    tenant: f.tenant ?? 'alpha',
    operation: f.operation ?? 'echo',
    input: f.input ?? {},
    webhook_url: f.webhook_url ?? null,
    batch_id: f.batch_id ?? null,
  });
  await store.requestInsert({ request: fresh });
  const [claimed] = await store.requestClaim({ owner: 'w', now: f.started, leaseMs: 3_600_000, limit: 1 });
  assert.equal(claimed?.request.id, fresh.id);
  const ref = { id: fresh.id, attempt: 1, owner: 'w', now: f.ended };
  if (f.outcome === 'failed') await store.requestFail({ ...ref, error: boom });
  else await store.requestComplete({ ...ref, result: f.result ?? { ok: true } });
  return fresh.id;
}

export function exerciseScans(withStore: (fn: (store: Store) => Promise<void>) => Promise<void>): void {
  test('requestStatsByOperation: counts, series, queue and percentiles of one tenant’s window, computed by the store', () =>
    withStore(async (store) => {
      // Window: [T0, T0 + 60 min), 30 buckets of 2 min.
      await finished(store, { created: T0 + 1000, started: T0 + 2000, ended: T0 + 5000 });
      await finished(store, { created: T0 + 130_000, started: T0 + 250_000, ended: T0 + 260_000 });
      await finished(store, { operation: 'other', created: T0 + 10_000, started: T0 + 11_000, ended: T0 + 12_000, outcome: 'failed' });
      await finished(store, { tenant: 'beta', created: T0 + 1000, started: T0 + 3000, ended: T0 + 4000 });
      await store.requestInsert({ request: makeNewRequest({ created_at: T0 + 100_000 }) });
      await store.requestInsert({ request: makeNewRequest({ created_at: T0 - 10 }) }); // before the window, still open

      const params = { from: T0, to: T0 + 60 * MINUTE, buckets: 30, scanMax: 100 };
      const alpha = await store.requestStatsByOperation({ ...params, tenant: 'alpha' });
      assert.equal(alpha.truncated, false);
      assert.equal(alpha.scanned, 4 + 2, 'four requests in the window, two open');
      assert.deepEqual(
        alpha.operations.map((o) => o.operation),
        ['echo', 'other'],
      );
      const echo = alpha.operations[0]!;
      assert.deepEqual(
        [echo.accepted, echo.completed, echo.failed, echo.cancelled, echo.pending, echo.processing],
        [3, 2, 0, 0, 2, 0],
        'beta’s request is not counted; the old pending one counts as open only',
      );
      assert.deepEqual(echo.duration_ms, { p50: 4000, p95: 130_000, p99: 130_000 });
      assert.deepEqual(echo.run_ms, { p50: 3000, p95: 10_000, p99: 10_000 });
      assert.equal(echo.buckets.length, 30);
      assert.deepEqual(echo.buckets.map((b) => b.completed).slice(0, 4), [1, 0, 1, 0]);
      assert.equal(
        echo.buckets.reduce((n, b) => n + b.completed, 0),
        2,
      );
      assert.deepEqual(
        echo.buckets.map((b) => b.queued),
        [1, 2, ...Array<number>(28).fill(1)],
        'the pending request waits at every bucket end; the second one also at the end of bucket 1',
      );
      const other = alpha.operations[1]!;
      assert.deepEqual([other.accepted, other.failed, other.buckets[0]?.failed, other.duration_ms, other.run_ms], [1, 1, 1, null, null]);

      const all = await store.requestStatsByOperation(params);
      assert.equal(all.operations.find((o) => o.operation === 'echo')?.accepted, 4, 'an admin sees every tenant');
      assert.deepEqual(await store.requestStatsByOperation({ ...params, tenant: 'nobody' }), {
        scanned: 0,
        truncated: false,
        operations: [],
      });

      const capped = await store.requestStatsByOperation({ ...params, tenant: 'alpha', scanMax: 2 });
      assert.equal(capped.truncated, true);
      assert.equal(
        capped.operations.reduce((n: number, o: OperationRequestStats) => n + o.accepted, 0),
        2,
        'only the newest scanMax requests of the window are aggregated',
      );
    }));

  test('requestStatsByOperation: percentiles are nearest-rank', () =>
    withStore(async (store) => {
      for (let i = 0; i < 100; i++) {
        const created = T0 + i * 1000;
        const duration = 1 + ((i * 37) % 100); // 1..100, shuffled
        await finished(store, { operation: 'many', created, started: created, ended: created + duration });
      }
      for (const [i, duration] of [4, 1, 3, 2].entries()) {
        await finished(store, {
          operation: 'four',
          created: T0 + 200_000 + i,
          started: T0 + 200_000 + i,
          ended: T0 + 200_000 + i + duration,
        });
      }
      const stats = await store.requestStatsByOperation({ from: T0, to: T0 + 60 * MINUTE, buckets: 30, scanMax: 1000 });
      const [four, many] = stats.operations;
      assert.deepEqual(many?.duration_ms, { p50: 50, p95: 95, p99: 99 });
      assert.deepEqual(many?.run_ms, { p50: 50, p95: 95, p99: 99 });
      assert.deepEqual(four?.duration_ms, { p50: 2, p95: 4, p99: 4 });
    }));

  test('summary reads never return inputs, and lists leave out results past resultMaxBytes', () =>
    withStore(async (store) => {
      const big = 'x'.repeat(500_000);
      const batch = makeBatch();
      const batchId = batch.id;
      await store.batchInsert({
        batch,
        requests: [makeNewRequest({ created_at: T0, batch_id: batchId, input: { big } })],
      });
      const [item] = await store.requestClaim({ owner: 'w', now: T0 + 1, leaseMs: 60_000, limit: 1 });
      await store.requestComplete({ id: item!.request.id, attempt: 1, owner: 'w', now: T0 + 2, result: { big } });
      const small = await finished(store, { created: T0 + 10, started: T0 + 11, ended: T0 + 12, input: { big }, result: { ok: 1 } });

      const listed = await store.requestList({ limit: 10, resultMaxBytes: 16_384 });
      assert.deepEqual(
        listed.map((r) => r.id),
        [small, item!.request.id],
      );
      for (const r of listed) assert.ok(!('input' in r), 'a list never carries inputs');
      assert.deepEqual([listed[0]?.result, listed[0]?.result_omitted ?? false], [{ ok: 1 }, false]);
      assert.deepEqual([listed[1]?.result, listed[1]?.result_omitted], [null, true], 'a result past the limit is left out, and says so');
      assert.deepEqual((await store.requestList({ limit: 10 }))[1]?.result, { big }, 'no limit: the result is there');

      const summary = await store.requestGetSummary({ id: item!.request.id });
      assert.ok(summary && !('input' in summary));
      assert.deepEqual([summary?.status, summary?.result], ['completed', { big }]);
      assert.equal(await store.requestGetSummary({ id: item!.request.id, tenant: 'beta' }), null);
      assert.equal((await store.requestGetById({ id: small }))?.input !== undefined, true, 'the full read keeps the input (for retries)');

      const read = await store.batchGetById({ id: batchId, resultMaxBytes: 16_384 });
      assert.equal(read?.items.length, 1);
      assert.ok(!('input' in read!.items[0]!));
      assert.equal(read?.items[0]?.result_omitted, true);
    }));

  test('retention keeps a request whose webhook is pending or retrying, and purges it once the delivery ended', () =>
    withStore(async (store) => {
      const id = await finished(store, { created: T0, started: T0 + 1, ended: T0 + 2, webhook_url: HOOK });
      const purge = () => store.requestPurgeFinished({ before: T0 + 10_000, limit: 10, now: T0 + 20_000, tombstoneUntil: T0 + 90_000 });
      assert.equal(await purge(), 0, 'pending delivery');
      const [d] = await store.deliveryClaim({ owner: 'n1', now: T0 + 3, leaseMs: 5000, limit: 1 });
      assert.equal(await purge(), 0, 'delivery being sent');
      await store.deliveryFail({
        id: d!.id,
        owner: 'n1',
        attempt: 1,
        now: T0 + 4,
        ...attempt,
        error: { type: 'http_status', message: '500' },
        retryAt: T0 + 60_000,
      });
      assert.equal(await purge(), 0, 'delivery retrying');
      const [again] = await store.deliveryClaim({ owner: 'n1', now: T0 + 60_000, leaseMs: 5000, limit: 1 });
      await store.deliveryFail({
        id: again!.id,
        owner: 'n1',
        attempt: 2,
        now: T0 + 60_001,
        ...attempt,
        error: { type: 'http_status', message: '500' },
        retryAt: null,
      });
      assert.equal(await purge(), 1, 'the delivery gave up: the request goes, with it');
      assert.equal(await store.requestGetById({ id }), null);
      assert.deepEqual(await store.deliveryListForRequest({ requestId: id }), []);
    }));

  test('retention purges a batch’s own delivery with the batch, never while it is pending or retrying', () =>
    withStore(async (store) => {
      const batch = makeBatch({ total: 2, webhook_url: HOOK });
      const batchId = batch.id;
      const items = [makeNewRequest({ created_at: T0, batch_id: batchId }), makeNewRequest({ created_at: T0 + 1, batch_id: batchId })];
      await store.batchInsert({
        batch,
        requests: items,
      });
      for (const claimed of await store.requestClaim({ owner: 'w', now: T0 + 2, leaseMs: 60_000, limit: 10 })) {
        await store.requestComplete({ id: claimed.request.id, attempt: 1, owner: 'w', now: T0 + 3, result: 1 });
      }
      const [d] = await store.deliveryClaim({ owner: 'n1', now: T0 + 4, leaseMs: 5000, limit: 1 });
      assert.equal(d?.request_id, batchId, 'the batch.completed delivery is filed under the batch');
      await store.deliveryFail({
        id: d!.id,
        owner: 'n1',
        attempt: 1,
        now: T0 + 5,
        ...attempt,
        error: { type: 'http_status', message: '500' },
        retryAt: T0 + 60_000,
      });

      const before = T0 + 10_000;
      assert.equal(
        await store.requestPurgeFinished({ before, limit: 10, now: before, tombstoneUntil: before + 90_000 }),
        2,
        'the items go',
      );
      assert.equal(await store.batchPurgeEmpty({ before }), 0, 'the batch stays while its delivery retries');
      assert.equal((await store.deliveryListForRequest({ requestId: batchId })).length, 1);

      const [again] = await store.deliveryClaim({ owner: 'n1', now: T0 + 60_000, leaseMs: 5000, limit: 1 });
      await store.deliveryComplete({ id: again!.id, owner: 'n1', attempt: 2, now: T0 + 60_001, ...attempt, statusCode: 200 });
      assert.equal(await store.batchPurgeEmpty({ before }), 1);
      assert.equal(await store.batchGetById({ id: batchId }), null);
      assert.deepEqual(await store.deliveryListForRequest({ requestId: batchId }), [], 'the delivery and its payload went with the batch');
    }));
}
