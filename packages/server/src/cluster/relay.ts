/**
 * The cluster relay: turns other nodes' notifications into this node's engine
 * actions, so that any node accepts, runs, streams and cancels any request.
 *
 * It receives typed notifications from the store (`Store.listen`: no SQL and no
 * payload format here; another schema's are already dropped there).
 *
 * - A `pending` status wakes the dispatcher (new or retried work is claimed in
 *   milliseconds, not at the next poll).
 * - A `cancelled` status aborts the handler if it runs here.
 * - A due delivery wakes the webhook deliverer.
 * - For requests something on this node subscribes to (SSE, long-poll, sync
 *   wait), the entries are read from the event log (one read per burst, in seq
 *   order) and forwarded as the engine events the local engine would emit.
 *
 * Notifications from this node are skipped: the engine already published those
 * events. Entries are forwarded at most once per seq (the relay remembers the
 * last seq it forwarded per subscribed request), so a resync that overlaps live
 * notifications does not send anything twice.
 *
 * NOTIFY is lost while the connection is down. After a reconnect, and every
 * `fallbackMs` while disconnected, the relay resyncs: it reads every subscribed
 * request's log after what it forwarded and wakes the dispatcher and deliverer.
 * So no subscriber misses a terminal event.
 */
import type { Logger } from 'pino';
import type { Engine } from '../engine/index.js';
import type { Request, RequestEvent } from '../model/index.js';
import type { EventNotification, StoreNotification } from '../store/index.js';

export interface ClusterRelayOptions {
  engine: Engine;
  log: Logger;
  /** Resync period while the notification connection is down. */
  fallbackMs?: number | undefined;
}

/** Entries read per page when catching up one request. */
const PAGE = 500;
/** Pages per catch-up round (bounded loops): 500 × 1000 entries. */
const PAGES_MAX = 1000;
/** Local seqs remembered per request (a bound; past it a duplicate is possible, and subscribers drop it by seq). */
const LOCAL_MAX = 10_000;
/** Tracked requests past which the ones nobody follows any more are forgotten. */
const PRUNE_AT = 1000;

interface Tracked {
  /** Last seq forwarded; undefined until the first read. */
  last: number | undefined;
  /** Highest seq notified. */
  target: number;
  reading: boolean;
  /** Read again from `last` to the end of the log (resync), whatever `target` says. */
  toEnd: boolean;
  /** Seqs after `last` this node's engine published itself (not forwarded again). */
  local: Set<number>;
}

export class ClusterRelay {
  private readonly engine: Engine;
  private readonly log: Logger;
  private readonly tracked = new Map<string, Tracked>();
  /** Per request, the read in flight for listeners of every request (keeps its entries in order). */
  private readonly allChains = new Map<string, Promise<void>>();
  private readonly fallbackMs: number;
  private fallbackTimer: ReturnType<Engine['clock']['setTimeout']> | undefined;
  private connected = false;
  private readonly offLocal: () => void;
  private stopped = false;
  /** Notifications handled (for tests and metrics). */
  private counters = { received: 0, own: 0, forwarded: 0, resyncs: 0 };

  constructor(options: ClusterRelayOptions) {
    this.engine = options.engine;
    this.log = options.log.child({ component: 'cluster-relay' });
    this.fallbackMs = options.fallbackMs ?? 1000;
    // Local events of a tracked request: remembered so a catch-up read does not publish them twice.
    this.offLocal = this.engine.events.on('request:changed', ({ event }) => {
      const t = this.tracked.get(event.request_id);
      if (t && (t.last === undefined || event.seq > t.last) && t.local.size < LOCAL_MAX) t.local.add(event.seq);
    });
  }

  get stats(): Readonly<ClusterRelay['counters']> {
    return { ...this.counters };
  }

  /** Feed for `ListenOptions.onNotification`. */
  handle(note: StoreNotification): void {
    if (this.stopped) return;
    this.counters.received += 1;
    // This node's own commits: its engine already published the events, and its
    // own deliveries already woke its deliverer (or armed its timer).
    if (note.node === this.engine.nodeId) {
      this.counters.own += 1;
      return;
    }
    if (note.kind === 'delivery') this.engine.wakeWebhooks();
    else this.act(note);
  }

  /** Feed for `ListenOptions.onConnected` / `onDisconnected`: after a reconnect, what was missed is read from the log. */
  connectedChanged(up: boolean, reconnected = false): void {
    this.connected = up;
    if (up) {
      if (this.fallbackTimer) this.engine.clock.clearTimeout(this.fallbackTimer);
      this.fallbackTimer = undefined;
      if (reconnected) this.resync();
    } else {
      this.scheduleFallback();
    }
  }

  /** Reads every subscribed request's log after what was forwarded, and wakes the dispatcher and deliverer. */
  resync(): void {
    if (this.stopped) return;
    this.counters.resyncs += 1;
    this.engine.wake();
    this.engine.wakeWebhooks();
    this.prune();
    for (const id of this.engine.events.subscribedRequests()) {
      const t = this.track(id);
      t.toEnd = true;
      void this.pump(id, t);
    }
  }

  stop(): void {
    this.stopped = true;
    this.offLocal();
    if (this.fallbackTimer) this.engine.clock.clearTimeout(this.fallbackTimer);
    this.tracked.clear();
  }

  private act(note: EventNotification): void {
    if (note.type === 'status') {
      if (note.status === 'pending') this.engine.wake();
      else if (note.status === 'cancelled') this.engine.abortLocal(note.requestId, 'cancelled');
    }
    if (this.engine.events.hasRemoteListeners()) this.relayToAll(note);
    if (!this.engine.events.hasSubscribers(note.requestId)) {
      this.tracked.delete(note.requestId);
      return;
    }
    if (this.tracked.size >= PRUNE_AT) this.prune();
    const t = this.track(note.requestId);
    t.target = Math.max(t.target, note.seq);
    // Entries before this notification were committed before anyone here could
    // have read the log without them: start just before it.
    t.last ??= note.seq - 1;
    void this.pump(note.requestId, t);
  }

  /**
   * For listeners of every request (`GET /v1/events`, live only): reads the
   * one notified entry and publishes it with the status the notification
   * carries (the row may be later by now). Reads of one request are chained,
   * so its entries go out in order; a notification lost while disconnected is
   * not replayed (that feed has no resume).
   */
  private relayToAll(note: EventNotification): void {
    const id = note.requestId;
    const read = async () => {
      const [event] = await this.engine.listEvents({ id, afterSeq: note.seq - 1, limit: 1 });
      if (event?.seq !== note.seq) return;
      const request = await readWithoutInput(this.engine, id);
      if (request === null) return;
      this.engine.events.forwardToAll({ request: { ...request, status: note.status }, event });
    };
    const next = (this.allChains.get(id) ?? Promise.resolve())
      .then(read)
      .catch((err: unknown) => this.log.warn({ err, request_id: id }, 'could not read a remote event for /v1/events streams'));
    this.allChains.set(id, next);
    void next.then(() => {
      if (this.allChains.get(id) === next) this.allChains.delete(id);
    });
  }

  /** Forgets requests nobody here follows any more (a subscriber may leave between two notifications). */
  private prune(): void {
    for (const [id, t] of this.tracked) if (!t.reading && !this.engine.events.hasSubscribers(id)) this.tracked.delete(id);
  }

  private track(id: string): Tracked {
    let t = this.tracked.get(id);
    if (!t) {
      t = { last: undefined, target: 0, reading: false, toEnd: false, local: new Set() };
      this.tracked.set(id, t);
    }
    return t;
  }

  /** One reader per request: reads the log after `last` and forwards it in order. */
  private async pump(id: string, t: Tracked): Promise<void> {
    if (t.reading) return;
    t.reading = true;
    try {
      for (let page = 0; page < PAGES_MAX && !this.stopped; page++) {
        const wanted = t.toEnd || (t.last ?? 0) < t.target;
        if (!wanted) break;
        t.toEnd = false;
        const entries = await this.engine.listEvents({ id, afterSeq: t.last ?? 0, limit: PAGE });
        if (entries.length === 0) break;
        const request = await readWithoutInput(this.engine, id);
        for (const event of entries) this.forward(request, event, t);
        if (entries.length === PAGE) t.toEnd = true;
      }
    } catch (err) {
      this.log.warn({ err, request_id: id }, 'could not read a remote request event; will catch up at the next notification or resync');
      if (!this.connected) this.scheduleFallback();
    } finally {
      t.reading = false;
      if (!this.engine.events.hasSubscribers(id)) this.tracked.delete(id);
    }
  }

  private forward(request: Request | null, event: RequestEvent, t: Tracked): void {
    if (t.last !== undefined && event.seq <= t.last) return;
    t.last = event.seq;
    const published = t.local.delete(event.seq);
    for (const seq of t.local) if (seq < event.seq) t.local.delete(seq);
    // This node committed it and its engine already published it.
    if (published) return;
    this.counters.forwarded += 1;
    if (request === null) {
      // Purged meanwhile: only output entries may travel without their request.
      if (event.type === 'output') this.engine.events.forward({ request: null, event });
      return;
    }
    // The request as read now may be later than the entry: subscribers take the
    // entry's data from the entry, and a terminal request only ends them sooner.
    this.engine.events.forward({ request, event });
  }

  private scheduleFallback(): void {
    if (this.stopped || this.connected || this.fallbackTimer) return;
    this.fallbackTimer = this.engine.clock.setTimeout(() => {
      this.fallbackTimer = undefined;
      if (this.connected || this.stopped) return;
      this.resync();
      this.scheduleFallback();
    }, this.fallbackMs);
  }
}

/**
 * A request as subscribers need it, read once per relayed page or event:
 * without its input (which can be megabytes and no subscriber reads), so
 * relaying costs the same whatever a request carries.
 */
async function readWithoutInput(engine: Engine, id: string): Promise<Request | null> {
  const summary = await engine.getRequestSummary({ id });
  return summary && { ...summary, input: undefined };
}
