/**
 * The engine's events, `noun:verb`, in one typed map. They feed sync waiters
 * now, and SSE, webhooks and metrics later. Every event about a request carries
 * the request as committed and, for logged changes, the event-log entry.
 */
import { EventEmitter } from 'node:events';
import type { Request, RequestEvent } from '../model/index.js';
import type { TransitionKind } from '../store/index.js';

export interface EngineEventMap {
  /** A request was accepted (committed). */
  'request:created': { request: Request; event: RequestEvent };
  /** A worker claimed a request and started an attempt. */
  'request:claimed': { request: Request; event: RequestEvent };
  'request:progress': { request: Request; event: RequestEvent };
  'request:output': { request: Request | null; event: RequestEvent };
  /** A claimed request was handed back unstarted or unfinished (graceful shutdown); its attempt does not count. */
  'request:released': { request: Request; event: RequestEvent };
  /** A failed attempt will run again at `request.run_at`. */
  'request:retrying': { request: Request; event: RequestEvent };
  'request:completed': { request: Request; event: RequestEvent };
  'request:failed': { request: Request; event: RequestEvent };
  'request:cancelled': { request: Request; event: RequestEvent };
  /** A dead worker's lease was rescued (the request retried or failed). */
  'lease:expired': { request: Request; event: RequestEvent };
  /** Any of the above for one request: what per-request subscribers listen to. */
  'request:changed': { request: Request | null; event: RequestEvent };
}

export type EngineEventName = keyof EngineEventMap;

/** A typed event emitter with per-request subscriptions. */
export class EngineEvents {
  private readonly emitter = new EventEmitter();
  private readonly perRequest = new EventEmitter();
  /** Other nodes' events for listeners of every request (`GET /v1/events`). */
  private readonly remote = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
    this.perRequest.setMaxListeners(0);
    this.remote.setMaxListeners(0);
  }

  emit<K extends EngineEventName>(name: K, payload: EngineEventMap[K]): void {
    this.emitter.emit(name, payload);
    // `lease:expired` is a notification about an event-log entry also published as
    // `request:retrying` / `request:failed`: forward each entry to subscribers once.
    if (name !== 'request:changed' && name !== 'lease:expired') {
      this.emitter.emit('request:changed', payload);
      this.perRequest.emit(payload.event.request_id, payload);
    }
  }

  on<K extends EngineEventName>(name: K, listener: (payload: EngineEventMap[K]) => void): () => void {
    this.emitter.on(name, listener);
    return () => this.emitter.off(name, listener);
  }

  /**
   * An event another node committed (relayed from the database): it reaches
   * per-request subscribers only (SSE, long-polls, sync waiters). This node's own
   * services (estimator, webhooks, metrics) act on their own node's events.
   */
  forward(payload: EngineEventMap['request:changed']): void {
    this.perRequest.emit(payload.event.request_id, payload);
  }

  /**
   * An event another node committed, for listeners of every request (the
   * cluster relay reads it only while `hasRemoteListeners()`).
   */
  forwardToAll(payload: EngineEventMap['request:changed']): void {
    this.remote.emit('event', payload);
  }

  /** Every event other nodes commit (their own node's come as `request:changed`); returns the unsubscribe function. */
  onRemote(listener: (payload: EngineEventMap['request:changed']) => void): () => void {
    this.remote.on('event', listener);
    return () => this.remote.off('event', listener);
  }

  /** True when something on this node follows every request (a `GET /v1/events` stream). */
  hasRemoteListeners(): boolean {
    return this.remote.listenerCount('event') > 0;
  }

  /** True when something listens to `id`'s changes on this node. */
  hasSubscribers(id: string): boolean {
    return this.perRequest.listenerCount(id) > 0;
  }

  /** The requests something on this node listens to. */
  subscribedRequests(): string[] {
    return this.perRequest.eventNames().filter((name): name is string => typeof name === 'string');
  }

  /** Every change of one request; returns the unsubscribe function. */
  onRequest(id: string, listener: (payload: EngineEventMap['request:changed']) => void): () => void {
    this.perRequest.on(id, listener);
    return () => this.perRequest.off(id, listener);
  }
}

const EVENT_FOR_KIND: Readonly<Record<TransitionKind, EngineEventName>> = {
  created: 'request:created',
  claimed: 'request:claimed',
  progress: 'request:progress',
  retried: 'request:retrying',
  released: 'request:released',
  completed: 'request:completed',
  failed: 'request:failed',
  cancelled: 'request:cancelled',
};

/** The event name for a committed transition: what the store says happened. */
export function eventNameForTransition(kind: TransitionKind): EngineEventName {
  return EVENT_FOR_KIND[kind];
}
