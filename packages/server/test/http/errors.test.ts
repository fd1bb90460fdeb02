/**
 * Rejected input and failing operations: every error answers with the one
 * envelope `{error: {type, message, retryable, field?}}` and the catalog status,
 * a rejected submission stores nothing, and a failing handler never takes the
 * server down.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions } from 'fastify';
import { errorOf, json, listAllIds, startHttpServer, type TestHttpServer } from '../helpers/http.js';

let t: TestHttpServer;
let noChat: TestHttpServer;
before(async () => {
  t = await startHttpServer({ overrides: { server: { body_limit: '1kb' } } });
  noChat = await startHttpServer({ chatOperation: null });
});
after(async () => {
  await t?.close();
  await noChat?.close();
});

interface Rejection {
  name: string;
  request: InjectOptions;
  status: number;
  type: string;
  field?: string;
}

const form = { 'content-type': 'application/x-www-form-urlencoded' };

const REJECTIONS: Rejection[] = [
  {
    name: 'malformed JSON (chat)',
    request: { method: 'POST', url: '/v1/chat', headers: { 'content-type': 'application/json' }, payload: '{"message": ' },
    status: 400,
    type: 'invalid_json',
  },
  {
    name: 'malformed JSON (operation)',
    request: { method: 'POST', url: '/v1/operations/echo', headers: { 'content-type': 'application/json' }, payload: '{oops}' },
    status: 400,
    type: 'invalid_json',
  },
  {
    name: 'malformed JSON sent as form (trigger)',
    request: { method: 'POST', url: '/v1/triggers/echo-trigger', headers: form, payload: '{"data": {"a": }' },
    status: 400,
    type: 'invalid_json',
  },
  {
    name: 'chat without message',
    request: { method: 'POST', url: '/v1/chat', payload: { text: 'hi' } },
    status: 422,
    type: 'validation_error',
    field: 'message',
  },
  { name: 'chat with no body', request: { method: 'POST', url: '/v1/chat' }, status: 422, type: 'validation_error', field: 'message' },
  {
    name: 'chat message not a string',
    request: { method: 'POST', url: '/v1/chat', payload: { message: 42 } },
    status: 422,
    type: 'validation_error',
    field: 'message',
  },
  {
    name: 'chat message empty',
    request: { method: 'POST', url: '/v1/chat', payload: { message: '' } },
    status: 422,
    type: 'validation_error',
    field: 'message',
  },
  {
    name: 'chat async not boolean',
    request: { method: 'POST', url: '/v1/chat', payload: { message: 'hi', async: 'yes' } },
    status: 422,
    type: 'validation_error',
    field: 'async',
  },
  {
    name: 'chat body is an array',
    request: { method: 'POST', url: '/v1/chat', payload: '[1,2]', headers: { 'content-type': 'application/json' } },
    status: 422,
    type: 'validation_error',
  },
  {
    name: 'chat webhook_url not http(s)',
    request: { method: 'POST', url: '/v1/chat', payload: { message: 'hi', async: true, webhook_url: 'ftp://example.com/hook' } },
    status: 422,
    type: 'validation_error',
    field: 'webhook_url',
  },
  {
    name: 'chat webhook_url not a URL',
    request: { method: 'POST', url: '/v1/chat', payload: { message: 'hi', webhook_url: 'not a url' } },
    status: 422,
    type: 'validation_error',
    field: 'webhook_url',
  },
  {
    name: 'trigger webhook_url not http(s)',
    request: { method: 'POST', url: '/v1/triggers/echo-trigger', payload: { data: {}, webhook_url: 'javascript:alert(1)' } },
    status: 422,
    type: 'validation_error',
    field: 'webhook_url',
  },
  {
    name: 'trigger use_async not boolean',
    request: { method: 'POST', url: '/v1/triggers/echo-trigger', payload: { data: {}, use_async: 'no' } },
    status: 422,
    type: 'validation_error',
    field: 'use_async',
  },
  {
    name: 'operation ?webhook_url not http(s)',
    request: { method: 'POST', url: '/v1/operations/echo?webhook_url=file%3A%2F%2F%2Fetc%2Fpasswd', payload: {} },
    status: 400,
    type: 'invalid_parameter',
    field: 'webhook_url',
  },
  {
    name: 'operation ?async not boolean',
    request: { method: 'POST', url: '/v1/operations/echo?async=maybe', payload: {} },
    status: 400,
    type: 'invalid_parameter',
    field: 'async',
  },
  {
    name: 'unknown operation',
    request: { method: 'POST', url: '/v1/operations/nope', payload: {} },
    status: 404,
    type: 'operation_not_found',
  },
  {
    name: 'unknown bot action',
    request: { method: 'POST', url: '/v1/bots/b1/actions/nope', payload: {} },
    status: 404,
    type: 'operation_not_found',
  },
  {
    name: 'operation name not a name',
    request: { method: 'POST', url: '/v1/operations/bad%24name', payload: {} },
    status: 404,
    type: 'operation_not_found',
  },
  {
    name: 'unknown trigger',
    request: { method: 'POST', url: '/v1/triggers/nope', payload: { data: {} } },
    status: 404,
    type: 'trigger_not_found',
  },
  {
    name: 'prototype key as trigger',
    request: { method: 'POST', url: '/v1/triggers/constructor', payload: { data: {} } },
    status: 404,
    type: 'trigger_not_found',
  },
  {
    name: 'oversized body (chat)',
    request: { method: 'POST', url: '/v1/chat', payload: { message: 'x'.repeat(2000) } },
    status: 413,
    type: 'payload_too_large',
  },
  {
    name: 'oversized body (operation, form)',
    request: { method: 'POST', url: '/v1/operations/echo', headers: form, payload: JSON.stringify({ blob: 'y'.repeat(4000) }) },
    status: 413,
    type: 'payload_too_large',
  },
  { name: 'unknown route', request: { method: 'GET', url: '/v1/nothing-here' }, status: 404, type: 'route_not_found' },
  {
    name: 'unknown route outside /v1',
    request: { method: 'POST', url: '/chat', payload: { message: 'x' } },
    status: 404,
    type: 'route_not_found',
  },
];

describe('rejected requests', () => {
  for (const rejection of REJECTIONS) {
    test(`${rejection.name} → ${rejection.status} ${rejection.type}`, async () => {
      const before = await listAllIds(t);
      const res = await t.inject(rejection.request);
      assert.equal(res.statusCode, rejection.status, res.body);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      const error = errorOf(res);
      assert.equal(error.type, rejection.type);
      assert.equal(error.retryable, false);
      assert.ok(error.message.length > 0);
      if (rejection.field !== undefined) assert.equal(error.field, rejection.field);
      const afterIds = await listAllIds(t);
      assert.deepEqual(afterIds, before, 'nothing was stored');
    });
  }

  test('chat with no chat.operation configured → 404 chat_not_configured', async () => {
    const before = await listAllIds(noChat);
    const res = await noChat.inject({ method: 'POST', url: '/v1/chat', payload: { message: 'hi' } });
    assert.equal(res.statusCode, 404, res.body);
    const error = errorOf(res);
    assert.equal(error.type, 'chat_not_configured');
    assert.equal(error.retryable, false);
    assert.deepEqual(await listAllIds(noChat), before);
  });

  test('a body just under the limit is accepted', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/operations/echo?async=false', payload: { s: 'z'.repeat(900) } });
    assert.equal(res.statusCode, 200, res.body);
  });
});

describe('failing operations', () => {
  test('a handler that throws non-retryable → failed with its type, attempt 1', async () => {
    const res = await t.inject({ method: 'POST', url: '/v1/operations/fail?async=false', payload: {} });
    assert.equal(res.statusCode, 200, res.body);
    const body = json(res);
    assert.equal(body.status, 'failed');
    assert.equal(body.error.type, 'tool_error');
    assert.equal(body.error.retryable, false);
    assert.equal(typeof body.error.message, 'string');
    assert.equal(body.attempt, 1);
  });

  for (const op of ['bigint', 'cycle']) {
    test(`a handler returning a non-JSON value (${op}) → failed invalid_result; the server stays up`, async () => {
      const res = await t.inject({ method: 'POST', url: `/v1/operations/${op}`, payload: {} });
      assert.equal(res.statusCode, 202, res.body);
      const id = json(res).request_id as string;
      const done = await t.waitTerminal(id);
      assert.equal(done.status, 'failed');
      const status = await t.inject({ method: 'GET', url: `/v1/requests/${id}` });
      assert.equal(status.statusCode, 200, status.body);
      const body = json(status);
      assert.equal(body.status, 'failed');
      assert.equal(body.error.type, 'invalid_result');
      assert.equal(body.error.retryable, false);

      const sync = await t.inject({ method: 'POST', url: `/v1/operations/${op}?async=false`, payload: {} });
      assert.equal(sync.statusCode, 200, sync.body);
      assert.equal(json(sync).error.type, 'invalid_result');

      const next = await t.inject({ method: 'POST', url: '/v1/chat', payload: { message: 'still alive' } });
      assert.equal(next.statusCode, 200, next.body);
      assert.equal(json(next).status, 'completed');
      const health = await t.inject({ method: 'GET', url: '/health' });
      assert.equal(health.statusCode, 200);
    });
  }
});
