/**
 * The status resource and its actions, under `/v1/requests` (and the
 * resource-style alias `/v1/tasks`):
 * - `GET /v1/requests/{id}` — status, progress, result or error; `Retry-After` while not terminal.
 * - `GET /v1/requests/{id}/result` — the result once completed (409 before, or if it did not complete).
 * - `DELETE /v1/requests/{id}` — cancel (409 if already finished).
 * - `GET /v1/requests` — list, newest first, filtered by `status` and `operation`, cursor-paginated.
 * Another tenant's request is a 404, never a 403: ids do not leak.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Engine } from '../../engine/index.js';
import { ErrandError, isRequestId, isTerminal, REQUEST_STATUSES, type Request } from '../../model/index.js';
import { callerOf } from '../caller.js';
import { presentRequest, retryAfterSeconds } from '../present.js';
import { parseWith } from '../validate.js';

/** Page size when `limit` is not given, and the most a page may hold. */
export const LIST_LIMIT_DEFAULT = 20;
export const LIST_LIMIT_MAX = 100;

const listQuery = z.strictObject({
  status: z
    .string()
    .transform((value) => value.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.enum(REQUEST_STATUSES, { error: `must be one or more of ${REQUEST_STATUSES.join(', ')}, comma-separated` })))
    .optional(),
  operation: z.string().min(1).max(64).optional(),
  limit: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(LIST_LIMIT_MAX, `must be at most ${LIST_LIMIT_MAX}`)
    .optional(),
  cursor: z.string().max(200).optional(),
});

export function requestRoutes(app: FastifyInstance, deps: { engine: Engine }): void {
  const { engine } = deps;

  async function load(request: FastifyRequest): Promise<Request> {
    const { id } = request.params as { id: string };
    const caller = callerOf(request);
    const found = isRequestId(id) ? await engine.store.requestGetById({ id, tenant: caller.tenant }) : null;
    if (!found) throw new ErrandError('request_not_found', `No request with id "${id.slice(0, 80)}".`);
    return found;
  }

  for (const base of ['/v1/requests', '/v1/tasks']) {
    const taskAlias = base === '/v1/tasks';

    app.get(`${base}/:id`, async (request, reply) => {
      const found = await load(request);
      setRetryAfter(reply, found, engine.clock.now());
      return presentRequest(found, { taskAlias });
    });

    app.get(`${base}/:id/result`, async (request, reply) => {
      const found = await load(request);
      if (found.status === 'completed') return { request_id: found.id, status: found.status, result: found.result };
      if (!isTerminal(found.status)) {
        throw new ErrandError('request_not_finished', `Request ${found.id} is ${found.status}; poll ${base}/${found.id} until it is completed.`, {
          details: { request_id: found.id, status: found.status },
          retryAfterSeconds: retryAfterSeconds(found, engine.clock.now()),
        });
      }
      void reply;
      throw new ErrandError('result_unavailable', `Request ${found.id} is ${found.status} and has no result.`, {
        details: { request_id: found.id, status: found.status, request_error: found.error },
      });
    });

    app.delete(`${base}/:id`, async (request) => {
      const { id } = request.params as { id: string };
      const caller = callerOf(request);
      const outcome = isRequestId(id) ? await engine.cancel({ id, tenant: caller.tenant }) : ({ outcome: 'not_found' } as const);
      if (outcome.outcome === 'not_found') throw new ErrandError('request_not_found', `No request with id "${id.slice(0, 80)}".`);
      if (outcome.outcome === 'already_finished') {
        throw new ErrandError('request_already_finished', `Request ${id} already finished as ${outcome.request.status}; it cannot be cancelled.`, {
          details: { request_id: id, status: outcome.request.status },
        });
      }
      request.log.info({ request_id: id, tenant: outcome.transition.request.tenant, operation: outcome.transition.request.operation }, 'request cancelled');
      return { request_id: id, status: 'cancelled', message: 'Request cancelled by user' };
    });

    app.get(base, async (request) => {
      const caller = callerOf(request);
      const query = parseWith(listQuery, request.query, 'query');
      const limit = query.limit ?? LIST_LIMIT_DEFAULT;
      const beforeId = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      const rows = await engine.store.requestList({ tenant: caller.tenant, statuses: query.status, operation: query.operation, beforeId, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      const hasMore = rows.length > limit;
      return {
        data: page.map((r) => presentRequest(r, { taskAlias })),
        has_more: hasMore,
        next_cursor: hasMore && last ? encodeCursor(last.id) : null,
      };
    });
  }
}

function setRetryAfter(reply: FastifyReply, request: Request, now: number): void {
  const seconds = retryAfterSeconds(request, now);
  if (seconds !== undefined) void reply.header('retry-after', String(seconds));
}

/** Cursors are opaque to clients: base64url of `v1:<last id>`. */
export function encodeCursor(id: string): string {
  return Buffer.from(`v1:${id}`).toString('base64url');
}

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const id = text.startsWith('v1:') ? text.slice(3) : '';
  if (!isRequestId(id)) throw new ErrandError('invalid_cursor', undefined, { field: 'cursor' });
  return id;
}
