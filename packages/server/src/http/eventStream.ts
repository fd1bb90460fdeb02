/**
 * One request's event log as Server-Sent Events: what `GET /v1/requests/{id}/events`
 * and streaming chat (`POST /v1/chat` with `"stream": true`) send.
 *
 * **No gaps, no duplicates.** The route creates the request's follow
 * (`engine.follow(id)`, engine/follow.ts) *before* it reads anything from the
 * store; the feed starts it after the resume point: the log is replayed from
 * the store in pages, then live events follow, each seq once, in order.
 *
 * **Cheap fan-out.** Each live entry is serialised and framed as an SSE event
 * once (per presentation: plain or `/v1/tasks`) and the same string is queued
 * on every subscriber's stream; sse.ts writes the queues later, so the emitter
 * is not held by the number of subscribers.
 *
 * **Event types.** `status` (any non-terminal status change), `progress`,
 * `output`, and for the terminal entry `completed` / `failed` / `cancelled`,
 * whose data is the status resource (with `result` or `error`). The stream
 * ends after the terminal event; a request that had already finished when the
 * client connected is replayed and the stream closed.
 *
 * Slow consumers and keep-alives are the SSE writer's business (sse.ts).
 */
import type { FastifyInstance } from 'fastify';
import { EVENT_PAGE_SIZE, type Engine, type Follow } from '../engine/index.js';
import { ErrandError, eventStatus, isTerminal, type RequestEvent } from '../model/index.js';
import type { RequestSummary } from '../store/index.js';
import { presentRequest } from './present.js';
import { frameSse, type SseStream } from './sse.js';

/** The SSE event types a request's stream carries. */
export type RequestSseType = 'status' | 'progress' | 'output' | 'completed' | 'failed' | 'cancelled';

/** The SSE event type of an event-log entry. */
function sseTypeOf(entry: RequestEvent): RequestSseType {
  if (entry.type !== 'status') return entry.type;
  const status = eventStatus(entry);
  return status !== null && isTerminal(status) ? (status as 'completed' | 'failed' | 'cancelled') : 'status';
}

/** True for the types that end a stream. */
function isTerminalType(type: RequestSseType): type is 'completed' | 'failed' | 'cancelled' {
  return type === 'completed' || type === 'failed' || type === 'cancelled';
}

/**
 * The resume point: the `Last-Event-ID` header (what `EventSource` sends when
 * it reconnects) or else `?after=N`; 0 (everything) when neither is given.
 * Anything but a whole number ≥ 0 is a 400 `invalid_parameter`.
 */
export function parseResumePoint(header: string | string[] | undefined, after: unknown): number {
  if (header !== undefined) return parseSeq(header, 'Last-Event-ID');
  if (after !== undefined) return parseSeq(after, 'after');
  return 0;
}

function parseSeq(value: unknown, field: 'Last-Event-ID' | 'after'): number {
  const text = typeof value === 'string' ? value.trim() : null;
  if (text === null || !/^\d{1,15}$/.test(text)) {
    const example = field === 'after' ? 'after=12' : 'Last-Event-ID: 12';
    throw new ErrandError(
      'invalid_parameter',
      `${field}: must be the id of an event you received, a whole number 0 or more (e.g. ${example}); 0 replays every event`,
      { field },
    );
  }
  return Number(text);
}

/**
 * Throws 400 `invalid_parameter` when `afterSeq` is beyond the request's event
 * log; otherwise returns the log's first page after `afterSeq` (one store read,
 * which the feed then sends first).
 */
export async function checkResumePoint(engine: Engine, id: string, afterSeq: number, field: string): Promise<RequestEvent[]> {
  if (afterSeq === 0) return engine.listEvents({ id, afterSeq: 0, limit: EVENT_PAGE_SIZE });
  // Seqs are gapless from 1: `afterSeq` exists exactly when the entry before it is followed by it.
  const page = await engine.listEvents({ id, afterSeq: afterSeq - 1, limit: EVENT_PAGE_SIZE + 1 });
  if (page[0]?.seq !== afterSeq) {
    throw new ErrandError(
      'invalid_parameter',
      `${field}: ${afterSeq} is beyond the event log of request ${id}, which has no event with that id yet; ` +
        'resume from the id of the last event you received (or 0 for every event)',
      { field, details: { request_id: id, after: afterSeq } },
    );
  }
  return page.slice(1);
}

export interface FeedParams {
  stream: SseStream;
  /** Created (`engine.follow(id)`) before `request` was read; the feed starts it. */
  follow: Follow;
  /** The request as read after the follow was created (tenant already checked). */
  request: RequestSummary;
  /** The last seq the client has; entries after it are sent. */
  afterSeq: number;
  /** Entries after `afterSeq` already read from the store (see `checkResumePoint`). */
  firstPage?: RequestEvent[] | undefined;
  /** Which non-terminal entries to send (default all); the terminal entry is always sent. */
  include?: ((type: RequestSseType, entry: RequestEvent) => boolean) | undefined;
  /** Present the terminal status resource with the `/v1/tasks` alias fields. */
  taskAlias?: boolean | undefined;
}

/** SSE frames of live entries, built once per entry whoever sends it. */
const liveFrames = new WeakMap<RequestEvent, { plain?: string; alias?: string }>();

/**
 * Sends the request's events after `afterSeq` on `stream`, then live ones,
 * until the terminal event (then closes the stream) or the stream closes.
 * Never rejects: a store failure closes the stream (the client resumes).
 */
export function feedRequestEvents(params: FeedParams): void {
  const { stream, follow, include } = params;
  const taskAlias = params.taskAlias ?? false;
  const stop = () => {
    follow.close();
    stream.close();
  };
  stream.onClose(stop);
  follow.start({
    afterSeq: params.afterSeq,
    firstPage: params.firstPage,
    // The request had finished before the replay: the log is complete, close after it.
    finished: isTerminal(params.request.status),
    onEntry: ({ event, request, live }) => {
      const type = sseTypeOf(event);
      if (!isTerminalType(type) && include && !include(type, event)) return true;
      const frame = live ? sharedFrame(event, type, request, taskAlias) : frameOf(event, type, request, taskAlias);
      if (!stream.sendFrame(frame)) {
        stop();
        return false;
      }
      // The terminal entry ends the follow; the stream ends with it.
      if (isTerminalType(type)) stream.close();
      return true;
    },
    onEnd: () => stream.close(),
  });
}

function sharedFrame(entry: RequestEvent, type: RequestSseType, request: RequestSummary | null, taskAlias: boolean): string {
  let cached = liveFrames.get(entry);
  if (!cached) {
    cached = {};
    liveFrames.set(entry, cached);
  }
  const key = taskAlias ? 'alias' : 'plain';
  return (cached[key] ??= frameOf(entry, type, request, taskAlias));
}

function frameOf(entry: RequestEvent, type: RequestSseType, request: RequestSummary | null, taskAlias: boolean): string {
  return frameSse({ id: entry.seq, event: type, data: dataJson(entry, request, taskAlias) });
}

/** An entry's SSE data: the log data, or for a terminal entry the status resource. */
function dataJson(entry: RequestEvent, request: RequestSummary | null, taskAlias: boolean): string {
  if (isTerminalType(sseTypeOf(entry))) {
    if (request && isTerminal(request.status)) return JSON.stringify(presentRequest(request, { taskAlias }));
    // The request was purged meanwhile: the log entry is all there is.
    return JSON.stringify({ request_id: entry.request_id, ...(entry.data as Record<string, unknown>) });
  }
  return JSON.stringify(entry.data);
}

/**
 * Registers a route group's open streams so that closing the app ends them
 * (an open stream would otherwise hold `app.close()` until the client left).
 * Returns the function that tracks one stream.
 */
export function trackStreams(app: FastifyInstance): (stream: SseStream) => void {
  const open = new Set<SseStream>();
  app.addHook('preClose', async () => {
    for (const stream of [...open]) stream.close();
  });
  return (stream) => {
    open.add(stream);
    stream.onClose(() => open.delete(stream));
  };
}
