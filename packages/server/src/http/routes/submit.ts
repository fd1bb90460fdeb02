/**
 * Submission endpoints (sync or async is decided in respond.ts):
 * - `POST /v1/chat` — body `{message, async?, mode?, webhook_url?, metadata?, priority?, delay_seconds?, run_at?, …}`; runs `chat.operation`.
 * - `POST /v1/triggers/{name}` — body `{data, use_async?, webhook_url?, metadata?, priority?, delay_seconds?, run_at?}`,
 *   or any other JSON (taken as the data).
 * - `POST /v1/operations/{name}` — the body is the input; controls on the URL: `?async=`, `?mode=`, `?webhook_url=`,
 *   `?priority=`, `?delay_seconds=`, `?run_at=`.
 * - `POST /v1/bots/{bot_id}/actions/{action}` — resource-style alias of the operations endpoint (`/v1/tasks` Location).
 * Every one takes `Idempotency-Key` and `Prefer: respond-async` / `Prefer: wait=N`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ErrandConfig } from '../../config/index.js';
import type { Engine } from '../../engine/index.js';
import { ErrandError } from '../../model/index.js';
import { callerOf } from '../caller.js';
import { trackStreams } from '../eventStream.js';
import { fingerprintOf, idempotencyKeyOf } from '../idempotency.js';
import { limitsOf } from '../limits/index.js';
import { answerSubmission, chooseMode, type EndpointKind } from '../respond.js';
import { parseWith } from '../validate.js';
import { streamSubmission } from './events.js';

/** An http(s) URL, as a JSON Schema pattern (the scheme is case-insensitive). */
export const HTTP_URL_PATTERN = '^[Hh][Tt][Tt][Pp][Ss]?://';

/** Longest delayed start, in seconds (30 days). */
const DELAY_MAX_SECONDS = 30 * 86_400;

const webhookUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .max(2048, 'must be at most 2048 characters')
  // The protocol check above does not reach the JSON Schema (OpenAPI document); this says it there.
  .meta({ pattern: HTTP_URL_PATTERN })
  .nullable()
  .optional();
const metadata = z.record(z.string(), z.unknown(), { error: 'must be an object' }).optional();
const priority = z.number({ error: 'must be a whole number from -100 to 100' }).int('must be a whole number').min(-100).max(100).optional();
const delaySeconds = z
  .number({ error: 'must be a number of seconds' })
  .min(0, 'must not be negative')
  .max(DELAY_MAX_SECONDS, 'must be at most 30 days')
  .optional();
/** An ISO 8601 date-time or epoch milliseconds. */
const runAt = z
  .union([z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time or epoch milliseconds' }), z.number().int().nonnegative()])
  .transform((v) => (typeof v === 'number' ? v : Date.parse(v)))
  .optional();
const modeField = z.enum(['sync', 'async'], { error: 'must be "sync" or "async"' }).optional();

const controls = { webhook_url: webhookUrl, metadata, priority, delay_seconds: delaySeconds, run_at: runAt };

/** `POST /v1/chat` body (also in the OpenAPI document). */
export const chatBody = z.looseObject({
  message: z.string({ error: 'is required and must be a string' }).min(1, 'must not be empty').max(100_000),
  async: z.boolean({ error: 'must be true or false' }).optional(),
  mode: modeField,
  /** Answer with an event stream (output chunks, then the outcome): see routes/events.ts and docs/sse.md. */
  stream: z.boolean({ error: 'must be true or false' }).optional(),
  ...controls,
});
const CHAT_CONTROL_KEYS = ['async', 'mode', 'stream', 'webhook_url', 'metadata', 'priority', 'delay_seconds', 'run_at'] as const;

/** `POST /v1/triggers/{name}` envelope body (also in the OpenAPI document). */
export const triggerEnvelope = z.strictObject({
  data: z.unknown(),
  use_async: z.boolean({ error: 'must be true or false' }).optional(),
  ...controls,
});

const TRIGGER_ENVELOPE_KEYS = new Set(Object.keys(triggerEnvelope.shape));

const asyncFlag = z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).optional();
const queryNumber = (schema: z.ZodNumber) => z.coerce.number({ error: 'must be a number' }).pipe(schema).optional();
/** `POST /v1/operations/{name}` query (also in the OpenAPI document). */
export const operationQuery = z.looseObject({
  async: asyncFlag,
  mode: modeField,
  webhook_url: webhookUrl,
  priority: queryNumber(z.number().int('must be a whole number').min(-100).max(100)),
  delay_seconds: queryNumber(z.number().min(0, 'must not be negative').max(DELAY_MAX_SECONDS, 'must be at most 30 days')),
  run_at: z.string().optional(),
});
export const triggerQuery = z.looseObject({ use_async: asyncFlag });
/** An operation name in a path. */
const nameParam = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/);

export interface SubmitRouteDeps {
  engine: Engine;
  config: ErrandConfig;
}

interface SubmitSpec {
  operation: string;
  input: unknown;
  endpoint: EndpointKind;
  /** The request's own sync/async choice (true = async), if it made one. */
  explicitAsync: boolean | undefined;
  webhookUrl?: string | null | undefined;
  metadata?: Record<string, unknown> | undefined;
  priority?: number | undefined;
  delaySeconds?: number | undefined;
  runAt?: number | undefined;
  taskAlias?: boolean;
  /** Answer with an event stream instead of 200/202 (chat `"stream": true`; the request is async). */
  stream?: boolean | undefined;
}

export function submitRoutes(app: FastifyInstance, deps: SubmitRouteDeps): void {
  const { engine, config } = deps;
  const trackStream = trackStreams(app);

  async function submit(request: FastifyRequest, reply: FastifyReply, spec: SubmitSpec) {
    const caller = callerOf(request);
    const key = idempotencyKeyOf(request);
    const operation = engine.operations.get(spec.operation);
    if (!operation) throw new ErrandError('operation_not_found', `No operation named "${spec.operation}" is declared in the config.`);
    if (spec.delaySeconds !== undefined && spec.runAt !== undefined) {
      throw new ErrandError('validation_error', 'delay_seconds: give either delay_seconds or run_at, not both', { field: 'delay_seconds' });
    }
    const now = engine.clock.now();
    const runAt = spec.runAt ?? (spec.delaySeconds === undefined ? undefined : now + Math.round(spec.delaySeconds * 1000));
    if (runAt !== undefined && runAt > now + DELAY_MAX_SECONDS * 1000) {
      throw new ErrandError('validation_error', 'run_at: must be at most 30 days ahead', { field: 'run_at' });
    }
    const estimate = await engine.estimate(spec.operation, spec.input);
    const choice = chooseMode({
      explicitAsync: spec.explicitAsync,
      prefer: request.headers.prefer,
      configMode: config.async.mode,
      endpoint: spec.endpoint,
      estimate,
      thresholdMs: config.async.threshold_seconds,
      syncWaitLimitMs: config.server.sync_wait_limit ?? operation.workflowTimeoutMs,
      delayed: runAt !== undefined && runAt > now,
    });
    const limits = limitsOf(request);
    await limits.admitSubmission(request, reply, { operation: spec.operation, cost: 1 });
    // Held before anything is written (past a cap: 429, nothing accepted), given back when the answer ends.
    if (spec.stream) limits.holdStream(request, reply);
    else if (choice.mode === 'sync') limits.holdWait(request, reply);
    const params = {
      tenant: caller.submitTenant,
      operation: spec.operation,
      input: spec.input,
      mode: choice.mode,
      webhookUrl: spec.webhookUrl ?? config.async.webhook_url,
      metadata: spec.metadata,
      priority: spec.priority,
      runAt,
      estimatedMs: estimate?.highMs ?? null,
    };
    const { request: created, replayed } = key
      ? await engine.submitWithKey({ ...params, idempotency: { key, fingerprint: fingerprintOf(request) } })
      : { request: await engine.submit(params), replayed: false };
    request.log.info(
      {
        request_id: created.id,
        operation: created.operation,
        tenant: created.tenant,
        mode: created.mode,
        mode_reason: choice.reason,
        replayed,
      },
      replayed ? 'idempotent replay' : 'request accepted',
    );
    if (spec.stream) return streamSubmission({ engine, config, reply, request: created, replayed, track: trackStream });
    // A replay answers like the original: async → 202 again; sync → wait (bounded) like the first call did.
    const waitMs =
      created.mode === 'sync' ? (replayed ? (config.server.sync_wait_limit ?? operation.workflowTimeoutMs) : choice.waitMs) : 0;
    if (waitMs > 0 && choice.mode !== 'sync') limits.holdWait(request, reply);
    return answerSubmission(engine, reply, created, { waitMs, estimate, taskAlias: spec.taskAlias ?? false, replayed });
  }

  app.post('/v1/chat', async (request, reply) => {
    const operation = config.chat.operation;
    if (operation === undefined) throw new ErrandError('chat_not_configured');
    const body = parseWith(chatBody, request.body ?? {});
    const input: Record<string, unknown> = { ...body };
    for (const key of CHAT_CONTROL_KEYS) delete input[key];
    const explicitAsync = body.async ?? (body.mode === undefined ? undefined : body.mode === 'async');
    if (body.stream && explicitAsync === false) {
      throw new ErrandError(
        'validation_error',
        'stream: a streamed chat is answered at once with its events; drop "async": false / "mode": "sync"',
        {
          field: 'stream',
        },
      );
    }
    return submit(request, reply, {
      operation,
      input,
      endpoint: 'chat',
      // A stream is the answer: the request itself runs async (its mode shows "async").
      explicitAsync: body.stream ? true : explicitAsync,
      stream: body.stream,
      webhookUrl: body.webhook_url,
      metadata: body.metadata,
      priority: body.priority,
      delaySeconds: body.delay_seconds,
      runAt: body.run_at,
    });
  });

  app.post('/v1/triggers/:name', async (request, reply) => {
    const { name } = request.params as { name: string };
    const trigger = Object.hasOwn(config.triggers, name) ? config.triggers[name] : undefined;
    if (!trigger) throw new ErrandError('trigger_not_found', `No trigger named "${name}" is declared in the config.`);
    const query = parseWith(triggerQuery, request.query, 'query');
    const body = request.body;
    let input: unknown = body === undefined ? {} : body;
    let envelope: z.output<typeof triggerEnvelope> | undefined;
    // The body is the envelope only when it has `data` and nothing but envelope keys;
    // otherwise (e.g. a Stripe event with its own `data`) the whole body is the input.
    if (isObject(body) && Object.hasOwn(body, 'data') && Object.keys(body).every((k) => TRIGGER_ENVELOPE_KEYS.has(k))) {
      envelope = parseWith(triggerEnvelope, body);
      input = envelope.data === undefined ? {} : envelope.data;
    }
    return submit(request, reply, {
      operation: trigger.operation,
      input,
      endpoint: 'trigger',
      explicitAsync: envelope?.use_async ?? flag(query.use_async),
      webhookUrl: envelope?.webhook_url,
      metadata: { ...(envelope?.metadata ?? {}), trigger: name },
      priority: envelope?.priority,
      delaySeconds: envelope?.delay_seconds,
      runAt: envelope?.run_at,
    });
  });

  const runOperation = (endpoint: 'operation' | 'bots') => async (request: FastifyRequest, reply: FastifyReply) => {
    const params = request.params as { name?: string; action?: string; bot_id?: string };
    const operation = params.name ?? params.action ?? '';
    if (!nameParam.safeParse(operation).success || !engine.operations.has(operation)) {
      throw new ErrandError('operation_not_found', `No operation named "${operation}" is declared in the config.`);
    }
    const query = parseWith(operationQuery, request.query, 'query');
    const runAtQuery =
      query.run_at === undefined
        ? undefined
        : parseWith(z.object({ run_at: runAt }), { run_at: /^\d+$/.test(query.run_at) ? Number(query.run_at) : query.run_at }, 'query')
            .run_at;
    const explicitAsync = flag(query.async) ?? (query.mode === undefined ? undefined : query.mode === 'async');
    return submit(request, reply, {
      operation,
      input: request.body === undefined ? {} : request.body,
      endpoint,
      explicitAsync,
      webhookUrl: query.webhook_url,
      metadata: params.bot_id === undefined ? undefined : { bot_id: params.bot_id },
      priority: query.priority,
      delaySeconds: query.delay_seconds,
      runAt: runAtQuery,
      taskAlias: endpoint === 'bots',
    });
  };
  app.post('/v1/operations/:name', runOperation('operation'));
  app.post('/v1/bots/:bot_id/actions/:action', runOperation('bots'));
}

function flag(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  return value === 'true' || value === '1';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
