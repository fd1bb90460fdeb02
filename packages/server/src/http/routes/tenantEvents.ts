/**
 * `GET /v1/events`: every event of every request the caller may see (its
 * tenant's; the admin key sees all), live, as Server-Sent Events — what
 * `errand tail` shows. Optional `?operation=NAME` keeps one operation's.
 *
 * **Live only.** No replay and no `id:` lines: there is no one sequence across
 * requests to resume from (each request's own stream, `/v1/requests/{id}/events`,
 * resumes). Each message is `event: <status|progress|output>` (the event-log
 * entry's type) with `data: {request_id, operation, tenant, seq, type, data,
 * status, created_at}`, `status` being the request's status after the entry.
 *
 * **One listener, shared JSON.** A hub listens to `request:changed` once for
 * the whole app and builds each message's JSON once; each stream only filters
 * by tenant and operation. Output chunks are published without the request
 * (the runner does not re-read it per chunk), so the hub remembers the tenant
 * and operation of the requests running on this node from their claim; a chunk
 * of a request it has not seen running (claimed before the hub existed) costs
 * one store read, during which that request's later events queue behind it so
 * the order holds.
 *
 * **Every node's events.** On a PostgreSQL cluster, while at least one stream
 * is open here, the hub also follows the events other nodes commit (the
 * cluster relay reads each notified entry for it); a notification lost while
 * the node was cut off from the database is not replayed.
 *
 * Keep-alives, the slow-consumer cut-off and ending the streams on shutdown
 * are the SSE writer's and `trackStreams`' business, as for a request's stream.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ErrandConfig } from '../../config/index.js';
import type { Engine, EngineEventMap } from '../../engine/index.js';
import { ErrandError, type RequestStatus } from '../../model/index.js';
import type { RequestSummary } from '../../store/index.js';
import { callerOf } from '../caller.js';
import { trackStreams } from '../eventStream.js';
import { limitsOf } from '../limits/index.js';
import { openSse, type SseEvent } from '../sse.js';
import { parseWith } from '../validate.js';

export interface TenantEventRouteDeps {
  engine: Engine;
  config: Pick<ErrandConfig, 'server'>;
}

/** `GET /v1/events` query (also in the OpenAPI document). */
export const eventsQuery = z.strictObject({
  operation: z.string().min(1).max(64).optional(),
});

export function tenantEventRoutes(app: FastifyInstance, deps: TenantEventRouteDeps): void {
  const { engine, config } = deps;
  const track = trackStreams(app);
  const hub = new TenantEventHub(engine);
  app.addHook('onClose', async () => hub.close());

  app.get('/v1/events', async (request, reply) => {
    const caller = callerOf(request);
    const query = parseWith(eventsQuery, request.query ?? {}, 'query');
    if (query.operation !== undefined && !engine.operations.has(query.operation)) {
      // A typo would otherwise stream nothing, forever.
      throw new ErrandError(
        'invalid_parameter',
        `operation: no operation named "${query.operation}" is declared; use one of ${[...engine.operations.keys()].join(', ')}`,
        { field: 'operation' },
      );
    }
    limitsOf(request).holdStream(request, reply);
    const stream = openSse(reply, {
      clock: engine.clock,
      keepAliveMs: config.server.sse_keep_alive,
      maxBufferedBytes: config.server.sse_max_buffer,
    });
    track(stream);
    const off = hub.subscribe({ tenant: caller.tenant, operation: query.operation }, (message) => {
      if (!stream.send(message)) stream.close();
    });
    stream.onClose(off);
    return reply;
  });
}

type Payload = EngineEventMap['request:changed'];

/** What a message is filtered on, and what its data says of the request. */
interface RequestFacts {
  tenant: string;
  operation: string;
  status: RequestStatus;
}

interface Subscriber {
  /** null: every tenant (admin). */
  tenant: string | null;
  operation: string | undefined;
  send: (message: SseEvent) => void;
}

/** Running requests remembered for their output chunks; beyond this the oldest are forgotten (and re-read if needed). */
const RUNNING_MAX = 100_000;
/** Events of one request held while its facts are read from the store. */
const PENDING_PER_REQUEST_MAX = 10_000;

/** Fans `request:changed` out to `/v1/events` streams (see the file header). */
class TenantEventHub {
  private readonly subscribers = new Set<Subscriber>();
  private readonly running = new Map<string, RequestFacts>();
  /** Requests whose facts are being read from the store, with the events that arrived meanwhile. */
  private readonly pending = new Map<string, Payload[]>();
  private readonly off: () => void;
  /** Other nodes' events (PostgreSQL clusters), followed only while a stream is open: the relay reads them from the store for us. */
  private offRemote: (() => void) | undefined;

  constructor(private readonly engine: Engine) {
    this.off = engine.events.on('request:changed', (payload) => this.onEvent(payload));
  }

  subscribe(filter: { tenant: string | null; operation: string | undefined }, send: (message: SseEvent) => void): () => void {
    const subscriber: Subscriber = { ...filter, send };
    this.subscribers.add(subscriber);
    this.offRemote ??= this.engine.events.onRemote((payload) => this.onEvent(payload));
    return () => {
      this.subscribers.delete(subscriber);
      if (this.subscribers.size === 0) this.stopRemote();
    };
  }

  private stopRemote(): void {
    this.offRemote?.();
    this.offRemote = undefined;
  }

  close(): void {
    this.off();
    this.stopRemote();
    this.subscribers.clear();
    this.running.clear();
    this.pending.clear();
  }

  private onEvent(payload: Payload): void {
    const id = payload.event.request_id;
    if (payload.request) this.remember(payload.request);
    const queued = this.pending.get(id);
    if (queued) {
      if (queued.length < PENDING_PER_REQUEST_MAX) queued.push(payload);
      return;
    }
    const facts = payload.request ? factsOf(payload.request) : this.running.get(id);
    if (facts) {
      this.publish(payload, facts);
      return;
    }
    if (this.subscribers.size === 0) return;
    this.pending.set(id, [payload]);
    void this.lookUp(id);
  }

  /** Reads an unknown request's facts, then publishes what queued for it meanwhile, in order. */
  private async lookUp(id: string): Promise<void> {
    let found: RequestSummary | null = null;
    try {
      found = await this.engine.getRequestSummary({ id });
    } catch {
      // The chunks of a request we cannot read are dropped from this feed; its own stream still has them.
    }
    const queued = this.pending.get(id) ?? [];
    this.pending.delete(id);
    if (!found) return;
    this.remember(found);
    let facts = factsOf(found);
    for (const payload of queued) {
      if (payload.request) facts = factsOf(payload.request);
      // A chunk is only ever written while the request runs, whatever the row says by now.
      this.publish(payload, payload.event.type === 'output' ? { ...facts, status: 'processing' } : facts);
    }
  }

  private remember(request: RequestSummary): void {
    if (request.status !== 'processing') {
      this.running.delete(request.id);
      return;
    }
    if (!this.running.has(request.id) && this.running.size >= RUNNING_MAX) {
      const oldest = this.running.keys().next();
      if (!oldest.done) this.running.delete(oldest.value);
    }
    this.running.set(request.id, factsOf(request));
  }

  private publish(payload: Payload, facts: RequestFacts): void {
    let message: SseEvent | undefined;
    for (const subscriber of this.subscribers) {
      if (subscriber.tenant !== null && subscriber.tenant !== facts.tenant) continue;
      if (subscriber.operation !== undefined && subscriber.operation !== facts.operation) continue;
      // Built once, for the first stream that wants it.
      message ??= toMessage(payload, facts);
      subscriber.send(message);
    }
  }
}

function factsOf(request: RequestSummary): RequestFacts {
  return { tenant: request.tenant, operation: request.operation, status: request.status };
}

function toMessage(payload: Payload, facts: RequestFacts): SseEvent {
  const { event } = payload;
  return {
    event: event.type,
    data: JSON.stringify({
      request_id: event.request_id,
      operation: facts.operation,
      tenant: facts.tenant,
      seq: event.seq,
      type: event.type,
      data: event.data,
      status: facts.status,
      created_at: new Date(event.created_at).toISOString(),
    }),
  };
}
