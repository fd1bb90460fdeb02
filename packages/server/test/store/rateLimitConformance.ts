/** Conformance of `rateLimitTake` (token buckets): the same answers on every backend. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Store } from '../../src/store/index.js';
import { T0 } from '../helpers/factories.js';

export function exerciseRateLimits(withStore: (fn: (store: Store) => Promise<void>) => Promise<void>): void {
  const bucket = { ratePerSec: 10, burst: 3 };

  test('rateLimitTake grants a full burst, refuses the next take, and refills at the rate', () =>
    withStore(async (store) => {
      const take = (now: number, cost = 1, key = 'tenant:a') => store.rateLimitTake({ key, ...bucket, cost, now });
      assert.deepEqual(await take(T0), { allowed: true, remaining: 2, retryAfterMs: 0, resetMs: 100 });
      assert.equal((await take(T0)).remaining, 1);
      assert.deepEqual(await take(T0), { allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 300 });
      assert.deepEqual(
        await take(T0),
        { allowed: false, remaining: 0, retryAfterMs: 100, resetMs: 300 },
        'empty: one token is 100 ms away',
      );
      assert.deepEqual(
        await take(T0, 1, 'tenant:b'),
        { allowed: true, remaining: 2, retryAfterMs: 0, resetMs: 100 },
        'buckets are per key',
      );
      assert.equal((await take(T0 + 50)).allowed, false, 'half a token is not enough');
      assert.deepEqual(await take(T0 + 100), { allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 300 }, 'refused takes cost nothing');
      assert.equal((await take(T0 + 10_000)).remaining, 2, 'refills up to the burst, never past it');
      assert.equal((await take(T0 + 5_000)).remaining, 1, 'a clock going back neither refills nor drains');
    }));

  test('rateLimitTake: a cost above the burst needs a full bucket and leaves it in debt', () =>
    withStore(async (store) => {
      const take = (now: number, cost: number) => store.rateLimitTake({ key: 'tenant:batch', ...bucket, cost, now });
      assert.equal((await take(T0, 1)).allowed, true);
      assert.deepEqual(await take(T0, 5), { allowed: false, remaining: 2, retryAfterMs: 100, resetMs: 100 }, 'waits for a full bucket');
      assert.deepEqual(
        await take(T0 + 100, 5),
        { allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 500 },
        'accepted: 3 − 5 = −2 tokens',
      );
      assert.deepEqual(
        await take(T0 + 200, 1),
        { allowed: false, remaining: 0, retryAfterMs: 200, resetMs: 400 },
        'the debt is paid first',
      );
    }));

  test('rateLimitTake: concurrent takes never grant more than the bucket holds', () =>
    withStore(async (store) => {
      const takes = await Promise.all(
        Array.from({ length: 20 }, () => store.rateLimitTake({ key: 'tenant:race', ratePerSec: 0.001, burst: 5, cost: 1, now: T0 })),
      );
      assert.equal(takes.filter((t) => t.allowed).length, 5);
    }));
}
