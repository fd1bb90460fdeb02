/**
 * Following one request: the one path by which anything on this node reads a
 * request's event log and then its live events — SSE streams, streaming chat,
 * long-polls and sync waits (`waitFor` below).
 *
 * **No gap, no duplicate, in seq order.** A `Follow` subscribes to the
 * request's live events (`EngineEvents.onRequest`) when it is *created*, so
 * the caller creates it before it reads anything about the request from the
 * store; until `start()` the live events are buffered (at most
 * `LIVE_BUFFER_MAX`; past that they are dropped and read from the store
 * instead). `start({ afterSeq })` replays the log after `afterSeq` from the
 * store in pages of `EVENT_PAGE_SIZE`, then drains the buffer (dropping seqs
 * already delivered) and switches to live events. Every event-log entry has a
 * gapless `seq`: a live event arriving with a gap before it sends the follow
 * back to the store for the missing entries — one read for that follower, not
 * one per event. `start({ afterSeq: null })` follows live events only, from
 * the moment the follow was created (the caller reads the state itself).
 *
 * **Ends** after the terminal status entry (nothing follows it in the log),
 * once caught up when the caller says the request had already finished
 * (`finished`), on a store error, after `REPLAY_ROUNDS_MAX` catch-ups in a
 * row (the follower resumes), or on `close()` / the signal. Nothing — no
 * subscription, no buffer, no timer — outlives the end.
 *
 * **Cheap fan-out.** Live entries come from the one in-process emitter with the
 * request as committed: no store query per follower per event. A terminal
 * entry read from the store comes with the request read once for it.
 *
 * The cluster relay is not a follower: it is the *source* of other nodes'
 * entries for the followers on this node (`EngineEvents.forward`), reading the
 * log only for requests that have followers; a follow of its own would count
 * as a follower and receive its own forwards.
 */
import { eventStatus, isTerminal, type Request, type RequestEvent } from '../model/index.js';
import type { RequestSummary, Store } from '../store/index.js';
import type { Clock } from '../clock/index.js';
import type { EngineEventMap, EngineEvents } from './events.js';

/** Event-log entries read from the store per page while replaying. */
export const EVENT_PAGE_SIZE = 500;
/** Live events held per follower while it replays; past this they are dropped and read from the store instead. */
export const LIVE_BUFFER_MAX = 10_000;
/** Replay rounds (store catch-ups) one follow may need before it gives up (the follower resumes). */
const REPLAY_ROUNDS_MAX = 1000;
/** Pages per replay round: 500 × 100 000 = fifty million entries. */
const REPLAY_PAGES_MAX = 100_000;

type LiveEvent = EngineEventMap['request:changed'];

/** One entry as delivered: live (with the request as committed) or read from the store. */
export type FollowEntry =
  | { live: true; event: RequestEvent; request: Request | null }
  /** `request` is read only for a terminal entry (null otherwise, or when purged). */
  | { live: false; event: RequestEvent; request: RequestSummary | null };

/** Why a follow ended by itself. */
export type FollowEnd = 'terminal' | 'finished' | 'error' | 'gave_up';

export interface FollowStart {
  /** Entries after this seq are delivered; null: live events only (from the follow's creation). */
  afterSeq: number | null;
  /** Entries after `afterSeq` already read from the store; delivered first. */
  firstPage?: RequestEvent[] | undefined;
  /** The request was terminal when read after the follow was created: end once caught up with the log. */
  finished?: boolean | undefined;
  /** Each entry, in seq order, each seq once; return false to stop following (no `onEnd`). */
  onEntry: (entry: FollowEntry) => boolean | void;
  /** The follow ended by itself (not after `close()`); `err` with 'error'. */
  onEnd?: ((end: FollowEnd, err?: unknown) => void) | undefined;
}

export interface FollowDeps {
  store: Pick<Store, 'eventListAfter' | 'requestGetSummary'>;
  events: EngineEvents;
}

/** True for a status entry into a terminal state: the last entry of a request's log. */
function isTerminalEntry(event: RequestEvent): boolean {
  const status = eventStatus(event);
  return status !== null && isTerminal(status);
}

/** A subscription to one request's entries: see the file header. */
export class Follow {
  private buffer: LiveEvent[] = [];
  private overflowed = false;
  /** Live events go straight to the follower (caught up). */
  private live = false;
  /** The last seq delivered; null until known (live-only follows learn it from their first event). */
  private last: number | null = null;
  private started: FollowStart | null = null;
  private done = false;
  private replaying = false;
  private readonly off: () => void;
  private readonly onAbort = () => this.close();

  constructor(
    private readonly deps: FollowDeps,
    readonly id: string,
    private readonly signal?: AbortSignal | undefined,
  ) {
    this.off = deps.events.onRequest(id, (payload) => this.onLive(payload));
    signal?.addEventListener('abort', this.onAbort, { once: true });
    if (signal?.aborted) this.close();
  }

  get closed(): boolean {
    return this.done;
  }

  /** Starts delivering (once). */
  start(params: FollowStart): void {
    if (this.started || this.done) return;
    this.started = params;
    if (params.afterSeq === null) {
      const { payloads } = this.take();
      this.live = true;
      for (const payload of payloads.sort((a, b) => a.event.seq - b.event.seq)) this.onLive(payload);
      return;
    }
    this.last = params.afterSeq;
    void this.replay([], params.firstPage);
  }

  /** Stops following; idempotent, safe before `start()`. */
  close(): void {
    if (this.done) return;
    this.done = true;
    this.live = false;
    this.buffer = [];
    this.off();
    this.signal?.removeEventListener('abort', this.onAbort);
  }

  private end(reason: FollowEnd, err?: unknown): void {
    if (this.done) return;
    this.close();
    this.started?.onEnd?.(reason, err);
  }

  private take(): { payloads: LiveEvent[]; overflowed: boolean } {
    const taken = { payloads: this.buffer, overflowed: this.overflowed };
    this.buffer = [];
    this.overflowed = false;
    return taken;
  }

  private onLive(payload: LiveEvent): void {
    if (this.done) return;
    if (!this.live) {
      if (this.buffer.length < LIVE_BUFFER_MAX) this.buffer.push(payload);
      else this.overflowed = true;
      return;
    }
    const seq = payload.event.seq;
    this.last ??= seq - 1;
    if (seq <= this.last) return;
    if (seq === this.last + 1) {
      this.deliver({ live: true, event: payload.event, request: payload.request });
      return;
    }
    // Out of order: fetch the missing entries from the store, buffering meanwhile.
    this.live = false;
    this.take();
    void this.replay([payload]);
  }

  /** Delivers one entry (in order); false once the follow is over. */
  private deliver(entry: FollowEntry): boolean {
    this.last = entry.event.seq;
    const keep = this.started?.onEntry(entry) !== false;
    if (this.done) return false;
    if (!keep) {
      this.close();
      return false;
    }
    if (isTerminalEntry(entry.event)) {
      this.end('terminal');
      return false;
    }
    return true;
  }

  /** Replays from the store after `last`, then the buffered live events, then goes live. */
  private async replay(carried: LiveEvent[], firstPage?: RequestEvent[]): Promise<void> {
    if (this.replaying) return;
    this.replaying = true;
    const { store } = this.deps;
    const id = this.id;
    try {
      let page = firstPage;
      for (let round = 0; round < REPLAY_ROUNDS_MAX; round++) {
        for (let pages = 0; pages < REPLAY_PAGES_MAX; pages++) {
          page ??= await store.eventListAfter({ id, afterSeq: this.last ?? 0, limit: EVENT_PAGE_SIZE });
          if (this.done) return;
          for (const event of page) {
            if (event.seq <= (this.last ?? 0)) continue;
            // A terminal entry read from the store: its data holds no result; read the request for it.
            const request = isTerminalEntry(event) ? await store.requestGetSummary({ id }) : null;
            if (this.done || !this.deliver({ live: false, event, request })) return;
          }
          const full = page.length >= EVENT_PAGE_SIZE;
          page = undefined;
          if (!full) break;
        }
        // Caught up with the store: drain what arrived live meanwhile (synchronously, so nothing slips between).
        const { payloads, overflowed } = this.take();
        const pending = [...carried, ...payloads].sort((a, b) => a.event.seq - b.event.seq);
        carried = [];
        let gap = overflowed;
        for (const payload of pending) {
          const last = this.last ?? 0;
          if (payload.event.seq <= last) continue;
          if (payload.event.seq !== last + 1) {
            gap = true;
            break;
          }
          if (!this.deliver({ live: true, event: payload.event, request: payload.request })) return;
        }
        if (gap) continue;
        if (this.started?.finished) {
          // The follower already had the terminal entry (it resumed after it): nothing more will come.
          this.end('finished');
          return;
        }
        this.live = true;
        return;
      }
      this.end('gave_up');
    } catch (err) {
      this.end('error', err);
    } finally {
      this.replaying = false;
    }
  }
}

export interface WaitForParams<T> {
  /** Created before anything about the request was read (see `Follow`); closed when the wait ends. */
  follow: Follow;
  clock: Clock;
  /** Longest wait, ms; 0 or less answers the first read. */
  waitMs: number;
  /** Reads the current state (from the store). */
  read: () => Promise<T>;
  /** True when this state should be answered now; called once per read, in order, while waiting. */
  ready: (value: T) => boolean;
  /**
   * Decides from a live entry alone: `{ value }` answers it, 'ignore' waits on
   * without a read; 'read' (the default) reads the state again.
   */
  decide?: ((entry: FollowEntry) => { value: T } | 'ignore' | 'read') | undefined;
  /** Stops waiting (client gone, server closing): answers the latest state read. */
  signal?: AbortSignal | undefined;
  /** Stops waiting after one more read (the engine stopping: the caller gets its handoff). */
  expire?: AbortSignal | undefined;
}

/**
 * Holds until the request reaches a state `ready` accepts, or time is up:
 * resolves with that state, or the latest when `waitMs` passes or `signal`
 * aborts. Every live entry marks the state dirty (unless `decide` settles it);
 * the store is then read again, one read at a time, coalescing bursts. The
 * follow, the timer and the abort listeners are released whichever way the
 * wait ends.
 */
export function waitFor<T>(params: WaitForParams<T>): Promise<T> {
  const { follow, clock, waitMs, read, ready, decide, signal, expire } = params;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    let reading = false;
    let dirty = true;
    /** Stop waiting: the next read (or the latest one) is the answer. */
    let expired = waitMs <= 0 || signal?.aborted === true || expire?.aborted === true;
    let latest: { value: T } | undefined;
    let timer: ReturnType<Clock['setTimeout']> | undefined;

    const cleanup = () => {
      done = true;
      follow.close();
      if (timer !== undefined) clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      expire?.removeEventListener('abort', onExpire);
    };
    const finish = (value: T) => {
      if (done) return;
      cleanup();
      resolve(value);
    };
    const fail = (err: unknown) => {
      if (done) return;
      cleanup();
      reject(err);
    };
    const pump = () => {
      if (done || reading || !dirty) return;
      dirty = false;
      reading = true;
      /** A read begun after the wait expired is the answer. */
      const final = expired;
      read().then(
        (value) => {
          reading = false;
          if (done) return;
          latest = { value };
          // Expired during this read: answer it unless something changed meanwhile (then one more read).
          if (final || ready(value) || (expired && !dirty)) finish(value);
          else pump();
        },
        (err: unknown) => {
          reading = false;
          fail(err);
        },
      );
    };
    const wake = () => {
      dirty = true;
      pump();
    };
    const onAbort = () => {
      expired = true;
      // Not reading: answer what we have rather than touch a store that may be closing.
      if (!reading && latest) finish(latest.value);
    };
    const onExpire = () => {
      expired = true;
      wake();
    };

    follow.start({
      afterSeq: null,
      // The follow ended by itself (terminal entry, store error, gave up): nothing more will wake this wait, so read now.
      onEnd: () => wake(),
      onEntry: (entry) => {
        const decision = decide?.(entry) ?? 'read';
        if (decision === 'ignore') return;
        if (decision === 'read') wake();
        else finish(decision.value);
      },
    });
    if (!expired) {
      timer = clock.setTimeout(() => {
        expired = true;
        wake();
      }, waitMs);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    expire?.addEventListener('abort', onExpire, { once: true });
    pump();
  });
}
