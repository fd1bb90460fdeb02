/**
 * The OpenAI-compatible endpoints, called the way users call them: the official
 * `openai` package against a real listening server on 127.0.0.1 (streaming and
 * not), plus raw HTTP for the exact wire format of a stream and for the error
 * envelope. Test operations that `ctx.emit({ text })` several chunks are
 * written next to the helper's own.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI, { APIError } from 'openai';
import { loadConfig, ConfigError } from '../../src/config/index.js';
import { json, listAllIds, startHttpServer, type TestHttpServer } from '../helpers/http.js';

const ID = /^req_[0-9a-z]{26}$/;

/** Extra operations: `words` streams its answer word by word; `quiet` emits nothing; `shape` answers without `text`. */
const OPERATIONS: Record<string, string> = {
  'words.mjs': `export default {
  async run(input, ctx) {
    const text = 'You said: ' + input.message;
    const parts = text.split(/(?<= )/);
    for (const part of parts) await ctx.emit({ text: part });
    await ctx.emit({ note: 'not text, not streamed' });
    return { text, parts: parts.length, model: input.model, user: input.user ?? null, history: input.messages.length };
  },
};
`,
  'quiet.mjs': `export default { async run(input) { return { text: 'quiet answer to ' + input.message }; } };\n`,
  'shape.mjs': `export default { async run() { return { answer: 42 }; } };\n`,
};
const EXPOSED = ['words', 'quiet', 'shape', 'fail', 'slow'];

let opsDir: string;
let t: TestHttpServer;
let baseURL: string;
let client: OpenAI;

function extraOperations(): Record<string, unknown> {
  const operations: Record<string, unknown> = {};
  for (const file of Object.keys(OPERATIONS)) operations[file.replace('.mjs', '')] = { module: join(opsDir, file) };
  return operations;
}

before(async () => {
  opsDir = mkdtempSync(join(tmpdir(), 'errand-openai-ops-'));
  for (const [file, source] of Object.entries(OPERATIONS)) writeFileSync(join(opsDir, file), source);
  t = await startHttpServer({ overrides: { operations: extraOperations(), openai: { models: EXPOSED } } });
  const url = await t.server.listen(0);
  baseURL = `${url}/v1`;
  assert.match(baseURL, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  client = new OpenAI({ apiKey: 'any-key-works-with-auth-off', baseURL, maxRetries: 0 });
});
after(async () => {
  await t?.close();
  rmSync(opsDir, { recursive: true, force: true });
});

describe('POST /v1/chat/completions (openai package)', () => {
  test('non-streaming: the operation answers; id, model, usage and x-request-id follow OpenAI', async () => {
    const { data, response } = await client.chat.completions
      .create({
        model: 'words',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'first question' },
          { role: 'assistant', content: 'first answer' },
          { role: 'user', content: 'hello there' },
        ],
        temperature: 0.2,
        max_tokens: 50,
        user: 'user-7',
      })
      .withResponse();
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.model, 'words');
    assert.equal(data.choices.length, 1);
    assert.equal(data.choices[0]?.message.role, 'assistant');
    assert.equal(data.choices[0]?.message.content, 'You said: hello there');
    assert.equal(data.choices[0]?.finish_reason, 'stop');
    assert.ok(Number.isInteger(data.created) && data.created > 1_600_000_000);
    const requestId = response.headers.get('x-request-id') ?? '';
    assert.match(requestId, ID);
    assert.equal(data.id, `chatcmpl-${requestId}`);
    assert.ok(data.usage && data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0);
    assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);

    // The request is an ordinary Errand request: the operation saw the last user message, the history and the user.
    const res = await t.inject({ method: 'GET', url: `/v1/requests/${requestId}` });
    assert.equal(res.statusCode, 200);
    const status = json(res);
    assert.equal(status.status, 'completed');
    assert.deepEqual(status.result, { text: 'You said: hello there', parts: 4, model: 'words', user: 'user-7', history: 4 });
  });

  test('content parts are joined into the message text', async () => {
    const completion = await client.chat.completions.create({
      model: 'quiet',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'part one, ' },
            { type: 'text', text: 'part two' },
          ],
        },
      ],
    });
    assert.equal(completion.choices[0]?.message.content, 'quiet answer to part one, part two');
  });

  test('a result without text is answered as JSON', async () => {
    const completion = await client.chat.completions.create({ model: 'shape', messages: [{ role: 'user', content: 'q' }] });
    assert.deepEqual(JSON.parse(completion.choices[0]?.message.content ?? ''), { answer: 42 });
  });

  test('streaming: the deltas join to the full answer, one chunk per emit, ending with stop', async () => {
    const stream = await client.chat.completions.create({
      model: 'words',
      messages: [{ role: 'user', content: 'stream this please' }],
      stream: true,
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.length >= 3, `got ${chunks.length} chunks`);
    const first = chunks[0];
    const last = chunks[chunks.length - 1];
    assert.equal(first?.choices[0]?.delta.role, 'assistant');
    assert.equal(last?.choices[0]?.finish_reason, 'stop');
    assert.deepEqual(last?.choices[0]?.delta, {});
    for (const chunk of chunks.slice(0, -1)) assert.equal(chunk.choices[0]?.finish_reason, null);
    const contents = chunks.map((c) => c.choices[0]?.delta.content ?? '').filter((c) => c !== '');
    assert.deepEqual(contents, ['You ', 'said: ', 'stream ', 'this ', 'please']);
    assert.equal(contents.join(''), 'You said: stream this please');
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
    assert.match(first?.id ?? '', /^chatcmpl-req_/);
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'words'));
  });

  test('streaming an operation that emits nothing sends its result text as one chunk', async () => {
    const stream = await client.chat.completions.create({ model: 'quiet', messages: [{ role: 'user', content: 'hush' }], stream: true });
    const contents: string[] = [];
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta.content;
      if (content) contents.push(content);
    }
    assert.deepEqual(contents, ['quiet answer to hush']);
  });

  test('stream_options.include_usage adds a usage chunk with no choices', async () => {
    const stream = await client.chat.completions.create({
      model: 'quiet',
      messages: [{ role: 'user', content: 'count me' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks[chunks.length - 1];
    assert.deepEqual(last?.choices, []);
    assert.ok(last?.usage && last.usage.total_tokens === last.usage.prompt_tokens + last.usage.completion_tokens);
  });

  test('Idempotency-Key: a repeated stream is replayed from the event log, same request, same chunks', async () => {
    const body = { model: 'words', messages: [{ role: 'user' as const, content: 'once only' }], stream: true as const };
    const collect = async () => {
      const { data: stream, response } = await client.chat.completions
        .create(body, { headers: { 'Idempotency-Key': 'openai-replay-1' } })
        .withResponse();
      const contents: string[] = [];
      for await (const chunk of stream) contents.push(chunk.choices[0]?.delta.content ?? '');
      return { contents, id: response.headers.get('x-request-id'), replayed: response.headers.get('idempotent-replayed') };
    };
    const first = await collect();
    const second = await collect();
    assert.equal(second.id, first.id);
    assert.equal(first.replayed, null);
    assert.equal(second.replayed, 'true');
    assert.deepEqual(second.contents, first.contents);
    assert.equal(second.contents.join(''), 'You said: once only');
  });

  test('an unknown model is a 404 model_not_found (streaming or not)', async () => {
    for (const stream of [false, true]) {
      await assert.rejects(
        client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream }),
        (err: unknown) => {
          assert.ok(err instanceof APIError, String(err));
          assert.equal(err.status, 404);
          assert.equal(err.code, 'model_not_found');
          assert.equal(err.param, 'model');
          assert.equal(err.type, 'invalid_request_error');
          return true;
        },
      );
    }
  });

  test('an operation that is not exposed is not a model', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: 'hi' }] }), { status: 404 });
  });

  test('a failing operation is an error with its own type; the SDK does not re-submit it', async () => {
    const retrying = new OpenAI({ apiKey: 'k', baseURL, maxRetries: 2 });
    const before = (await listAllIds(t, {}, 'operation=fail')).length;
    await assert.rejects(
      retrying.chat.completions.create({ model: 'fail', messages: [{ role: 'user', content: 'break' }] }),
      (err: unknown) => {
        assert.ok(err instanceof APIError, String(err));
        assert.equal(err.status, 502);
        assert.equal(err.code, 'tool_error');
        assert.equal(err.type, 'server_error');
        assert.match(String((err.error as { request_id?: unknown }).request_id), ID);
        assert.equal(err.headers.get('x-should-retry'), 'false');
        return true;
      },
    );
    assert.equal((await listAllIds(t, {}, 'operation=fail')).length, before + 1, 'one request, no SDK retries');
  });

  test('a failing operation in a stream throws from the iteration', async () => {
    const stream = await client.chat.completions.create({ model: 'fail', messages: [{ role: 'user', content: 'break' }], stream: true });
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.role ?? '');
      })(),
      (err: unknown) => err instanceof APIError && err.code === 'tool_error',
    );
    assert.deepEqual(seen, ['assistant']);
  });

  test('bad messages are 422 validation_error with the field as param', async () => {
    const cases: [unknown, string][] = [
      [[], 'messages'],
      ['hello', 'messages'],
      [[{ role: 'wizard', content: 'x' }], 'messages.0.role'],
      [[{ role: 'system', content: 'only a system prompt' }], 'messages'],
      [[{ role: 'user', content: '' }], 'messages.0.content'],
    ];
    for (const [messages, param] of cases) {
      await assert.rejects(
        client.chat.completions.create({ model: 'words', messages } as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming),
        (err: unknown) => {
          assert.ok(err instanceof APIError, String(err));
          assert.equal(err.status, 422, JSON.stringify(messages));
          assert.equal(err.code, 'validation_error');
          assert.equal(err.param, param);
          return true;
        },
      );
    }
    await assert.rejects(
      client.chat.completions.create({
        messages: [{ role: 'user', content: 'hi' }],
      } as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming),
      (err: unknown) => err instanceof APIError && err.status === 422 && err.param === 'model',
    );
  });
});

describe('GET /v1/models (openai package)', () => {
  test('lists the exposed operations', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) {
      assert.equal(model.object, 'model');
      assert.equal(model.owned_by, 'errand');
      assert.ok(Number.isInteger(model.created));
      ids.push(model.id);
    }
    assert.deepEqual(ids, EXPOSED);
  });

  test('retrieves one model, 404 for another', async () => {
    const model = await client.models.retrieve('words');
    assert.equal(model.id, 'words');
    await assert.rejects(
      client.models.retrieve('echo'),
      (err: unknown) => err instanceof APIError && err.status === 404 && err.code === 'model_not_found',
    );
  });
});

describe('wire format (raw HTTP)', () => {
  test('a stream is data: lines only, blank-line separated, ending with data: [DONE]', async () => {
    const res = await fetch(`${baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'words', messages: [{ role: 'user', content: 'wire' }], stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const requestId = res.headers.get('x-request-id') ?? '';
    assert.match(requestId, ID);
    const text = await res.text();
    assert.ok(text.endsWith('data: [DONE]\n\n'), JSON.stringify(text.slice(-40)));
    const events = text.slice(0, -2).split('\n\n');
    const payloads = events.map((event) => {
      const lines = event.split('\n');
      assert.equal(lines.length, 1, `one line per event: ${JSON.stringify(event)}`);
      assert.match(lines[0] ?? '', /^data: /);
      return (lines[0] ?? '').slice('data: '.length);
    });
    assert.equal(payloads.pop(), '[DONE]');
    const chunks = payloads.map(
      (p) => JSON.parse(p) as Record<string, unknown> & { choices: { delta: Record<string, unknown>; finish_reason: unknown }[] },
    );
    assert.deepEqual(Object.keys(chunks[0] ?? {}), ['id', 'object', 'created', 'model', 'choices']);
    assert.deepEqual(chunks[0]?.choices, [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    assert.deepEqual(chunks.at(-1)?.choices, [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'You said: wire');
    assert.ok(chunks.every((c) => c.id === `chatcmpl-${requestId}`));
  });

  test('errors use the OpenAI envelope, including invalid JSON', async () => {
    const res = await fetch(`${baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":',
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.code, 'invalid_json');
    assert.equal(body.error.type, 'invalid_request_error');
  });

  test('a client that hangs up leaves the request running', async () => {
    const controller = new AbortController();
    const res = await fetch(`${baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'hold' }], stream: true }),
      signal: controller.signal,
    });
    const id = res.headers.get('x-request-id') ?? '';
    await t.slow.started(id);
    controller.abort();
    await res.body?.cancel().catch(() => {});
    t.slow.release(id, { text: 'finished anyway' });
    const done = await t.waitTerminal(id);
    assert.equal(done.status, 'completed');
  });
});

describe('limits, auth and config', () => {
  test('still running at the wait limit: 409 request_not_finished with the request id; it keeps running', async () => {
    const limited = await startHttpServer({ overrides: { openai: { models: ['slow'] }, server: { sync_wait_limit: 0.2 } } });
    try {
      const url = await limited.server.listen(0);
      const c = new OpenAI({ apiKey: 'k', baseURL: `${url}/v1`, maxRetries: 2 });
      const err = await c.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: 'x' }] }).then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof APIError);
      assert.equal(err.status, 409);
      assert.equal(err.code, 'request_not_finished');
      const id = String((err.error as { request_id?: unknown }).request_id);
      assert.match(id, ID);
      limited.slow.release(id, { text: 'late' });
      assert.equal((await limited.waitTerminal(id)).status, 'completed');

      // Streaming: the same error as the stream's last line, after the role chunk.
      const stream = await c.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: 'y' }], stream: true });
      const streamErr = await (async () => {
        for await (const chunk of stream) void chunk;
      })().then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(streamErr instanceof APIError);
      assert.equal(streamErr.code, 'request_not_finished');
      const streamId = String((streamErr.error as { request_id?: unknown }).request_id);
      limited.slow.release(streamId, { text: 'late too' });
      assert.equal((await limited.waitTerminal(streamId)).status, 'completed');
    } finally {
      await limited.close();
    }
  });

  test('an open stream is ended with shutting_down when the server closes', async () => {
    const closing = await startHttpServer({ overrides: { openai: { models: ['slow'] } } });
    let closed = false;
    try {
      const url = await closing.server.listen(0);
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'hold' }], stream: true }),
      });
      const id = res.headers.get('x-request-id') ?? '';
      await closing.slow.started(id);
      const text = res.text();
      await closing.close();
      closed = true;
      const lines = (await text).split('\n').filter((line) => line !== '');
      const last = JSON.parse((lines.at(-1) ?? '').slice('data: '.length)) as { error: { code: string; request_id: string } };
      assert.equal(last.error.code, 'shutting_down');
      assert.equal(last.error.request_id, id);
    } finally {
      if (!closed) await closing.close();
    }
  });

  test('with keys, the Bearer key is checked and errors are OpenAI-shaped', async () => {
    const keyed = await startHttpServer({ overrides: { auth: { keys: [{ key: 'tenant-a-key-123', tenant: 'a' }] } } });
    try {
      const url = await keyed.server.listen(0);
      const wrong = new OpenAI({ apiKey: 'not-a-real-key', baseURL: `${url}/v1`, maxRetries: 0 });
      await assert.rejects(
        wrong.models.list(),
        (err: unknown) => err instanceof APIError && err.status === 401 && err.code === 'unauthorized',
      );
      const right = new OpenAI({ apiKey: 'tenant-a-key-123', baseURL: `${url}/v1`, maxRetries: 0 });
      // Default models: chat.operation (echo), whose result has no text, so it is answered as JSON.
      assert.deepEqual(
        (await right.models.list()).data.map((m) => m.id),
        ['echo'],
      );
      const completion = await right.chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: 'ping' }] });
      const echoed = JSON.parse(completion.choices[0]?.message.content ?? '') as Record<string, unknown>;
      assert.equal(echoed.message, 'ping');
      assert.equal(echoed.model, 'echo');
    } finally {
      await keyed.close();
    }
  });

  test('no chat.operation and no openai.models: no models', async () => {
    const bare = await startHttpServer({ chatOperation: null });
    try {
      const res = await bare.inject({ method: 'GET', url: '/v1/models' });
      assert.deepEqual(json(res), { object: 'list', data: [] });
    } finally {
      await bare.close();
    }
  });

  test('openai.models must name declared operations', () => {
    assert.throws(
      () => loadConfig({ overrides: { operations: {}, openai: { models: ['nope'] } }, baseDir: opsDir, env: {} }),
      (err: unknown) => err instanceof ConfigError && /openai\.models/.test(err.message),
    );
  });
});
