/**
 * The `llm` kind against a fake OpenAI-compatible endpoint on 127.0.0.1 that
 * speaks the wire format: SSE `chat.completion.chunk` deltas, a usage chunk,
 * `data: [DONE]`, errors, a stream cut short, a held stream (for cancel) and a
 * non-streamed answer. Driven through /v1/chat and /v1/chat/completions.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { waitFor } from '../helpers/process.js';
import { startKindServer, startUpstream, type KindServer, type Upstream } from './harness.js';

let up: Upstream;
let t: KindServer;

function chunk(res: ServerResponse, delta: Record<string, unknown>, finish: string | null = null) {
  const body = {
    id: 'chatcmpl-fake',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'fake-model-2',
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
  res.write(`data: ${JSON.stringify(body)}\n\n`);
}

before(async () => {
  up = await startUpstream((req, res, raw) => {
    const body = JSON.parse(raw) as { model: string; stream: boolean };
    if (req.url !== '/v1/chat/completions') {
      res.writeHead(404).end();
      return;
    }
    const sse = () => res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    switch (body.model) {
      case 'good':
        if (req.headers.authorization !== 'Bearer sk-test-key') {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"message":"bad key"}}');
          return;
        }
        sse();
        chunk(res, { role: 'assistant', content: '' });
        for (const piece of ['Hel', 'lo', ' world']) chunk(res, { content: piece });
        chunk(res, {}, 'stop');
        res.write(
          `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } })}\n\n`,
        );
        res.end('data: [DONE]\n\n');
        return;
      case 'overloaded':
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"message":"overloaded"}}');
        return;
      case 'unknown-model':
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"model not found"}}');
        return;
      case 'cut':
        sse();
        chunk(res, { content: 'Partial' });
        res.end(); // no finish_reason, no [DONE]
        return;
      case 'held':
        sse();
        chunk(res, { content: 'Thinking' }); // then nothing until the caller hangs up
        return;
      case 'whole':
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            model: 'whole',
            choices: [{ index: 0, message: { role: 'assistant', content: 'All at once' }, finish_reason: 'stop' }],
          }),
        );
        return;
      default:
        res.writeHead(400).end();
    }
  });
  const op = (model: string, extra: Record<string, unknown> = {}) => ({
    llm: { base_url: `${up.url}/v1`, model, ...extra },
    retry: { max_attempts: 1 },
  });
  t = await startKindServer(
    {
      chat: { operation: 'assistant' },
      openai: { models: ['assistant', 'held'] },
      operations: {
        assistant: op('good', { api_key_env: 'FAKE_LLM_KEY', system: 'You are terse.', temperature: 0.2, max_tokens: 50 }),
        nokey: op('good'),
        overloaded: { ...op('overloaded'), retry: { max_attempts: 2, initial_delay: 0.05 } },
        'unknown-model': op('unknown-model'),
        cut: op('cut'),
        held: op('held'),
        whole: op('whole'),
      },
    },
    { FAKE_LLM_KEY: 'sk-test-key' },
  );
});
after(async () => {
  await t?.close();
  await up?.close();
});

describe('llm kind: streaming completions', () => {
  test('POST /v1/chat: token deltas become output chunks; the result has the full text, model and usage', async () => {
    const { status, body } = await t.call('POST', '/v1/chat', { message: 'Say hello' });
    assert.equal(status, 200);
    assert.equal(body.status, 'completed');
    assert.deepEqual(body.result, {
      text: 'Hello world',
      model: 'fake-model-2',
      finish_reason: 'stop',
      usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
    });
    assert.deepEqual(await t.outputs(body.request_id as string), [{ text: 'Hel' }, { text: 'lo' }, { text: ' world' }]);
    const sent = JSON.parse(up.calls.at(-1)?.body ?? '{}') as Record<string, unknown>;
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Say hello' },
    ]);
    assert.equal(sent.stream, true);
    assert.equal(sent.model, 'good');
    assert.equal(sent.temperature, 0.2);
    assert.equal(sent.max_tokens, 50);
  });

  test('POST /v1/chat/completions streaming: the messages go upstream and the deltas come back as chunks', async () => {
    const res = await t.server.app.inject({
      method: 'POST',
      url: '/v1/chat/completions',
      payload: {
        model: 'assistant',
        stream: true,
        messages: [
          { role: 'system', content: 'Be kind.' },
          { role: 'user', content: 'Hi' },
        ],
      },
    });
    assert.equal(res.statusCode, 200);
    const data = res.body
      .split('\n')
      .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
      .map((l) => JSON.parse(l.slice(6)) as { choices: { delta: { content?: string } }[] });
    const text = data.map((d) => d.choices[0]?.delta.content ?? '').join('');
    assert.equal(text, 'Hello world');
    assert.ok(res.body.trimEnd().endsWith('data: [DONE]'));
    const sent = JSON.parse(up.calls.at(-1)?.body ?? '{}') as { messages: unknown[] };
    // The operator's system prompt always leads; the caller's own system message follows it, never replaces it.
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'You are terse.' },
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'Hi' },
    ]);
  });

  test('an endpoint that answers one JSON completion instead of a stream works too', async () => {
    const { body } = await t.call('POST', '/v1/operations/whole?async=false', { message: 'x' });
    assert.equal(body.status, 'completed');
    assert.equal(body.result.text, 'All at once');
    assert.deepEqual(await t.outputs(body.request_id as string), [{ text: 'All at once' }]);
  });
});

describe('llm kind: failures', () => {
  test("no API key configured → the upstream's 401 is upstream_rejected, not retried", async () => {
    const { body } = await t.call('POST', '/v1/operations/nokey?async=false', { message: 'hi' });
    assert.equal(body.status, 'failed');
    assert.equal(body.error.type, 'upstream_rejected');
    assert.equal(body.error.details.status, 401);
  });

  test('503 → upstream_error, retried until attempts run out', async () => {
    const { body } = await t.call('POST', '/v1/operations/overloaded?async=true', { message: 'hi' });
    const final = await t.waitTerminal(body.request_id as string);
    assert.equal(final.error?.type, 'upstream_error');
    assert.equal(final.attempt, 2);
  });

  test("404 for the model → upstream_rejected with the upstream's message in details", async () => {
    const { body } = await t.call('POST', '/v1/operations/unknown-model?async=false', { message: 'hi' });
    assert.equal(body.error.type, 'upstream_rejected');
    assert.match(body.error.details.body as string, /model not found/);
  });

  test('a stream that ends without finish_reason or [DONE] → upstream_error (retryable)', async () => {
    const { body } = await t.call('POST', '/v1/operations/cut?async=false', { message: 'hi' });
    assert.equal(body.error.type, 'upstream_error');
    assert.match(body.error.message as string, /ended its stream/);
  });

  test('input without message or messages → invalid_chat_input naming the field', async () => {
    const { body } = await t.call('POST', '/v1/operations/whole?async=false', { text: 'wrong field' });
    assert.equal(body.error.type, 'invalid_chat_input');
    assert.equal(body.error.details.field, 'message');
    assert.equal(body.error.retryable, false);
  });

  test('cancelling mid-stream aborts the upstream stream', async () => {
    const { body } = await t.call('POST', '/v1/operations/held?async=true', { message: 'think hard' });
    const id = body.request_id as string;
    const aborted = up.aborted();
    await waitFor(async () => (await t.outputs(id)).length > 0, { what: 'the first delta' });
    assert.equal((await t.call('DELETE', `/v1/requests/${id}`)).status, 200);
    await aborted;
    assert.equal((await t.waitTerminal(id)).status, 'cancelled');
  });
});

describe('llm kind: config', () => {
  test('api_key_env naming an unset variable is refused at start-up', () => {
    assert.throws(
      () =>
        loadConfig({
          env: {},
          overrides: { operations: { bot: { llm: { base_url: 'http://127.0.0.1:1/v1', model: 'm', api_key_env: 'MISSING_KEY' } } } },
        }),
      (err: unknown) =>
        err instanceof ConfigError && /operations\.bot\.llm\.api_key_env: environment variable MISSING_KEY is not set/.test(err.message),
    );
  });

  test('the key itself cannot be written in the file', () => {
    assert.throws(
      () =>
        loadConfig({
          env: {},
          overrides: { operations: { bot: { llm: { base_url: 'http://127.0.0.1:1/v1', model: 'm', api_key: 'sk-inline' } } } },
        }),
      (err: unknown) => err instanceof ConfigError && /operations\.bot\.llm\.api_key: unknown key/.test(err.message),
    );
  });
});
