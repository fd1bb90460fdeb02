/**
 * `GET /v1/requests/{id}/events` (and `/v1/tasks/{id}/events`): a request's
 * event log as Server-Sent Events, replayed from the store and then live, until
 * the terminal event. Resume with `Last-Event-ID` (or `?after=N`); resuming
 * after the terminal event answers `204` (which stops `EventSource` from
 * reconnecting). Tenant-scoped
 * like the status resource: another tenant's id is a 404, a purged one 410.
 *
 * Also `streamSubmission`, the answer to `POST /v1/chat` with `"stream": true`:
 * a `request` event (the id and where to resume), the `output` chunks, then
 * the terminal event. The streaming itself is in ../eventStream.ts; docs/sse.md
 * is the guide.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ErrandConfig } from '../../config/index.js';
import type { Engine } from '../../engine/index.js';
import type { RequestSummary } from '../../store/index.js';
import { eventStatus, isRequestId, isTerminal, type Request, type RequestEvent } from '../../model/index.js';
import { callerOf } from '../caller.js';
import { checkResumePoint, feedRequestEvents, parseResumePoint, trackStreams, type RequestSseType } from '../eventStream.js';
import { limitsOf } from '../limits/index.js';
import { openSse, type SseStream } from '../sse.js';
import { missingRequest } from './requests.js';

export interface EventRouteDeps {
  engine: Engine;
  config: Pick<ErrandConfig, 'server'>;
}

export function eventRoutes(app: FastifyInstance, deps: EventRouteDeps): void {
  const { engine, config } = deps;
  const track = trackStreams(app);

  for (const base of ['/v1/requests', '/v1/tasks']) {
    const taskAlias = base === '/v1/tasks';
    app.get(`${base}/:id/events`, async (request, reply) => {
      const { id } = request.params as { id: string };
      const caller = callerOf(request);
      const header = request.headers['last-event-id'];
      const afterSeq = parseResumePoint(header, (request.query as Record<string, unknown> | undefined)?.after);
      if (!isRequestId(id)) return missingRequest(engine, id, caller);

      // Follow before the first read: nothing committed from here on can be missed.
      const follow = engine.follow(id);
      let found: RequestSummary | null;
      let firstPage;
      try {
        found = await engine.getRequestSummary({ id, tenant: caller.tenant });
        if (!found) return await missingRequest(engine, id, caller);
        firstPage = await checkResumePoint(engine, id, afterSeq, header === undefined ? 'after' : 'Last-Event-ID');
        if (!isTerminal(found.status) || firstPage.length > 0) limitsOf(request).holdStream(request, reply);
      } catch (err) {
        follow.close();
        throw err;
      }

      if (isTerminal(found.status) && firstPage.length === 0) {
        // The client has every event, the last one included: 204 tells EventSource to stop reconnecting.
        follow.close();
        return reply.code(204).header('x-request-id', id).send();
      }
      const stream = openSse(reply, {
        clock: engine.clock,
        keepAliveMs: config.server.sse_keep_alive,
        maxBufferedBytes: config.server.sse_max_buffer,
        headers: { 'x-request-id': id },
      });
      track(stream);
      // The client may have left while we read the store: its 'close' has passed already.
      feedRequestEvents({ stream, follow, request: found, afterSeq, firstPage, taskAlias });
      return reply;
    });
  }
}

export interface StreamSubmissionParams {
  engine: Engine;
  config: Pick<ErrandConfig, 'server'>;
  reply: FastifyReply;
  /** The request just accepted (or replayed for the same Idempotency-Key). */
  request: Request;
  replayed: boolean;
  /** Registers the stream so that closing the app ends it. */
  track: (stream: SseStream) => void;
}

/**
 * Answers a submission with its events: first `request` (`request_id`,
 * `status`, `location`, `events`; no id, so a resume from it replays
 * everything), then each `output` chunk (id = its event-log seq), then
 * `completed` / `failed` / `cancelled` with the status resource. Progress and
 * status entries are not sent here (the events endpoint has them), except a
 * `status` back to `pending` after the start: the attempt stopped and will run
 * again, so chunks that follow start a new answer. A client
 * that hangs up leaves the request running. An idempotent replay streams the
 * same request again from its first event.
 */
export function streamSubmission(params: StreamSubmissionParams): FastifyReply {
  const { engine, config, reply, request: created } = params;
  const location = `/v1/requests/${created.id}`;
  // Follow before the stream reads the log; the request is already committed.
  const follow = engine.follow(created.id);
  const headers: Record<string, string> = { location, 'x-request-id': created.id };
  if (params.replayed) headers['idempotent-replayed'] = 'true';
  const stream = openSse(reply, {
    clock: engine.clock,
    keepAliveMs: config.server.sse_keep_alive,
    maxBufferedBytes: config.server.sse_max_buffer,
    headers,
  });
  params.track(stream);
  stream.send({
    event: 'request',
    data: JSON.stringify({ request_id: created.id, status: created.status, location, events: `${location}/events` }),
  });
  feedRequestEvents({ stream, follow, request: created, afterSeq: 0, include: chatIncludes });
  return reply;
}

/** Streaming chat sends output chunks, and status entries that start a new attempt (retry or release). */
function chatIncludes(type: RequestSseType, entry: RequestEvent): boolean {
  if (type === 'output') return true;
  return type === 'status' && entry.seq > 1 && eventStatus(entry) === 'pending';
}
