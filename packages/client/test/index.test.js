import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTerminal, REQUEST_STATUSES } from '../dist/index.js';

test('client placeholder exposes the request states', () => {
  assert.deepEqual(REQUEST_STATUSES, ['pending', 'processing', 'completed', 'failed', 'cancelled']);
  assert.equal(isTerminal('completed'), true);
  assert.equal(isTerminal('processing'), false);
});
