/**
 * The document's `components`: schemas generated from zod (request bodies
 * from the routes' own validators, read as input; answers from ./schemas.ts,
 * read as output), and the shared parameters, headers, error responses and
 * security schemes of the async contract.
 */
import { z } from 'zod';
import type { ErrandConfig } from '../../config/index.js';
import { ERROR_CATALOG } from '../../model/index.js';
import { IDEMPOTENCY_KEY_MAX_LENGTH } from '../idempotency.js';
import { batchBodySchema } from '../routes/batches.js';
import { completionBody } from '../routes/openai.js';
import { chatBody, triggerEnvelope } from '../routes/submit.js';
import * as oa from './openaiSchemas.js';
import * as s from './schemas.js';
import * as sse from './sseSchemas.js';

export type Json = Record<string, unknown>;

/** A `$ref` to a component. */
export function ref(kind: 'schemas' | 'parameters' | 'headers' | 'responses' | 'callbacks', name: string): Json {
  return { $ref: `#/components/${kind}/${name}` };
}

/** The answers, named as in the document. */
const RESPONSE_SCHEMAS = {
  RequestStatus: s.requestStatus,
  RequestError: s.requestError,
  StatusResource: s.statusResource,
  AcceptedResource: s.acceptedResource,
  ErrorEnvelope: s.errorEnvelope,
  ListPage: s.listPage,
  ResultAnswer: s.resultAnswer,
  CancelAnswer: s.cancelAnswer,
  RetryAnswer: s.retryAnswer,
  DeliveryAttempt: s.deliveryAttempt,
  Delivery: s.delivery,
  DeliveryList: s.deliveryList,
  RedeliverAnswer: s.redeliverAnswer,
  BatchStatus: s.batchStatus,
  BatchAccepted: s.batchAccepted,
  Health: s.health,
  Ready: s.ready,
  Stats: s.statsView,
  StatusEventData: s.statusEventData,
  ProgressEventData: s.progressEventData,
  ChatStreamStart: s.chatStreamStart,
  TailEvent: s.tailEvent,
  WebhookPayload: s.webhookPayload,
  BatchWebhookPayload: s.batchWebhookPayload,
  RequestEventMessage: sse.requestEventMessage,
  ChatStreamMessage: sse.chatStreamMessage,
  TailEventMessage: sse.tailEventMessage,
  ChatCompletionStreamMessage: sse.chatCompletionStreamMessage,
  Model: oa.openAiModel,
  ModelList: oa.openAiModelList,
  ChatCompletion: oa.chatCompletion,
  ChatCompletionChunk: oa.chatCompletionChunk,
  OpenAiError: oa.openAiError,
} as const;

/** Generates named JSON Schemas (2020-12, as OpenAPI 3.1 uses) whose references to each other are `$ref`s. */
function generate(schemas: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const { schemas: out } = z.toJSONSchema(registry, { io, uri: (id) => `#/components/schemas/${id}`, unrepresentable: 'any' });
  const result: Record<string, Json> = {};
  for (const [id, schema] of Object.entries(out)) {
    const { $schema: _schema, $id: _id, ...rest } = schema as Json;
    result[id] = rest;
  }
  return result;
}

/** The HTTP statuses of the catalog's HTTP errors, with their types. */
function errorTypesByStatus(): Map<number, string[]> {
  const byStatus = new Map<number, string[]>();
  for (const [type, entry] of Object.entries(ERROR_CATALOG)) {
    if (entry.scope !== 'http') continue;
    byStatus.set(entry.status, [...(byStatus.get(entry.status) ?? []), type]);
  }
  return byStatus;
}

function errorResponses(): Record<string, Json> {
  const responses: Record<string, Json> = {};
  for (const [status, types] of errorTypesByStatus()) {
    const list = types.map((type) => `- \`${type}\`: ${ERROR_CATALOG[type as keyof typeof ERROR_CATALOG].message}`).join('\n');
    responses[`Error${status}`] = {
      description: `The error envelope, with one of these types:\n${list}`,
      // request_not_finished and the 503s say when to come back; every 429 does, and a rate limit says which.
      ...(status === 409 || status === 503 ? { headers: { 'Retry-After': ref('headers', 'RetryAfter') } } : {}),
      ...(status === 429 ? { headers: { 'Retry-After': ref('headers', 'RetryAfterLimited'), ...RATE_LIMIT_HEADERS } } : {}),
      content: {
        'application/json': {
          schema: {
            allOf: [
              ref('schemas', 'ErrorEnvelope'),
              { type: 'object', properties: { error: { type: 'object', properties: { type: { enum: types } } } } },
            ],
          },
        },
      },
    };
  }
  responses.OpenAiError = {
    description: "An error in OpenAI's envelope (`code` is the Errand error type); the status is the catalog's.",
    headers: {
      'x-should-retry': {
        description: '`false` when the answer is about a request that exists (the engine already retried it).',
        schema: { type: 'string' },
      },
    },
    content: { 'application/json': { schema: ref('schemas', 'OpenAiError') } },
  };
  return responses;
}

const header = (description: string, schema: Json = { type: 'string' }, extra: Json = {}): Json => ({ description, schema, ...extra });

const HEADERS: Record<string, Json> = {
  Location: header(
    'The status resource of the request (`/v1/requests/{id}`, or `/v1/tasks/{id}` on the bots alias).',
    { type: 'string' },
    { required: true },
  ),
  RetryAfter: header(
    'Seconds to wait before polling again: paced by the estimate (about two polls before it is done), 1–30 s; sent while the request is not terminal.',
    { type: 'integer', minimum: 1 },
  ),
  RetryAfterAccepted: header('Seconds to wait before the first poll of `Location`.', { type: 'integer', minimum: 1 }, { required: true }),
  ETag: header('A strong tag of the status resource; send it back as `If-None-Match` for a `304`.'),
  IdempotentReplayed: header('`true` when the answer replays an earlier submission with the same `Idempotency-Key`.', {
    type: 'string',
    enum: ['true'],
  }),
  XRequestId: header('The id of the request the stream is about.'),
  RetryAfterLimited: header(
    'Seconds until the same call would pass (a refused submission: until its bucket holds the tokens).',
    { type: 'integer', minimum: 1 },
    { required: true },
  ),
  RateLimitLimit: header(
    'Submissions: the burst of the tighter token bucket that applies (tenant, or operation for the tenant; limits.submissions).',
    { type: 'integer', minimum: 1 },
  ),
  RateLimitRemaining: header('Submissions: tokens left in that bucket after this one (a batch uses one per item).', {
    type: 'integer',
    minimum: 0,
  }),
  RateLimitReset: header('Submissions: seconds until that bucket is full again.', { type: 'integer', minimum: 0 }),
};

/** The rate-limit headers of submission answers (limits.submissions), as header references. */
const RATE_LIMIT_HEADERS: Record<string, Json> = {
  'RateLimit-Limit': ref('headers', 'RateLimitLimit'),
  'RateLimit-Remaining': ref('headers', 'RateLimitRemaining'),
  'RateLimit-Reset': ref('headers', 'RateLimitReset'),
};

const PARAMETERS: Record<string, Json> = {
  Prefer: {
    name: 'Prefer',
    in: 'header',
    description:
      'RFC 7240. `respond-async`: answer `202` at once. `wait=N`: hold the call up to N seconds for the outcome (`200`), then hand off as `202`. ' +
      'A body/query `async`/`mode` choice wins over it; it wins over `async.mode` in the config.',
    schema: { type: 'string', examples: ['respond-async', 'wait=10', 'respond-async, wait=5'] },
  },
  IdempotencyKey: {
    name: 'Idempotency-Key',
    in: 'header',
    description:
      `1–${IDEMPOTENCY_KEY_MAX_LENGTH} visible ASCII characters, scoped to the tenant (also accepted as \`X-Idempotency-Key\`). ` +
      'The same key with the same submission answers the first request again (`Idempotent-Replayed: true`); with a different one, `422 idempotency_conflict`.',
    schema: { type: 'string', minLength: 1, maxLength: IDEMPOTENCY_KEY_MAX_LENGTH, pattern: '^[\\x21-\\x7e]+$' },
  },
  RequestId: { name: 'id', in: 'path', required: true, description: 'A request id (`req_…`).', schema: { type: 'string' } },
  Wait: {
    name: 'wait',
    in: 'query',
    description:
      'Long-poll: hold the read up to this many seconds (clamped to `server.long_poll_max`) until the resource differs from `If-None-Match` (or its first read), or is terminal.',
    schema: { type: 'number', minimum: 0, maximum: 86400 },
  },
  IfNoneMatch: {
    name: 'If-None-Match',
    in: 'header',
    description: 'An `ETag` from an earlier read: `304` while it still matches.',
    schema: { type: 'string' },
  },
  LastEventId: {
    name: 'Last-Event-ID',
    in: 'header',
    description: 'Resume after this event id (what `EventSource` sends on reconnect); wins over `after`.',
    schema: { type: 'string', pattern: '^\\d{1,15}$' },
  },
  After: {
    name: 'after',
    in: 'query',
    description: 'Resume after this event id; `0` replays everything.',
    schema: { type: 'integer', minimum: 0 },
  },
};

const SECURITY_SCHEMES: Record<string, Json> = {
  bearerAuth: {
    type: 'http',
    scheme: 'bearer',
    description: "An API key as `Authorization: Bearer <key>`. A tenant key sees its tenant's requests; an admin key every tenant's.",
  },
  clientKey: { type: 'apiKey', in: 'header', name: 'X-Client-Key', description: 'The same key in `X-Client-Key`.' },
  muxiClientKey: { type: 'apiKey', in: 'header', name: 'X-Muxi-Client-Key', description: 'The same key in `X-Muxi-Client-Key`.' },
};

/** The webhook the server POSTs when a request (or batch) ends, to the URL the submission named by `expression`. */
function webhookCallback(payload: 'WebhookPayload' | 'BatchWebhookPayload', expression: string): Json {
  const signatureHeader = (name: string, description: string, required: boolean, pattern?: string): Json => ({
    name,
    in: 'header',
    required,
    description,
    schema: pattern === undefined ? { type: 'string' } : { type: 'string', pattern },
  });
  return {
    [expression]: {
      post: {
        summary: payload === 'WebhookPayload' ? 'The request ended' : 'Every item of the batch ended',
        description:
          'Sent once, at least once, to `webhook_url` (else `async.webhook_url`), signed per Standard Webhooks (docs/webhooks.md). ' +
          'Verify the signature over the raw body; de-duplicate by `webhook-id`. Retried with backoff on anything but 2xx; `410 Gone` stops.',
        parameters: [
          signatureHeader('webhook-id', 'The delivery id (`dlv_…`), the same on every retry and redelivery.', true, '^dlv_'),
          signatureHeader('webhook-timestamp', 'Unix seconds of this attempt.', true, '^\\d+$'),
          signatureHeader(
            'webhook-signature',
            '`v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<body>`, space-separated while a secret rotates. Absent when no secret is configured.',
            false,
            '^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$',
          ),
        ],
        requestBody: { required: true, content: { 'application/json': { schema: ref('schemas', payload) } } },
        responses: {
          '2XX': { description: 'Delivered.' },
          '410': { description: 'Gone: stop sending (the delivery fails at once).' },
          default: { description: 'Anything else (or no answer in time) is retried with backoff.' },
        },
      },
    },
  };
}

export function buildComponents(config: { batches: Pick<ErrandConfig['batches'], 'max_items'> }): Json {
  const requestBodies = generate(
    {
      ChatBody: chatBody,
      TriggerEnvelope: triggerEnvelope,
      BatchBody: batchBodySchema(config.batches.max_items),
      ChatCompletionRequest: completionBody,
    },
    'input',
  );
  return {
    schemas: { ...generate(RESPONSE_SCHEMAS, 'output'), ...requestBodies },
    parameters: PARAMETERS,
    headers: HEADERS,
    responses: errorResponses(),
    callbacks: {
      RequestFinishedFromBody: webhookCallback('WebhookPayload', '{$request.body#/webhook_url}'),
      RequestFinishedFromQuery: webhookCallback('WebhookPayload', '{$request.query.webhook_url}'),
      BatchFinished: webhookCallback('BatchWebhookPayload', '{$request.body#/webhook_url}'),
    },
    securitySchemes: SECURITY_SCHEMES,
  };
}
