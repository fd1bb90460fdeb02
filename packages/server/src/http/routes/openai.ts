/**
 * OpenAI-compatible chat: `POST /v1/chat/completions` and `GET /v1/models`
 * (`GET /v1/models/{model}`), in OpenAI's wire format, so the official SDKs
 * and tools built on them can call Errand operations unchanged.
 *
 * - **Models are operations.** `openai.models` lists the operations exposed
 *   (default: `chat.operation` when set); the request's `model` picks one. The
 *   operation's input is `{message, messages, model, user?}` — `message` is the
 *   text of the last `user` message, so chat operations written for
 *   `POST /v1/chat` work unchanged.
 * - **Non-streaming** runs the request sync: it is held until terminal (at
 *   most `server.sync_wait_limit`, else the operation's workflow timeout) and
 *   answered as a `chat.completion` whose content is the result's `text` (or
 *   the result as JSON). The Errand request id is in `x-request-id` and the
 *   body's `request_id`, so a caller can poll or cancel it.
 * - **Streaming** (`stream: true`) answers `text/event-stream`, `data:` lines
 *   only: a role chunk, one content chunk per `ctx.emit` (`{text}` or a
 *   string), the result text if nothing was emitted, a `finish_reason: "stop"`
 *   chunk, then `data: [DONE]`. The subscription starts right after the
 *   request is committed and the event log is replayed from seq 0, deduplicated
 *   by `seq`, so no chunk is lost or doubled.
 * - **Errors** use OpenAI's envelope `{error: {message, type, param, code}}`:
 *   `code` is the Errand error type (a failed request's own type), `type` the
 *   OpenAI category, the status the catalog's. Answers about a request that
 *   exists send `x-should-retry: false`, so SDKs do not re-submit work the
 *   engine already retried. In a stream, an error is one `data: {"error": …}`
 *   line, then the stream closes (no `[DONE]`).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ErrandConfig } from '../../config/index.js';
import type { Engine } from '../../engine/index.js';
import { ERROR_CATALOG, ErrandError, eventStatus, isErrorType, isTerminal, type Request } from '../../model/index.js';
import type { RequestSummary } from '../../store/index.js';
import { callerOf } from '../caller.js';
import { toErrandError } from '../errors.js';
import { fingerprintOf, idempotencyKeyOf } from '../idempotency.js';
import { limitsOf } from '../limits/index.js';
import { openSse, type SseStream } from '../sse.js';
import { parseWith } from '../validate.js';

export interface OpenAiRouteDeps {
  engine: Engine;
  config: ErrandConfig;
}

/** Most messages one completion request may carry. */
const OPENAI_MESSAGES_MAX = 1000;

const contentPart = z.looseObject({ type: z.string({ error: 'must be a string' }), text: z.string().optional() });
const message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function'], {
    error: 'must be "system", "developer", "user", "assistant", "tool" or "function"',
  }),
  content: z
    .union([z.string(), z.array(contentPart), z.null()], { error: 'must be a string, an array of content parts or null' })
    .optional(),
});
/** `POST /v1/chat/completions` body (also in the OpenAPI document). */
export const completionBody = z.looseObject({
  model: z.string({ error: 'is required and must be a string' }).min(1, 'must not be empty').max(256),
  messages: z
    .array(message, { error: 'is required and must be an array of messages' })
    .min(1, 'must contain at least one message')
    .max(OPENAI_MESSAGES_MAX, `must contain at most ${OPENAI_MESSAGES_MAX} messages`),
  stream: z.boolean({ error: 'must be true or false' }).nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  user: z.string({ error: 'must be a string' }).max(256).optional(),
  metadata: z.record(z.string(), z.unknown(), { error: 'must be an object' }).nullable().optional(),
});
type CompletionBody = z.output<typeof completionBody>;

/** What a completion is answered from, once its request is committed. */
interface Answer {
  created: Request;
  model: string;
  promptTokens: number;
  /** Longest the answer waits for the request to finish, ms. */
  waitMs: number;
  body: CompletionBody;
  /** An earlier submission with the same Idempotency-Key is answered. */
  replayed: boolean;
}

/** The operations exposed as models: `openai.models`, else `chat.operation` when set. */
function exposedModels(config: ErrandConfig): readonly string[] {
  return config.openai.models ?? (config.chat.operation === undefined ? [] : [config.chat.operation]);
}

/** A rough token count (about four characters a token); Errand runs no tokenizer. */
function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** The text of a message's content: a string, or its `text` parts joined. */
function textOf(content: z.output<typeof message>['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (part.type === 'text' && typeof part.text === 'string' ? part.text : '')).join('');
}

/** The text a result answers with: `result.text`, a string result, or the result as JSON. */
function completionText(result: unknown): string {
  if (typeof result === 'string') return result;
  if (result === null || result === undefined) return '';
  if (typeof result === 'object' && typeof (result as { text?: unknown }).text === 'string') return (result as { text: string }).text;
  return JSON.stringify(result);
}

/** The text of one `ctx.emit` chunk: a string or `{text}`; anything else carries no text. */
function chunkText(data: unknown): string {
  if (typeof data === 'string') return data;
  if (typeof data === 'object' && data !== null && typeof (data as { text?: unknown }).text === 'string')
    return (data as { text: string }).text;
  return '';
}

/** OpenAI's error `type` for an HTTP status. */
function errorCategory(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

/** An Errand error in OpenAI's envelope. */
function openAiError(error: ErrandError, extra: Record<string, unknown> = {}): { error: Record<string, unknown> } {
  return { error: { message: error.message, type: errorCategory(error.status), param: error.field ?? null, code: error.type, ...extra } };
}

/** The error a request that ended without completing answers with: status and OpenAI envelope. */
function requestFailure(request: RequestSummary): { status: number; body: { error: Record<string, unknown> } } {
  const type = request.error?.type ?? (request.status === 'cancelled' ? 'cancelled' : 'handler_error');
  // Catalog types keep their status; a cancelled request is a conflict; an operation's own error type is a bad gateway.
  const status = isErrorType(type) ? ERROR_CATALOG[type].status : request.status === 'cancelled' ? 409 : 502;
  const message = request.error?.message ?? `The request was ${request.status}.`;
  return { status, body: { error: { message, type: errorCategory(status), param: null, code: type, request_id: request.id } } };
}

/** The answer for a request still running at the wait limit, in OpenAI's envelope. */
function stillRunning(id: string, status: string): { error: Record<string, unknown> } {
  const error = new ErrandError(
    'request_not_finished',
    `The request is still ${status} at the wait limit; it keeps running: poll /v1/requests/${id} for its result.`,
  );
  return openAiError(error, { request_id: id, status });
}

export function openAiRoutes(app: FastifyInstance, deps: OpenAiRouteDeps): void {
  // An encapsulated plugin, so its error handler (OpenAI's envelope) covers these routes only,
  // including errors raised by the auth hook and the body parser.
  void app.register(async (scope) => {
    registerRoutes(scope, deps);
  });
}

function registerRoutes(app: FastifyInstance, deps: OpenAiRouteDeps): void {
  const { engine, config } = deps;
  const models = exposedModels(config);
  const createdSeconds = Math.floor(engine.clock.now() / 1000);
  /** Open streams and the request each one follows. */
  const streams = new Map<SseStream, string>();

  app.setErrorHandler((raw: FastifyError | ErrandError, request, reply) => {
    const error = toErrandError(raw);
    if (error.type === 'internal_error') request.log.error({ err: raw }, 'unhandled error');
    else if (error.status >= 500) request.log.warn({ err: raw }, error.message);
    if (error.retryAfterSeconds !== undefined) void reply.header('retry-after', String(error.retryAfterSeconds));
    void reply.code(error.status).type('application/json; charset=utf-8').send(openAiError(error));
  });
  // Open streams would hold the server's close: end each with an error line naming the request.
  app.addHook('preClose', async () => {
    for (const [stream, id] of [...streams]) {
      const error = new ErrandError(
        'shutting_down',
        `The server is shutting down; the request is kept: poll /v1/requests/${id} for its result.`,
      );
      stream.send({ data: JSON.stringify(openAiError(error, { request_id: id })) });
      stream.close();
    }
  });

  const modelObject = (id: string) => ({ id, object: 'model', created: createdSeconds, owned_by: 'errand' });
  const findModel = (id: string): string => {
    if (!models.includes(id) || !engine.operations.has(id)) {
      throw new ErrandError('model_not_found', `The model "${id}" does not exist: GET /v1/models lists the operations exposed as models.`, {
        field: 'model',
      });
    }
    return id;
  };

  app.get('/v1/models', async () => ({ object: 'list', data: models.filter((id) => engine.operations.has(id)).map(modelObject) }));
  app.get('/v1/models/:model', async (request) => modelObject(findModel((request.params as { model: string }).model)));

  app.post('/v1/chat/completions', async (request, reply) => {
    const body = parseWith(completionBody, request.body ?? {});
    const model = findModel(body.model);
    const operation = engine.operations.get(model);
    if (!operation) throw new ErrandError('model_not_found', undefined, { field: 'model' });
    let lastUser = -1;
    for (let i = body.messages.length - 1; i >= 0; i--) {
      if (body.messages[i]?.role === 'user') {
        lastUser = i;
        break;
      }
    }
    if (lastUser === -1)
      throw new ErrandError('validation_error', 'messages: must contain a message with role "user"', { field: 'messages' });
    const text = textOf(body.messages[lastUser]?.content);
    if (text === '') {
      throw new ErrandError('validation_error', `messages.${lastUser}.content: the last user message must have text`, {
        field: `messages.${lastUser}.content`,
      });
    }
    const input: Record<string, unknown> = { message: text, messages: body.messages, model };
    if (body.user !== undefined) input.user = body.user;

    const caller = callerOf(request);
    const key = idempotencyKeyOf(request);
    const estimate = await engine.estimate(model, input);
    const params = {
      tenant: caller.submitTenant,
      operation: model,
      input,
      mode: 'sync' as const,
      webhookUrl: config.async.webhook_url,
      metadata: body.metadata ?? undefined,
      estimatedMs: estimate?.highMs ?? null,
    };
    const limits = limitsOf(request);
    await limits.admitSubmission(request, reply, { operation: model, cost: 1 });
    // Held before anything is written (past a cap: 429, nothing accepted), given back when the answer ends.
    if (body.stream === true) limits.holdStream(request, reply);
    else limits.holdWait(request, reply);
    const { request: created, replayed } = key
      ? await engine.submitWithKey({ ...params, idempotency: { key, fingerprint: fingerprintOf(request) } })
      : { request: await engine.submit(params), replayed: false };
    request.log.info(
      { request_id: created.id, operation: model, tenant: created.tenant, stream: body.stream === true, replayed },
      replayed ? 'idempotent replay' : 'request accepted',
    );
    const promptTokens = body.messages.reduce((sum, m) => sum + estimateTokens(textOf(m.content)), 0);
    const waitMs = config.server.sync_wait_limit ?? operation.workflowTimeoutMs;
    const answer = { created, model, promptTokens, waitMs, body, replayed };
    if (body.stream === true) return streamCompletion(request, reply, answer);
    return completeOnce(reply, answer);
  });

  async function completeOnce(reply: FastifyReply, a: Answer): Promise<FastifyReply> {
    const id = a.created.id;
    void reply.header('x-request-id', id);
    if (a.replayed) void reply.header('idempotent-replayed', 'true');
    const final = (await engine.waitForTerminal(id, a.waitMs)) ?? a.created;
    if (!isTerminal(final.status)) {
      return reply.code(ERROR_CATALOG.request_not_finished.status).header('x-should-retry', 'false').send(stillRunning(id, final.status));
    }
    if (final.status !== 'completed') {
      const failure = requestFailure(final);
      return reply.code(failure.status).header('x-should-retry', 'false').send(failure.body);
    }
    const content = completionText(final.result);
    const completionTokens = estimateTokens(content);
    return reply.code(200).send({
      id: `chatcmpl-${id}`,
      object: 'chat.completion',
      created: Math.floor(final.created_at / 1000),
      model: a.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: a.promptTokens, completion_tokens: completionTokens, total_tokens: a.promptTokens + completionTokens },
      request_id: id,
    });
  }

  function streamCompletion(request: FastifyRequest, reply: FastifyReply, a: Answer): void {
    const id = a.created.id;
    // Follow before anything is read; the request is already committed.
    const follow = engine.follow(id);
    const includeUsage = a.body.stream_options?.include_usage === true;
    const headers: Record<string, string> = { 'x-request-id': id };
    if (a.replayed) headers['idempotent-replayed'] = 'true';
    const sse = openSse(reply, {
      clock: engine.clock,
      keepAliveMs: config.server.sse_keep_alive,
      maxBufferedBytes: config.server.sse_max_buffer,
      headers,
    });
    streams.set(sse, id);
    const base = {
      id: `chatcmpl-${id}`,
      object: 'chat.completion.chunk',
      created: Math.floor(a.created.created_at / 1000),
      model: a.model,
    };
    const chunk = (delta: Record<string, unknown>, finishReason: 'stop' | null) =>
      sse.send({
        data: JSON.stringify({
          ...base,
          choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
          ...(includeUsage ? { usage: null } : {}),
        }),
      });
    let content = '';
    let emitted = false;
    let finishing = false;
    let latestStatus: string = a.created.status;

    const fail = (body: { error: Record<string, unknown> }) => {
      sse.send({ data: JSON.stringify(body) });
      sse.close();
    };
    const finish = (final: RequestSummary) => {
      if (final.status !== 'completed') return fail(requestFailure(final).body);
      if (!emitted) {
        content = completionText(final.result);
        if (content !== '') chunk({ content }, null);
      }
      chunk({}, 'stop');
      if (includeUsage) {
        const completionTokens = estimateTokens(content);
        const usage = {
          prompt_tokens: a.promptTokens,
          completion_tokens: completionTokens,
          total_tokens: a.promptTokens + completionTokens,
        };
        sse.send({ data: JSON.stringify({ ...base, choices: [], usage }) });
      }
      sse.send({ data: '[DONE]' });
      sse.close();
    };

    const timer = engine.clock.setTimeout(() => {
      if (!finishing) fail(stillRunning(id, latestStatus));
    }, a.waitMs);
    sse.onClose(() => {
      // A client that hangs up leaves the request running; it can be polled by id.
      follow.close();
      engine.clock.clearTimeout(timer);
      streams.delete(sse);
    });

    chunk({ role: 'assistant', content: '' }, null);
    // The log from its start, then live entries: each seq once, in order (engine/follow.ts).
    follow.start({
      afterSeq: 0,
      onEntry: ({ event, request: final }) => {
        if (finishing || sse.closed) return false;
        if (event.type === 'output') {
          const text = chunkText(event.data);
          if (text === '') return;
          emitted = true;
          content += text;
          chunk({ content: text }, null);
          return;
        }
        const status = eventStatus(event);
        if (status === null) return;
        latestStatus = status;
        if (!isTerminal(status)) return;
        finishing = true;
        // The terminal entry comes with its request (as committed, or read for it); null when purged meanwhile.
        if (final && isTerminal(final.status)) finish(final);
        else fail(openAiError(new ErrandError('request_not_found'), { request_id: id }));
      },
      onEnd: (end, err) => {
        if (end === 'terminal' || sse.closed) return;
        request.log.warn({ err, request_id: id, end }, 'stream could not replay the event log');
        fail(openAiError(new ErrandError('store_unavailable'), { request_id: id }));
      },
    });
  }
}
