/** The transition rules (src/store/rules.ts) on their own: no store, no clock, no randomness but the one passed in. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { batchDeliveryPayload, deliveryPayload, type Request, type RequestError } from '../../src/model/index.js';
import {
  batchDelivery,
  failureOutcome,
  mayFinishBatch,
  requestDelivery,
  rescueOutcome,
  statusEventData,
  type NewDelivery,
} from '../../src/store/rules.js';
import { makeBatch, makeNewRequest, T0 } from '../helpers/factories.js';
import { fixedPolicy, fixedRetry } from './retryPolicies.js';

const HOOK = 'https://hooks.example.com/errand';
const boom: RequestError = { type: 'tool_error', message: 'boom', retryable: true };

function makeRequest(overrides: Partial<Request> = {}): Request {
  const base = makeNewRequest();
  return {
    ...base,
    status: 'processing',
    progress: null,
    result: null,
    error: null,
    attempt: 1,
    lease_owner: 'node-a',
    lease_expires_at: T0 + 30_000,
    started_at: T0,
    completed_at: null,
    updated_at: T0,
    ...overrides,
  };
}

describe('statusEventData', () => {
  test('records status and attempt, plus what the kind of change adds, in a fixed key order', () => {
    const pending = makeRequest({ status: 'pending', attempt: 0 });
    assert.equal(JSON.stringify(statusEventData(pending, { kind: 'created' })), '{"status":"pending","attempt":0}');
    const processing = makeRequest({ status: 'processing', attempt: 2 });
    assert.equal(JSON.stringify(statusEventData(processing, { kind: 'claimed' })), '{"status":"processing","attempt":2}');
    const completed = makeRequest({ status: 'completed', result: { big: 'x'.repeat(10) } });
    assert.deepEqual(statusEventData(completed, { kind: 'completed' }), { status: 'completed', attempt: 1 });
    const failed = makeRequest({ status: 'failed', error: boom });
    assert.equal(
      JSON.stringify(statusEventData(failed, { kind: 'failed', error: boom })),
      '{"status":"failed","attempt":1,"error":{"type":"tool_error","message":"boom","retryable":true}}',
    );
  });

  test('a retry records its run_at; a rescued lease records only its error', () => {
    const retried = makeRequest({ status: 'pending', error: boom, run_at: T0 + 5000 });
    assert.deepEqual(Object.keys(statusEventData(retried, { kind: 'retried', error: boom, runAt: T0 + 5000 })), [
      'status',
      'attempt',
      'error',
      'run_at',
    ]);
    assert.deepEqual(statusEventData(retried, { kind: 'retried', error: boom, runAt: T0 + 5000 }), {
      status: 'pending',
      attempt: 1,
      error: boom,
      run_at: T0 + 5000,
    });
    assert.deepEqual(statusEventData(retried, { kind: 'retried', error: boom }), { status: 'pending', attempt: 1, error: boom });
  });

  test('a release is marked; a cancellation carries the error the request was left with', () => {
    const released = makeRequest({ status: 'pending', attempt: 0 });
    assert.deepEqual(statusEventData(released, { kind: 'released' }), { status: 'pending', attempt: 0, released: true });
    const cancelledError: RequestError = { type: 'cancelled', message: 'Request cancelled by user', retryable: false };
    const cancelled = makeRequest({ status: 'cancelled', error: cancelledError });
    assert.deepEqual(statusEventData(cancelled, { kind: 'cancelled' }), { status: 'cancelled', attempt: 1, error: cancelledError });
  });
});

describe('failureOutcome', () => {
  const policy = { maxAttempts: 3, initialDelayMs: 1000, maxDelayMs: 60_000, backoffFactor: 2, jitter: 0 };
  const now = T0 + 10_000;

  test('a retryable error with attempts and time left runs again after the backoff', () => {
    const request = makeRequest({ attempt: 2, max_attempts: 3, deadline: now + 60_000 });
    assert.deepEqual(failureOutcome({ request, error: boom, retryAfterMs: undefined, now, policy, random: Math.random }), {
      retry: true,
      delayMs: 2000,
      runAt: now + 2000,
    });
  });

  test("the error's own retry-after wins over the policy", () => {
    const request = makeRequest({ attempt: 1, deadline: now + 60_000 });
    assert.deepEqual(failureOutcome({ request, error: boom, retryAfterMs: 7000, now, policy, random: Math.random }), {
      retry: true,
      delayMs: 7000,
      runAt: now + 7000,
    });
  });

  test('jitter draws from the random source passed in', () => {
    const request = makeRequest({ attempt: 1, deadline: now + 60_000 });
    const jittered = { ...policy, jitter: 0.5 };
    const low = failureOutcome({ request, error: boom, retryAfterMs: undefined, now, policy: jittered, random: () => 0 });
    const high = failureOutcome({ request, error: boom, retryAfterMs: undefined, now, policy: jittered, random: () => 0.99 });
    assert.deepEqual(low, { retry: true, delayMs: 500, runAt: now + 500 });
    assert.deepEqual(high, { retry: true, delayMs: 1490, runAt: now + 1490 });
  });

  test('fails when the error is not retryable, no attempt is left, or the retry would start at or past the deadline', () => {
    const live = makeRequest({ attempt: 1, max_attempts: 3, deadline: now + 60_000 });
    const fatal = { ...boom, retryable: false };
    assert.deepEqual(failureOutcome({ request: live, error: fatal, retryAfterMs: undefined, now, policy, random: Math.random }), {
      retry: false,
    });
    const last = makeRequest({ attempt: 3, max_attempts: 3, deadline: now + 60_000 });
    assert.deepEqual(failureOutcome({ request: last, error: boom, retryAfterMs: undefined, now, policy, random: Math.random }), {
      retry: false,
    });
    const late = makeRequest({ attempt: 1, max_attempts: 3, deadline: now + 1000 });
    assert.deepEqual(failureOutcome({ request: late, error: boom, retryAfterMs: undefined, now, policy, random: Math.random }), {
      retry: false,
    });
    const justInTime = makeRequest({ attempt: 1, max_attempts: 3, deadline: now + 1001 });
    assert.equal(
      failureOutcome({ request: justInTime, error: boom, retryAfterMs: undefined, now, policy, random: Math.random }).retry,
      true,
    );
  });
});

describe('rescueOutcome', () => {
  const now = T0 + 100_000;

  test("retries with attempts and time left, after the operation's delay, with a retryable lease_expired", () => {
    const current = makeRequest({ operation: 'echo', attempt: 1, max_attempts: 3, deadline: now + 1 });
    assert.deepEqual(rescueOutcome(current, now, fixedRetry(60_000, { echo: 1500 })), {
      kind: 'retried',
      runAt: now + 1500,
      error: {
        type: 'lease_expired',
        message: 'The worker running attempt 1 stopped (crash or restart) before it finished',
        retryable: true,
      },
    });
  });

  test('an operation no longer configured gets the fallback policy; jitter uses the random source given', () => {
    const current = makeRequest({ operation: 'gone', attempt: 1, max_attempts: 3 });
    assert.equal((rescueOutcome(current, now, fixedRetry(4000, { echo: 1 })) as { runAt: number }).runAt, now + 4000);
    const jittered = { byOperation: new Map(), fallback: { ...fixedPolicy(1000), jitter: 0.5 }, random: () => 0 };
    assert.equal((rescueOutcome(current, now, jittered) as { runAt: number }).runAt, now + 500);
  });

  test('fails with a non-retryable lease_expired when the attempts or the time are used up', () => {
    const lastAttempt = makeRequest({ attempt: 3, max_attempts: 3, deadline: now + 60_000 });
    assert.deepEqual(rescueOutcome(lastAttempt, now, fixedRetry(0)), {
      kind: 'failed',
      error: {
        type: 'lease_expired',
        message: 'The worker running attempt 3 stopped (crash or restart) before it finished',
        retryable: false,
      },
    });
    const atDeadline = makeRequest({ attempt: 1, max_attempts: 3, deadline: now });
    assert.equal(rescueOutcome(atDeadline, now, fixedRetry(0)).kind, 'failed');
  });
});

/** A delivery with a fresh `dlv_` id and otherwise `expected`. */
function assertDelivery(delivery: NewDelivery | null, expected: Omit<NewDelivery, 'id'>): void {
  assert.ok(delivery);
  assert.match(delivery.id, /^dlv_/);
  assert.deepEqual(delivery, { ...expected, id: delivery.id });
}

describe('the outbox', () => {
  test('a terminal request with a webhook_url gets one delivery of its payload', () => {
    const request = makeRequest({ status: 'completed', result: { text: 'hi' }, webhook_url: HOOK, completed_at: T0 + 5 });
    assertDelivery(requestDelivery(request, T0 + 5), {
      request_id: request.id,
      tenant: request.tenant,
      event: 'request.completed',
      url: HOOK,
      payload: JSON.stringify(deliveryPayload(request)),
      now: T0 + 5,
    });
    assert.equal(requestDelivery(makeRequest({ status: 'failed', error: boom, webhook_url: HOOK }), T0)?.event, 'request.failed');
  });

  test('no delivery before the request ends or without a webhook_url', () => {
    assert.equal(requestDelivery(makeRequest({ status: 'processing', webhook_url: HOOK }), T0), null);
    assert.equal(requestDelivery(makeRequest({ status: 'pending', webhook_url: HOOK }), T0), null);
    assert.equal(requestDelivery(makeRequest({ status: 'completed', webhook_url: null }), T0), null);
  });

  test('only a terminal batch item can finish its batch', () => {
    assert.equal(mayFinishBatch(makeRequest({ status: 'completed', batch_id: 'bat_1' })), true);
    assert.equal(mayFinishBatch(makeRequest({ status: 'pending', batch_id: 'bat_1' })), false);
    assert.equal(mayFinishBatch(makeRequest({ status: 'completed', batch_id: null })), false);
  });

  test('a batch gets its batch.completed delivery once no item is pending or processing', () => {
    const batch = makeBatch({ webhook_url: HOOK, total: 3 });
    assert.equal(batchDelivery(batch, { completed: 2, processing: 1 }, T0 + 9), null);
    assert.equal(batchDelivery(batch, { completed: 2, pending: 1 }, T0 + 9), null);
    const counts = { completed: 2, failed: 1 };
    assertDelivery(batchDelivery(batch, counts, T0 + 9), {
      request_id: batch.id,
      tenant: batch.tenant,
      event: 'batch.completed',
      url: HOOK,
      payload: JSON.stringify(batchDeliveryPayload(batch, counts, T0 + 9)),
      now: T0 + 9,
    });
    assert.equal(batchDelivery(makeBatch({ webhook_url: null }), counts, T0), null);
  });
});
