/**
 * Sync or async, and how a submission is answered.
 *
 * **Deciding** (first match wins; docs/modes.md explains it with examples):
 * 1. The request's own choice: `async` / `mode` in a chat body, `use_async` in
 *    a trigger envelope, `?async=` / `?mode=` on the URL. Sync waits up to
 *    `server.sync_wait_limit`.
 * 2. `Prefer` (RFC 7240): `wait=N` → sync, waiting at most N seconds (also with
 *    `respond-async`, which then means "answer 202 after N s"); `respond-async`
 *    alone → async.
 * 3. A forced `async.mode` (`sync` or `async`).
 * 4. `auto`: triggers and the resource-style bots endpoint answer async (webhook
 *    callers do not wait). Chat and operations use the estimate: ≥
 *    `async.threshold_seconds` → async; below → sync, handed off at the
 *    threshold. With no estimate yet, chat goes sync (handed off at the
 *    threshold) and operations async. A request delayed to a later start is async.
 *
 * **Answering.** Async: `202 Accepted` with `Location` and `Retry-After` once
 * the request is committed. Sync: the call is held until the request is
 * terminal and answered `200` with the status resource (also when it failed);
 * if it is still running at its wait limit, it is handed back as a `202` at
 * that moment — never held longer, never run twice. A caller who hangs up does
 * not cancel the request.
 */
import type { FastifyReply } from 'fastify';
import { formatEstimate, type Engine, type Estimate } from '../engine/index.js';
import { isTerminal, type Request, type RequestMode } from '../model/index.js';
import { presentRequest, retryAfterSeconds } from './present.js';

/** How an endpoint behaves in `auto` mode. */
export type EndpointKind = 'chat' | 'operation' | 'trigger' | 'bots';

export interface ModeInputs {
  /** The request's own choice (true = async), if any. */
  explicitAsync: boolean | undefined;
  /** The `Prefer` header. */
  prefer: string | string[] | undefined;
  configMode: 'auto' | 'sync' | 'async';
  endpoint: EndpointKind;
  estimate: Estimate | null;
  thresholdMs: number;
  syncWaitLimitMs: number;
  /** The request starts later (delay_seconds / run_at). */
  delayed: boolean;
}

export interface ModeChoice {
  mode: RequestMode;
  /** For sync: how long the call may be held before the 202 handoff. */
  waitMs: number;
  /** Which rule decided (logged; useful when a caller asks why). */
  reason: 'request' | 'prefer' | 'config' | 'estimate' | 'endpoint' | 'delayed';
}

export function chooseMode(i: ModeInputs): ModeChoice {
  const sync = (waitMs: number, reason: ModeChoice['reason']): ModeChoice => ({
    mode: 'sync',
    waitMs: Math.min(waitMs, i.syncWaitLimitMs),
    reason,
  });
  const async = (reason: ModeChoice['reason']): ModeChoice => ({ mode: 'async', waitMs: 0, reason });
  if (i.explicitAsync !== undefined) return i.explicitAsync ? async('request') : sync(i.syncWaitLimitMs, 'request');
  const prefer = parsePrefer(i.prefer);
  if (prefer.waitSeconds !== undefined) return sync(prefer.waitSeconds * 1000, 'prefer');
  if (prefer.respondAsync) return async('prefer');
  if (i.configMode === 'sync') return sync(i.syncWaitLimitMs, 'config');
  if (i.configMode === 'async') return async('config');
  if (i.delayed) return async('delayed');
  if (i.endpoint === 'trigger' || i.endpoint === 'bots') return async('endpoint');
  if (i.estimate) return i.estimate.highMs >= i.thresholdMs ? async('estimate') : sync(i.thresholdMs, 'estimate');
  return i.endpoint === 'chat' ? sync(i.thresholdMs, 'endpoint') : async('endpoint');
}

/** The parts of `Prefer` that Errand honours: `respond-async` and `wait=N` (seconds). */
function parsePrefer(header: string | string[] | undefined): { respondAsync: boolean; waitSeconds: number | undefined } {
  const values = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(/[,;]/).map((p) => p.trim().toLowerCase());
  let waitSeconds: number | undefined;
  for (const part of values) {
    const match = /^wait\s*=\s*"?(\d+(?:\.\d+)?)"?$/.exec(part);
    if (match?.[1] !== undefined) waitSeconds = Number(match[1]);
  }
  return { respondAsync: values.includes('respond-async'), waitSeconds };
}

export interface AnswerOptions {
  /** `/v1/tasks/{id}` Location and `task_id` fields (the resource-style alias). */
  taskAlias?: boolean;
  /** For sync: longest the call is held, ms. */
  waitMs: number;
  estimate: Estimate | null;
  /** This answer replays an earlier submission with the same Idempotency-Key. */
  replayed?: boolean;
}

export async function answerSubmission(
  engine: Engine,
  reply: FastifyReply,
  request: Request,
  options: AnswerOptions,
): Promise<FastifyReply> {
  if (options.replayed) void reply.header('idempotent-replayed', 'true');
  if (request.mode === 'sync') {
    const final = await engine.waitForTerminal(request.id, options.waitMs);
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
  body.estimated_time = options.estimate ? formatEstimate(options.estimate) : null;
  body.estimated_ms = options.estimate ? options.estimate.highMs : null;
  body.location = location;
  return reply
    .code(202)
    .header('location', location)
    .header('retry-after', String(retryAfterSeconds(request, engine.clock.now()) ?? 1))
    .send(body);
}
