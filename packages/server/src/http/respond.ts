/**
 * How a submission is answered. Async: `202 Accepted` with `Location` and
 * `Retry-After` once the request is committed. Sync: the call is held until the
 * request is terminal and answered `200` with the status resource (also when it
 * failed: the outcome is in `status` and `error`); if it is still running at the
 * wait limit, it is handed back as a `202` like an async one. A caller who hangs
 * up does not cancel the request.
 */
import type { FastifyReply } from 'fastify';
import { formatEstimate, type Engine } from '../engine/index.js';
import { isTerminal, type Request, type RequestMode } from '../model/index.js';
import { presentRequest, retryAfterSeconds } from './present.js';

export interface AnswerOptions {
  /** `/v1/tasks/{id}` Location and `task_id` fields (the resource-style alias). */
  taskAlias?: boolean;
  /** Longest a sync answer waits, ms. */
  syncWaitMs: number;
}

/** Decides sync or async: the request's own choice, else a forced `async.mode`, else the endpoint's default. */
export function decideMode(requested: boolean | undefined, configMode: 'auto' | 'sync' | 'async', endpointDefault: RequestMode): RequestMode {
  if (requested !== undefined) return requested ? 'async' : 'sync';
  if (configMode !== 'auto') return configMode;
  return endpointDefault;
}

/** `Prefer: respond-async` (RFC 7240) asks for async; absent → undefined. */
export function preferAsync(header: string | string[] | undefined): boolean | undefined {
  const values = Array.isArray(header) ? header.join(',') : (header ?? '');
  return /(^|[,;\s])respond-async($|[,;\s])/i.test(values) ? true : undefined;
}

export async function answerSubmission(engine: Engine, reply: FastifyReply, request: Request, options: AnswerOptions): Promise<FastifyReply> {
  if (request.mode === 'sync') {
    const final = await engine.waitForTerminal(request.id, options.syncWaitMs);
    if (final && isTerminal(final.status)) {
      return reply.code(200).send(presentRequest(final, { taskAlias: options.taskAlias ?? false }));
    }
    return accepted(engine, reply, final ?? request, options);
  }
  return accepted(engine, reply, request, options);
}

function accepted(engine: Engine, reply: FastifyReply, request: Request, options: AnswerOptions): FastifyReply {
  const location = `${options.taskAlias ? '/v1/tasks/' : '/v1/requests/'}${request.id}`;
  const body: Record<string, unknown> = { request_id: request.id };
  if (options.taskAlias) body.task_id = request.id;
  body.status = request.status;
  const estimate = engine.estimate(request.operation);
  body.estimated_time = estimate ? formatEstimate(estimate) : null;
  body.estimated_ms = estimate ? estimate.highMs : null;
  body.location = location;
  return reply
    .code(202)
    .header('location', location)
    .header('retry-after', String(retryAfterSeconds(request, engine.clock.now()) ?? 1))
    .send(body);
}
