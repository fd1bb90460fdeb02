/**
 * One request's event log as Server-Sent Events: what `GET /v1/requests/{id}/events`
 * and streaming chat (`POST /v1/chat` with `"stream": true`) send.
 *
 * **No gaps, no duplicates.** A feed subscribes to the request's live events
 * (`engine.events.onRequest`) *before* anything is read from the store, and
 * buffers them while it replays the log from the store (`eventListAfter`, in
 * pages). Then it drains the buffer, dropping what it already sent (seq ≤ the
 * last id sent), and switches to live events. Every event-log entry has a
 * gapless `seq`; should a live event ever arrive with a gap before it (out of
 * order), the feed goes back to the store for the missing entries — one read
 * for that subscriber, not one per event.
 *
 * **Cheap fan-out.** Live events come from the one in-process emitter with the
 * entry (and, for status changes, the request) as committed: no store query
 * per subscriber per event. The JSON of each live entry is built once and
 * shared by every subscriber.
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
import type { Engine, EngineEventMap, EngineEvents } from '../engine/index.js';
import { ErrandError, isTerminal, type RequestEvent, type RequestStatus } from '../model/index.js';
import type { RequestSummary } from '../store/index.js';
import { presentRequest } from './present.js';
import type { SseStream } from './sse.js';

/** Event-log entries read from the store per page while replaying. */
export const EVENT_PAGE_SIZE = 500;
/** Live events held per subscriber while it replays; past this they are dropped and read from the store instead. */
export const LIVE_BUFFER_MAX = 10_000;
/** Replay rounds (store catch-ups) one stream may need before it gives up and closes (the client resumes). */
const REPLAY_ROUNDS_MAX = 1000;
/** Pages per replay round: 500 × 100 000 = fifty million entries. */
const REPLAY_PAGES_MAX = 100_000;

type LivePayload = EngineEventMap['request:changed'];

/** The SSE event types a request's stream carries. */
export type RequestSseType = 'status' | 'progress' | 'output' | 'completed' | 'failed' | 'cancelled';

/** The SSE event type of an event-log entry. */
export function sseTypeOf(entry: RequestEvent): RequestSseType {
  if (entry.type !== 'status') return entry.type;
  const status = (entry.data as { status?: RequestStatus } | null)?.status;
  return status !== undefined && isTerminal(status) ? (status as 'completed' | 'failed' | 'cancelled') : 'status';
}

/** True for the types that end a stream. */
export function isTerminalType(type: RequestSseType): type is 'completed' | 'failed' | 'cancelled' {
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
  if (afterSeq === 0) return engine.store.eventListAfter({ id, afterSeq: 0, limit: EVENT_PAGE_SIZE });
  // Seqs are gapless from 1: `afterSeq` exists exactly when the entry before it is followed by it.
  const page = await engine.store.eventListAfter({ id, afterSeq: afterSeq - 1, limit: EVENT_PAGE_SIZE + 1 });
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

/**
 * A live subscription to one request, buffering until the feed starts. Create
 * it before reading anything about the request from the store.
 */
export class LiveSubscription {
  private buffer: LivePayload[] = [];
  private overflowed = false;
  private listener: ((payload: LivePayload) => void) | null = null;
  private readonly off: () => void;

  constructor(events: EngineEvents, id: string) {
    this.off = events.onRequest(id, (payload) => {
      if (this.listener) this.listener(payload);
      else if (this.buffer.length < LIVE_BUFFER_MAX) this.buffer.push(payload);
      else this.overflowed = true;
    });
  }

  /** Live events received while nobody listened; `overflowed` when some were dropped (read them from the store). */
  take(): { payloads: LivePayload[]; overflowed: boolean } {
    const taken = { payloads: this.buffer, overflowed: this.overflowed };
    this.buffer = [];
    this.overflowed = false;
    return taken;
  }

  /** From now on, live events go to `listener` (null: buffer again). */
  listen(listener: ((payload: LivePayload) => void) | null): void {
    this.listener = listener;
  }

  close(): void {
    this.listener = null;
    this.buffer = [];
    this.off();
  }
}

export interface FeedParams {
  engine: Engine;
  stream: SseStream;
  /** Created before `request` was read. */
  subscription: LiveSubscription;
  /** The request as read after subscribing (tenant already checked). */
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

/** JSON of live entries, built once per entry whoever sends it. */
const liveJson = new WeakMap<RequestEvent, { plain?: string; alias?: string }>();

/**
 * Sends the request's events after `afterSeq` on `stream`, then live ones,
 * until the terminal event (then closes the stream) or the stream closes.
 * Never rejects: a store failure closes the stream (the client resumes).
 */
export function feedRequestEvents(params: FeedParams): void {
  const { engine, stream, subscription, include } = params;
  const id = params.request.id;
  const taskAlias = params.taskAlias ?? false;
  /** The request had finished before the replay: the log is complete, close after it. */
  const finishedBefore = isTerminal(params.request.status);
  let last = params.afterSeq;
  let done = false;
  let replaying = false;

  const stop = () => {
    if (done) return;
    done = true;
    subscription.close();
    stream.close();
  };
  stream.onClose(stop);

  /** Sends one entry (in order); false once the stream is over. */
  const send = (entry: RequestEvent, request: RequestSummary | null, shared: boolean): boolean => {
    const type = sseTypeOf(entry);
    last = entry.seq;
    const terminal = isTerminalType(type);
    if (!terminal && include && !include(type, entry)) return true;
    const data = shared ? sharedJson(entry, request, taskAlias) : dataJson(entry, request, taskAlias);
    if (!stream.send({ id: entry.seq, event: type, data })) {
      stop();
      return false;
    }
    if (terminal) stop();
    return !terminal;
  };

  const onLive = (payload: LivePayload) => {
    if (done) return;
    const seq = payload.event.seq;
    if (seq <= last) return;
    if (seq === last + 1) {
      send(payload.event, payload.request, true);
      return;
    }
    // Out of order: fetch the missing entries from the store, buffering meanwhile.
    subscription.listen(null);
    subscription.take();
    void replay([payload]);
  };

  /** Replays from the store after `last`, then the buffered live events, then goes live. */
  const replay = async (carried: LivePayload[], firstPage?: RequestEvent[]): Promise<void> => {
    if (replaying) return;
    replaying = true;
    try {
      let page = firstPage;
      for (let round = 0; round < REPLAY_ROUNDS_MAX; round++) {
        for (let pages = 0; pages < REPLAY_PAGES_MAX; pages++) {
          page ??= await engine.store.eventListAfter({ id, afterSeq: last, limit: EVENT_PAGE_SIZE });
          if (done) return;
          for (const entry of page) {
            if (entry.seq <= last) continue;
            // A terminal entry read from the store: its data holds no result; read the request for it.
            const request = isTerminalType(sseTypeOf(entry)) ? await engine.store.requestGetSummary({ id }) : null;
            if (done || !send(entry, request, false)) return;
          }
          const full = page.length >= EVENT_PAGE_SIZE;
          page = undefined;
          if (!full) break;
        }
        // Caught up with the store: drain what arrived live meanwhile (synchronously, so nothing slips between).
        const { payloads, overflowed } = subscription.take();
        const pending = [...carried, ...payloads].sort((a, b) => a.event.seq - b.event.seq);
        carried = [];
        let gap = overflowed;
        for (const payload of pending) {
          if (payload.event.seq <= last) continue;
          if (payload.event.seq !== last + 1) {
            gap = true;
            break;
          }
          if (!send(payload.event, payload.request, true)) return;
        }
        if (gap) continue;
        if (finishedBefore) {
          // The client already had the terminal event (it resumed after it): nothing more will come.
          stop();
          return;
        }
        subscription.listen(onLive);
        return;
      }
      stop();
    } catch {
      stop();
    } finally {
      replaying = false;
    }
  };

  void replay([], params.firstPage);
}

function sharedJson(entry: RequestEvent, request: RequestSummary | null, taskAlias: boolean): string {
  let cached = liveJson.get(entry);
  if (!cached) {
    cached = {};
    liveJson.set(entry, cached);
  }
  const key = taskAlias ? 'alias' : 'plain';
  return (cached[key] ??= dataJson(entry, request, taskAlias));
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
