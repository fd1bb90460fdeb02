/**
 * Submission endpoints:
 * - `POST /v1/chat` — body `{message, async?, webhook_url?, metadata?, …}`; runs `chat.operation`; default sync.
 * - `POST /v1/triggers/{name}` — body `{data, use_async?, webhook_url?, metadata?, priority?}`, or any other JSON (taken as the data); default async.
 * - `POST /v1/operations/{name}` — the body is the input; `?async=true|false`; default async.
 * - `POST /v1/bots/{bot_id}/actions/{action}` — resource-style alias of the operations endpoint (`/v1/tasks` Location).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ErrandConfig } from '../../config/index.js';
import type { Engine } from '../../engine/index.js';
import { ErrandError, type RequestMode } from '../../model/index.js';
import { callerOf } from '../caller.js';
import { answerSubmission, decideMode, preferAsync } from '../respond.js';
import { parseWith } from '../validate.js';

const webhookUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .max(2048, 'must be at most 2048 characters')
  .nullable()
  .optional();
const metadata = z.record(z.string(), z.unknown(), { error: 'must be an object' }).optional();
const priority = z.number().int().min(-100).max(100).optional();

const chatBody = z.looseObject({
  message: z.string({ error: 'is required and must be a string' }).min(1, 'must not be empty').max(100_000),
  async: z.boolean({ error: 'must be true or false' }).optional(),
  webhook_url: webhookUrl,
  metadata,
  priority,
});
const CHAT_CONTROL_KEYS = ['async', 'webhook_url', 'metadata', 'priority'] as const;

const triggerEnvelope = z.strictObject({
  data: z.unknown(),
  use_async: z.boolean({ error: 'must be true or false' }).optional(),
  webhook_url: webhookUrl,
  metadata,
  priority,
});

const TRIGGER_ENVELOPE_KEYS = new Set(Object.keys(triggerEnvelope.shape));

const asyncFlag = z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).optional();
const operationQuery = z.looseObject({ async: asyncFlag, webhook_url: webhookUrl });
const triggerQuery = z.looseObject({ use_async: asyncFlag });
const nameParam = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/);

export interface SubmitRouteDeps {
  engine: Engine;
  config: ErrandConfig;
}

export function submitRoutes(app: FastifyInstance, deps: SubmitRouteDeps): void {
  const { engine, config } = deps;
  const syncWaitMs = (operation: string) =>
    config.server.sync_wait_limit ?? engine.operations.get(operation)?.workflowTimeoutMs ?? config.workflow.timeouts.workflow_timeout;

  async function submit(
    request: FastifyRequest,
    reply: FastifyReply,
    params: { operation: string; input: unknown; mode: RequestMode; webhookUrl?: string | null | undefined; metadata?: Record<string, unknown> | undefined; priority?: number | undefined; taskAlias?: boolean },
  ) {
    const caller = callerOf(request);
    const created = await engine.submit({
      tenant: caller.submitTenant,
      operation: params.operation,
      input: params.input,
      mode: params.mode,
      webhookUrl: params.webhookUrl ?? config.async.webhook_url,
      metadata: params.metadata,
      priority: params.priority,
    });
    request.log.info({ request_id: created.id, operation: created.operation, tenant: created.tenant, mode: created.mode }, 'request accepted');
    return answerSubmission(engine, reply, created, { syncWaitMs: syncWaitMs(params.operation), taskAlias: params.taskAlias ?? false });
  }

  app.post('/v1/chat', async (request, reply) => {
    const operation = config.chat.operation;
    if (operation === undefined) throw new ErrandError('chat_not_configured');
    const body = parseWith(chatBody, request.body ?? {});
    const input: Record<string, unknown> = { ...body };
    for (const key of CHAT_CONTROL_KEYS) delete input[key];
    const mode = decideMode(body.async ?? preferAsync(request.headers.prefer), config.async.mode, 'sync');
    return submit(request, reply, { operation, input, mode, webhookUrl: body.webhook_url, metadata: body.metadata, priority: body.priority });
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
    const requested = envelope?.use_async ?? flag(query.use_async) ?? preferAsync(request.headers.prefer);
    const mode = decideMode(requested, config.async.mode, 'async');
    return submit(request, reply, {
      operation: trigger.operation,
      input,
      mode,
      webhookUrl: envelope?.webhook_url,
      metadata: { ...(envelope?.metadata ?? {}), trigger: name },
      priority: envelope?.priority,
    });
  });

  const runOperation = (taskAlias: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
    const params = request.params as { name?: string; action?: string; bot_id?: string };
    const operation = params.name ?? params.action ?? '';
    if (!nameParam.safeParse(operation).success || !engine.operations.has(operation)) {
      throw new ErrandError('operation_not_found', `No operation named "${operation}" is declared in the config.`);
    }
    const query = parseWith(operationQuery, request.query, 'query');
    const mode = decideMode(flag(query.async) ?? preferAsync(request.headers.prefer), config.async.mode, 'async');
    const metadata = params.bot_id === undefined ? undefined : { bot_id: params.bot_id };
    const input = request.body === undefined ? {} : request.body;
    return submit(request, reply, { operation, input, mode, webhookUrl: query.webhook_url, metadata, taskAlias });
  };
  app.post('/v1/operations/:name', runOperation(false));
  app.post('/v1/bots/:bot_id/actions/:action', runOperation(true));
}

function flag(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  return value === 'true' || value === '1';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
