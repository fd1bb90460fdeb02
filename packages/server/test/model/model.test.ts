import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { retryDelayMs } from '../../src/engine/index.js';
import {
  canTransition,
  classifyFailure,
  ERROR_CATALOG,
  ErrandError,
  isRequestId,
  isTerminal,
  newRequestId,
  REQUEST_STATUSES,
  RequestFailure,
  type RequestStatus,
} from '../../src/model/index.js';

describe('state machine', () => {
  const allowed: Record<RequestStatus, RequestStatus[]> = {
    pending: ['processing', 'cancelled'],
    processing: ['completed', 'failed', 'cancelled', 'pending'],
    completed: [],
    failed: [],
    cancelled: [],
  };
  for (const from of REQUEST_STATUSES) {
    for (const to of REQUEST_STATUSES) {
      const expected = allowed[from].includes(to);
      test(`${from} → ${to} is ${expected ? 'allowed' : 'forbidden'}`, () => assert.equal(canTransition(from, to), expected));
    }
  }
  test('exactly completed, failed and cancelled are terminal', () => {
    assert.deepEqual(REQUEST_STATUSES.filter(isTerminal), ['completed', 'failed', 'cancelled']);
  });
});

describe('request ids', () => {
  test('are req_ + a lowercase ULID and sort by creation time', () => {
    const a = newRequestId(1_000);
    const b = newRequestId(2_000);
    const c = newRequestId(2_000);
    assert.ok(isRequestId(a) && isRequestId(b) && isRequestId(c));
    assert.ok(a < b && b < c, 'time-ordered and monotonic within a millisecond');
    assert.equal(isRequestId('req_abc123'), false);
    assert.equal(isRequestId('../etc/passwd'), false);
  });
});

describe('classifyFailure (the one retry rule)', () => {
  test('an explicit retryable flag wins', () => {
    assert.deepEqual(classifyFailure(RequestFailure.retryable('rate limited', { type: 'tool_error' })).error, {
      type: 'tool_error',
      message: 'rate limited',
      retryable: true,
    });
    assert.equal(classifyFailure(RequestFailure.nonRetryable('bad')).error.retryable, false);
    assert.equal(classifyFailure(Object.assign(new TypeError('x'), { retryable: true })).error.retryable, true);
    assert.deepEqual(classifyFailure({ message: 'plain object', retryable: true, type: 'quota' }).error, {
      type: 'quota',
      message: 'plain object',
      retryable: true,
    });
  });
  test('programming errors are not retried; other errors are', () => {
    for (const E of [TypeError, ReferenceError, SyntaxError, RangeError])
      assert.equal(classifyFailure(new E('bug')).error.retryable, false);
    assert.equal(classifyFailure(new Error('network')).error.retryable, true);
    // Not written for the tenant (no `retryable`): its text stays in the log (see test/abuse/error-leaks.test.ts).
    assert.doesNotMatch(classifyFailure('a string').error.message, /a string/);
    assert.equal(classifyFailure(42).error.type, 'handler_error');
  });
  test('an unusable type falls back to handler_error; retryAfterMs and details are kept', () => {
    const c = classifyFailure(
      Object.assign(new Error('x'), { type: 'Not A Type!', retryable: true, retryAfterMs: 250, details: { a: 1 } }),
    );
    assert.equal(c.error.type, 'handler_error');
    assert.equal(c.retryAfterMs, 250);
    assert.deepEqual(c.error.details, { a: 1 });
  });
});

describe('retryDelayMs', () => {
  const policy = { maxAttempts: 10, initialDelayMs: 1000, maxDelayMs: 60_000, backoffFactor: 2, jitter: 0 };
  test('doubles from initial_delay up to max_delay (seed defaults)', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((a) => retryDelayMs(policy, a)),
      [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000],
    );
  });
  test('jitter spreads the delay within ±jitter and never past max_delay', () => {
    const jittered = { ...policy, jitter: 0.1 };
    assert.equal(
      retryDelayMs(jittered, 1, () => 0),
      900,
    );
    assert.equal(
      retryDelayMs(jittered, 1, () => 0.5),
      1000,
    );
    assert.equal(
      retryDelayMs(jittered, 10, () => 0.999),
      60_000,
    );
  });
});

describe('error catalog', () => {
  test('every entry has a snake_case type, an HTTP status and a message', () => {
    for (const [type, entry] of Object.entries(ERROR_CATALOG)) {
      assert.match(type, /^[a-z][a-z_]+$/);
      assert.ok(entry.status >= 400 && entry.status < 600, type);
      assert.ok(entry.message.length > 10, type);
    }
  });
  test('ErrandError renders the envelope with field and details', () => {
    const err = new ErrandError('validation_error', 'message: is required', { field: 'message', details: { issues: [] } });
    assert.equal(err.status, 422);
    assert.deepEqual(err.toEnvelope(), {
      error: { type: 'validation_error', message: 'message: is required', field: 'message', issues: [], retryable: false },
    });
  });
});

describe('duration histogram', () => {
  test('quantiles come within 5% of the recorded durations', async () => {
    const { emptyHistogram, histogramAdd, histogramQuantile } = await import('../../src/model/index.js');
    let h = emptyHistogram();
    assert.equal(histogramQuantile(h, 0.5), null);
    for (const ms of [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10_000]) h = histogramAdd(h, ms, 1);
    const p50 = histogramQuantile(h, 0.5) ?? 0;
    const p90 = histogramQuantile(h, 0.9) ?? 0;
    assert.ok(Math.abs(p50 - 5000) / 5000 < 0.05, `p50 ${p50}`);
    assert.ok(Math.abs(p90 - 9000) / 9000 < 0.05, `p90 ${p90}`);
  });
  test('decay lets recent durations win: an operation that got slower is estimated slower', async () => {
    const { emptyHistogram, histogramAdd, histogramQuantile } = await import('../../src/model/index.js');
    let h = emptyHistogram();
    for (let i = 0; i < 50; i++) h = histogramAdd(h, 200);
    for (let i = 0; i < 40; i++) h = histogramAdd(h, 60_000);
    assert.ok((histogramQuantile(h, 0.5) ?? 0) > 50_000, 'after 40 slow runs, the median is slow');
    assert.equal(h.count, 90);
  });
  test('formatEstimate gives a human range', async () => {
    const { formatEstimate } = await import('../../src/engine/index.js');
    assert.equal(formatEstimate({ lowMs: 45_000, highMs: 60_000 }), '45-60 seconds');
    assert.equal(formatEstimate({ lowMs: 100, highMs: 900 }), 'under a second');
    assert.equal(formatEstimate({ lowMs: 150_000, highMs: 200_000 }), '2-4 minutes');
  });
});

describe('network errors', () => {
  test('fetch failures reported as TypeError with a system cause are retried', () => {
    const err = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    assert.equal(classifyFailure(err).error.retryable, true);
  });
});

describe('engine events', () => {
  test('a rescued lease reaches per-request subscribers once, as its status event', async () => {
    const { EngineEvents } = await import('../../src/engine/index.js');
    const events = new EngineEvents();
    const seen: number[] = [];
    events.onRequest('req_x', ({ event }) => seen.push(event.seq));
    let changed = 0;
    events.on('request:changed', () => (changed += 1));
    const payload = {
      request: { id: 'req_x' } as never,
      event: { request_id: 'req_x', seq: 3, type: 'status' as const, data: { status: 'pending' }, created_at: 0 },
    };
    events.emit('lease:expired', payload);
    events.emit('request:retrying', payload);
    assert.deepEqual(seen, [3]);
    assert.equal(changed, 1);
  });
});
