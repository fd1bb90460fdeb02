/**
 * The status resource and its actions, under `/v1/requests` (and the
 * resource-style alias `/v1/tasks`):
 * - `GET /v1/requests/{id}` — status, progress, result or error; `Retry-After`
 *   while not terminal; `ETag` / `If-None-Match` → 304; `?wait=N` long-polls.
 * - `GET /v1/requests/{id}/result` — the result once completed (409 before, or if it did not complete).
 * - `DELETE /v1/requests/{id}` — cancel (409 if already finished).
 * - `POST /v1/requests/{id}/retry` — re-run a failed or cancelled request as a new one (idempotent).
 * - `GET /v1/requests` — list, newest first, filtered by `status` and `operation`, cursor-paginated.
 * Another tenant's request is a 404, never a 403: ids do not leak. A request
 * purged by retention answers 410 `request_gone` (with its final status) until
 * its tombstone expires (`retention.tombstone_ttl`), then 404.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ErrandConfig } from '../../config/index.js';
import type { Engine } from '../../engine/index.js';
import type { RequestState, RequestSummary } from '../../store/index.js';
import { ErrandError, isRequestId, isTerminal, REQUEST_STATUSES, type Request } from '../../model/index.js';
import type { Caller } from '../auth.js';
import { callerOf } from '../caller.js';
import { matchesIfNoneMatch, parseIfNoneMatch, stateTag, type IfNoneMatch } from '../etag.js';
import { limitsOf } from '../limits/index.js';
import { LIST_RESULT_MAX_BYTES, presentRequest, retryAfterSeconds } from '../present.js';
import { parseWith } from '../validate.js';

/** Page size when `limit` is not given, and the most a page may hold. */
const LIST_LIMIT_DEFAULT = 20;
const LIST_LIMIT_MAX = 100;

/** `GET /v1/requests` query (also in the OpenAPI document). */
export const listQuery = z.strictObject({
  status: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
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

/** `long_poll_max` when no config is given: 30 s. */
const LONG_POLL_MAX_DEFAULT_MS = 30_000;
/** The largest `wait` accepted (then clamped to `server.long_poll_max`); beyond it a value is an error, not a wish. */
const WAIT_MAX_ACCEPTED_SECONDS = 86_400;

export interface RequestRouteDeps {
  engine: Engine;
  /** For `server.long_poll_max` (default 30 s when absent). */
  config?: Pick<ErrandConfig, 'server'> | undefined;
}

/** The status resource as sent: the body's exact JSON and its ETag. */
interface StatusView {
  request: RequestSummary;
  body: string;
  etag: string;
}

export function requestRoutes(app: FastifyInstance, deps: RequestRouteDeps): void {
  const { engine } = deps;
  const longPollMaxMs = deps.config?.server.long_poll_max ?? LONG_POLL_MAX_DEFAULT_MS;
  /** Long-polls in flight, answered at once when the server closes. */
  const polls = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const poll of polls) poll.abort();
  });

  /** Throws 410 `request_gone` if retention purged `id` (tombstone still kept, same tenant), else 404. */
  const missing = (id: string, caller: Caller): Promise<never> => missingRequest(engine, id, caller);

  async function load(request: FastifyRequest): Promise<RequestSummary> {
    const { id } = request.params as { id: string };
    const caller = callerOf(request);
    const found = isRequestId(id) ? await engine.getRequestSummary({ id, tenant: caller.tenant }) : null;
    return found ?? missing(id, caller);
  }

  for (const base of ['/v1/requests', '/v1/tasks']) {
    const taskAlias = base === '/v1/tasks';

    const presentation = taskAlias ? 'tasks' : 'requests';
    const view = (request: RequestSummary): StatusView => {
      const body = JSON.stringify(presentRequest(request, { taskAlias }));
      return { request, body, etag: stateTag(request, presentation) };
    };

    app.get(`${base}/:id`, async (request, reply) => {
      const { id } = request.params as { id: string };
      const caller = callerOf(request);
      const waitMs = parseWait((request.query as Record<string, unknown> | undefined)?.wait, longPollMaxMs);
      const condition = parseIfNoneMatch(request.headers['if-none-match']);
      const read = async (): Promise<StatusView | null> => {
        const found = await engine.getRequestSummary({ id, tenant: caller.tenant });
        return found && view(found);
      };
      let current: StatusView | null;
      if (!isRequestId(id)) current = null;
      else if (waitMs <= 0) {
        // A conditional poll reads the small state first: unchanged is a 304 without reading or building the body.
        if (condition !== null) {
          const state = await engine.getRequestState({ id, tenant: caller.tenant });
          if (!state) return missing(id, caller);
          const etag = stateTag(state, presentation);
          if (matchesIfNoneMatch(condition, etag)) return notModified(reply, etag, state, engine.clock.now());
        }
        current = await read();
      } else {
        limitsOf(request).holdWait(request, reply);
        current = await waitForChange(request, id, waitMs, condition, read);
      }
      if (!current) return missing(id, caller);

      if (matchesIfNoneMatch(condition, current.etag)) return notModified(reply, current.etag, current.request, engine.clock.now());
      void reply.header('etag', current.etag).header('cache-control', 'private, no-cache');
      setRetryAfter(reply, current.request, engine.clock.now());
      return reply.code(200).type('application/json; charset=utf-8').send(current.body);
    });

    app.get(`${base}/:id/result`, async (request, reply) => {
      const found = await load(request);
      if (found.status === 'completed') return { request_id: found.id, status: found.status, result: found.result };
      if (!isTerminal(found.status)) {
        throw new ErrandError(
          'request_not_finished',
          `Request ${found.id} is ${found.status}; poll ${base}/${found.id} until it is completed.`,
          {
            details: { request_id: found.id, status: found.status },
            retryAfterSeconds: retryAfterSeconds(found, engine.clock.now()),
          },
        );
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
      if (outcome.outcome === 'not_found') return missing(id, caller);
      if (outcome.outcome === 'already_finished') {
        throw new ErrandError(
          'request_already_finished',
          `Request ${id} already finished as ${outcome.request.status}; it cannot be cancelled.`,
          {
            details: { request_id: id, status: outcome.request.status },
          },
        );
      }
      request.log.info(
        { request_id: id, tenant: outcome.transition.request.tenant, operation: outcome.transition.request.operation },
        'request cancelled',
      );
      return { request_id: id, status: 'cancelled', message: 'Request cancelled by user' };
    });

    app.post(`${base}/:id/retry`, async (request, reply) => {
      const { id } = request.params as { id: string };
      const caller = callerOf(request);
      if (!isRequestId(id)) return missing(id, caller);
      let outcome: { request: Request; created: boolean };
      try {
        outcome = await engine.retryRequest({ id, tenant: caller.tenant });
      } catch (err) {
        if (err instanceof ErrandError && err.type === 'request_not_found') return missing(id, caller);
        throw err;
      }
      const { request: rerun, created } = outcome;
      const location = `${base}/${rerun.id}`;
      if (created) {
        request.log.info({ request_id: rerun.id, retry_of: id, tenant: rerun.tenant, operation: rerun.operation }, 'request retried');
      }
      void reply.code(created ? 202 : 200).header('location', location);
      setRetryAfter(reply, rerun, engine.clock.now());
      const body: Record<string, unknown> = { request_id: rerun.id };
      if (taskAlias) body.task_id = rerun.id;
      body.retry_of = id;
      body.status = rerun.status;
      body.location = location;
      return body;
    });

    app.get(base, async (request) => {
      const caller = callerOf(request);
      const query = parseWith(listQuery, request.query, 'query');
      const limit = query.limit ?? LIST_LIMIT_DEFAULT;
      const beforeId = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      const rows = await engine.listRequests({
        tenant: caller.tenant,
        statuses: query.status,
        operation: query.operation,
        beforeId,
        limit: limit + 1,
        resultMaxBytes: LIST_RESULT_MAX_BYTES,
      });
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

  /**
   * Holds a status read until the request differs from what the client has —
   * the `If-None-Match` tags, or else the state at the first read — or is
   * terminal or gone, for at most `waitMs`. Ends early when the client hangs
   * up or the server closes.
   */
  function waitForChange(
    request: FastifyRequest,
    id: string,
    waitMs: number,
    condition: IfNoneMatch,
    read: () => Promise<StatusView | null>,
  ): Promise<StatusView | null> {
    let baseline = condition;
    const poll = new AbortController();
    const hangUp = () => poll.abort();
    polls.add(poll);
    request.raw.once('close', hangUp);
    // The wait follows the request before its first read (no lost wake-up); every entry triggers a read.
    return engine
      .waitFor({
        id,
        waitMs,
        read,
        signal: poll.signal,
        ready: (current) => {
          if (!current || isTerminal(current.request.status)) return true;
          if (baseline === null) {
            baseline = { any: false, tags: new Set([current.etag]) };
            return false;
          }
          return !matchesIfNoneMatch(baseline, current.etag);
        },
      })
      .finally(() => {
        polls.delete(poll);
        request.raw.off('close', hangUp);
      });
  }
}

/**
 * Throws 410 `request_gone` if retention purged `id` (its tombstone still kept,
 * same tenant), else 404 `request_not_found`. For every route about one request.
 */
export async function missingRequest(engine: Engine, id: string, caller: Caller): Promise<never> {
  if (isRequestId(id)) {
    const tombstone = await engine.getTombstone({ id, tenant: caller.tenant });
    if (tombstone && tombstone.expires_at > engine.clock.now()) {
      const completedAt = new Date(tombstone.completed_at).toISOString();
      const purgedAt = new Date(tombstone.purged_at).toISOString();
      throw new ErrandError(
        'request_gone',
        `Request ${id} finished as ${tombstone.status} at ${completedAt} and was purged by retention at ${purgedAt}.`,
        {
          details: { request_id: id, status: tombstone.status, completed_at: completedAt, purged_at: purgedAt },
        },
      );
    }
  }
  throw new ErrandError('request_not_found', `No request with id "${id.slice(0, 80)}".`);
}

/**
 * `?wait=N`: seconds (decimals allowed) to hold a status read, clamped to the
 * cap; absent → 0. Negative, non-numeric, repeated or absurd (over a day) → 400.
 */
function parseWait(value: unknown, capMs: number): number {
  if (value === undefined) return 0;
  const text = typeof value === 'string' ? value.trim() : null;
  if (text === null || text.length > 32 || !/^(?:\d+(?:\.\d*)?|\.\d+)$/.test(text)) {
    throw new ErrandError('invalid_parameter', 'wait: must be a number of seconds, 0 or more (e.g. wait=10 or wait=2.5)', {
      field: 'wait',
    });
  }
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds > WAIT_MAX_ACCEPTED_SECONDS) {
    throw new ErrandError(
      'invalid_parameter',
      `wait: must be at most ${WAIT_MAX_ACCEPTED_SECONDS} seconds (longer waits are clamped to server.long_poll_max anyway)`,
      { field: 'wait' },
    );
  }
  return Math.min(Math.round(seconds * 1000), capMs);
}

/** `304 Not Modified`: the tag, no-cache, and `Retry-After` while not terminal; no body. */
function notModified(reply: FastifyReply, etag: string, state: RequestState, now: number): FastifyReply {
  void reply.header('etag', etag).header('cache-control', 'private, no-cache');
  setRetryAfter(reply, state, now);
  return reply.code(304).send();
}

function setRetryAfter(reply: FastifyReply, request: RequestState, now: number): void {
  const seconds = retryAfterSeconds(request, now);
  if (seconds !== undefined) void reply.header('retry-after', String(seconds));
}

/** Cursors are opaque to clients: base64url of `v1:<last id>`. */
function encodeCursor(id: string): string {
  return Buffer.from(`v1:${id}`).toString('base64url');
}

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const id = text.startsWith('v1:') ? text.slice(3) : '';
  if (!isRequestId(id)) throw new ErrandError('invalid_cursor', undefined, { field: 'cursor' });
  return id;
}
