/**
 * The follow invariant, tested once: whatever the timing, a follower gets
 * every event-log entry after its resume point exactly once, in seq order,
 * and nothing (subscription, buffer, timer) outlives the follow. Entries are
 * committed to a real store (SQLite file, PostgreSQL schema) and published
 * on the engine's events by hand, so each race is staged deterministically:
 * committed before the follow, between its creation and its start, during
 * its replay, published late, out of order or never; pages; buffer overflow;
 * terminal; abort; and the "terminal or timeout" wait on a manual clock.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  EngineEvents,
  EVENT_PAGE_SIZE,
  Follow,
  LIVE_BUFFER_MAX,
  waitFor,
  type FollowEnd,
  type FollowEntry,
} from '../../src/engine/index.js';
import type { Request, RequestEvent } from '../../src/model/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { ManualClock, settle } from '../helpers/clock.js';
import { makeNewRequest, T0, tempDir } from '../helpers/factories.js';
import { openPgStore, pgSkipReason } from '../helpers/pg.js';

const OWNER = 'node-a';

/** One request's log in a real store, with the engine's events to publish on. */
class Log {
  readonly events = new EngineEvents();
  request!: Request;
  private attempt = 0;

  constructor(readonly store: Store) {}

  /** Inserts and claims a request: entries 1 (created) and 2 (claimed), returned unpublished. */
  async open(): Promise<RequestEvent[]> {
    const created = await this.store.requestInsert({ request: makeNewRequest({ created_at: T0 }) });
    const [claimed] = await this.store.requestClaim({ owner: OWNER, now: T0, leaseMs: 60_000, limit: 1 });
    assert.ok(claimed, 'the request is claimed');
    this.request = claimed.request;
    this.attempt = claimed.request.attempt;
    return [created.event, claimed.event];
  }

  /** Commits `n` output entries (unpublished). */
  async output(n: number): Promise<RequestEvent[]> {
    const written: RequestEvent[] = [];
    for (let i = 0; i < n; i++) {
      const event = await this.store.eventAppend({
        id: this.request.id,
        attempt: this.attempt,
        owner: OWNER,
        now: T0,
        type: 'output',
        data: { i },
      });
      assert.ok(event);
      written.push(event);
    }
    return written;
  }

  /** Commits the terminal entry (unpublished); returns it with the request as committed. */
  async complete(): Promise<{ request: Request; event: RequestEvent }> {
    const done = await this.store.requestComplete({
      id: this.request.id,
      attempt: this.attempt,
      owner: OWNER,
      now: T0,
      result: { ok: true },
    });
    assert.ok(done);
    return done;
  }

  /** Publishes committed entries as the engine would. */
  publish(...entries: RequestEvent[]): void {
    for (const event of entries) this.events.emit('request:output', { request: event.type === 'output' ? null : this.request, event });
  }

  publishTerminal(done: { request: Request; event: RequestEvent }): void {
    this.events.emit('request:completed', done);
  }

  follow(signal?: AbortSignal): Follow {
    return new Follow({ store: this.store, events: this.events }, this.request.id, signal);
  }
}

/** Starts `follow` and records what it delivers and how it ends. */
function record(follow: Follow, afterSeq: number | null, extra: { finished?: boolean; firstPage?: RequestEvent[] } = {}) {
  const seqs: number[] = [];
  const entries: FollowEntry[] = [];
  let resolveEnd!: (end: FollowEnd) => void;
  const ended = new Promise<FollowEnd>((resolve) => (resolveEnd = resolve));
  follow.start({
    afterSeq,
    ...extra,
    onEntry: (entry) => {
      seqs.push(entry.event.seq);
      entries.push(entry);
    },
    onEnd: (end, err) => {
      if (end === 'error') throw err;
      resolveEnd(end);
    },
  });
  return { seqs, entries, ended };
}

/** Waits (event-loop turns, at most 10 s of wall time) until `cond` holds; the PostgreSQL round trips take real time. */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail('timed out waiting for a condition');
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The store, counting `eventListAfter` reads. */
function countingStore(store: Store): { store: Store; reads: () => number } {
  let reads = 0;
  const counting: Store = Object.create(store, {
    eventListAfter: { value: (p: Parameters<Store['eventListAfter']>[0]) => (reads++, store.eventListAfter(p)) },
  });
  return { store: counting, reads: () => reads };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function exercise(name: string, open: () => Promise<{ store: Store; cleanup: () => Promise<void> }>, skip: () => Promise<string | false>) {
  describe(`follow() on ${name}`, async () => {
    const reason = await skip();
    const fresh = async (t: { after: (fn: () => Promise<void>) => void }): Promise<Log> => {
      const { store, cleanup } = await open();
      t.after(cleanup);
      return new Log(store);
    };

    test(
      'entries committed before, between creation and start, during the replay and after: each once, in order',
      { skip: reason },
      async (t) => {
        const log = await fresh(t);
        const first = await log.open();
        const before = await log.output(3); // seqs 3-5, committed and published before anyone follows
        log.publish(...first, ...before);
        const follow = log.follow();
        const between = await log.output(2); // 6-7: committed and published after the subscription, before start
        log.publish(...between);
        const got = record(follow, 0);
        // During the replay: committed now, published at once (the store read may or may not see them).
        const during = await log.output(2); // 8-9
        log.publish(...during);
        const late = await log.output(2); // 10-11
        log.publish(...late);
        const done = await log.complete(); // 12
        log.publishTerminal(done);
        assert.equal(await got.ended, 'terminal');
        assert.deepEqual(got.seqs, range(1, 12));
        const terminal = got.entries.at(-1);
        assert.equal(terminal?.request?.status, 'completed', 'the terminal entry comes with its request');
        assert.equal(log.events.hasSubscribers(log.request.id), false, 'the subscription ends with the follow');
      },
    );

    test('resumes after a seq; a first page already read is sent first and not read again', { skip: reason }, async (t) => {
      const log = await fresh(t);
      await log.open();
      await log.output(4); // 3-6
      const counting = countingStore(log.store);
      const follow = new Follow({ store: counting.store, events: log.events }, log.request.id);
      const firstPage = await log.store.eventListAfter({ id: log.request.id, afterSeq: 3, limit: EVENT_PAGE_SIZE }); // 4-6, a short page: the end
      const got = record(follow, 3, { firstPage });
      await until(() => got.seqs.length === 3);
      assert.deepEqual(got.seqs, [4, 5, 6]);
      const done = await log.complete();
      log.publishTerminal(done);
      assert.equal(await got.ended, 'terminal');
      assert.deepEqual(got.seqs, [4, 5, 6, 7]);
      assert.equal(counting.reads(), 0, 'the first page was the whole rest of the log');
    });

    test('an entry published out of order, or never, is read from the store; a late duplicate is dropped', { skip: reason }, async (t) => {
      const log = await fresh(t);
      log.publish(...(await log.open()));
      const follow = log.follow();
      const got = record(follow, 0);
      await until(() => got.seqs.length === 2);
      assert.deepEqual(got.seqs, [1, 2]);
      const [a, b, c] = await log.output(3); // 3-5, committed; only 5 is published now (a gap before it)
      log.publish(c!);
      await until(() => got.seqs.length >= 5);
      assert.deepEqual(got.seqs, [1, 2, 3, 4, 5], 'the gap is filled from the store');
      log.publish(a!, b!, c!); // published late: already delivered
      const done = await log.complete();
      log.publishTerminal(done);
      assert.equal(await got.ended, 'terminal');
      assert.deepEqual(got.seqs, range(1, 6));
      assert.equal(got.entries.at(-1)?.live, true, 'the terminal entry came live');
    });

    test(`reads the log in pages of ${EVENT_PAGE_SIZE}`, { skip: reason }, async (t) => {
      const log = await fresh(t);
      await log.open();
      await log.output(EVENT_PAGE_SIZE * 2 + 3);
      const done = await log.complete();
      const last = done.event.seq;
      const counting = countingStore(log.store);
      const follow = new Follow({ store: counting.store, events: log.events }, log.request.id);
      const got = record(follow, 0, { finished: true });
      assert.equal(await got.ended, 'terminal');
      assert.deepEqual(got.seqs, range(1, last));
      assert.equal(counting.reads(), 3, 'three pages, the last one short');
    });

    test('live events dropped past the buffer bound during the replay are read from the store again', { skip: reason }, async (t) => {
      const log = await fresh(t);
      const first = await log.open();
      // The first store read returns, then is held while the live buffer fills past its bound.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let reads = 0;
      const gated: Store = Object.create(log.store, {
        eventListAfter: {
          value: async (p: Parameters<Store['eventListAfter']>[0]) => {
            const page = await log.store.eventListAfter(p);
            if (reads++ === 0) await held;
            return page;
          },
        },
      });
      const follow = new Follow({ store: gated, events: log.events }, log.request.id);
      const got = record(follow, 2);
      await until(() => reads === 1);
      for (let i = 0; i < LIVE_BUFFER_MAX; i++) log.publish(first[0]!); // fills the buffer (already delivered seqs)
      const dropped = await log.output(3); // 3-5: committed after the first read, published past the bound
      log.publish(...dropped);
      release();
      await until(() => got.seqs.length >= 3);
      assert.deepEqual(got.seqs, [3, 4, 5]);
      assert.equal(reads, 2, 'one more read for what the buffer dropped');
      const done = await log.complete();
      log.publishTerminal(done);
      assert.equal(await got.ended, 'terminal');
      assert.deepEqual(got.seqs, [3, 4, 5, 6]);
    });

    test(
      'a request already finished: replayed then ended; resumed after its terminal entry: ended at once',
      { skip: reason },
      async (t) => {
        const log = await fresh(t);
        await log.open();
        await log.output(1);
        const done = await log.complete(); // 4
        const all = record(log.follow(), 0, { finished: true });
        assert.equal(await all.ended, 'terminal');
        assert.deepEqual(all.seqs, [1, 2, 3, 4]);
        assert.equal(all.entries.at(-1)?.request?.status, 'completed');
        const none = record(log.follow(), done.event.seq, { finished: true });
        assert.equal(await none.ended, 'finished');
        assert.deepEqual(none.seqs, []);
        assert.equal(log.events.hasSubscribers(log.request.id), false);
      },
    );

    test('abort and close stop delivery and unsubscribe, before or after start, without onEnd', { skip: reason }, async (t) => {
      const log = await fresh(t);
      log.publish(...(await log.open()));
      const stop = new AbortController();
      const follow = log.follow(stop.signal);
      const got = record(follow, 0);
      await until(() => got.seqs.length === 2);
      assert.deepEqual(got.seqs, [1, 2]);
      stop.abort();
      log.publish(...(await log.output(1)));
      await settle();
      assert.deepEqual(got.seqs, [1, 2]);
      assert.equal(follow.closed, true);
      const unstarted = log.follow();
      unstarted.close();
      unstarted.close();
      assert.equal(log.events.hasSubscribers(log.request.id), false);
      const aborted = log.follow(AbortSignal.abort());
      assert.equal(aborted.closed, true);
      assert.equal(log.events.hasSubscribers(log.request.id), false);
    });

    test('live only (afterSeq null): entries from the creation on, gaps filled from the store', { skip: reason }, async (t) => {
      const log = await fresh(t);
      log.publish(...(await log.open()));
      const follow = log.follow();
      const [a, b] = await log.output(2); // 3-4: 3 published, 4 only committed
      log.publish(a!);
      const got = record(follow, null);
      const [c] = await log.output(1); // 5, published: 4 is missing before it
      log.publish(c!);
      await until(() => got.seqs.length >= 3);
      assert.deepEqual(got.seqs, [3, 4, 5]);
      void b;
      follow.close();
    });

    test('a store failure ends the follow with error', { skip: reason }, async (t) => {
      const log = await fresh(t);
      await log.open();
      const failing: Store = Object.create(log.store, {
        eventListAfter: { value: () => Promise.reject(new Error('store down')) },
      });
      const follow = new Follow({ store: failing, events: log.events }, log.request.id);
      const ended = new Promise<unknown>((resolve) =>
        follow.start({ afterSeq: 0, onEntry: () => undefined, onEnd: (_end, err) => resolve(err) }),
      );
      assert.match(String(await ended), /store down/);
      assert.equal(log.events.hasSubscribers(log.request.id), false);
    });

    test('waitFor: answers the terminal request as it is published, and leaves no timer or subscription', { skip: reason }, async (t) => {
      const log = await fresh(t);
      await log.open();
      const clock = new ManualClock(T0);
      let reads = 0;
      const waiting = waitFor({
        follow: log.follow(),
        clock,
        waitMs: 30_000,
        read: () => (reads++, log.store.requestGetSummary({ id: log.request.id })),
        ready: (r) => r === null || r.status === 'completed',
      });
      await clock.advance(10_000);
      log.publish(...(await log.output(1))); // a change that is not the answer: read again
      await clock.advance(10_000);
      const done = await log.complete();
      log.publishTerminal(done);
      const answer = await waiting;
      assert.equal(answer?.status, 'completed');
      assert.equal(reads, 3, 'one read at the start, one per change');
      assert.equal(clock.pendingTimers, 0);
      assert.equal(log.events.hasSubscribers(log.request.id), false);
    });

    test(
      'waitFor: at the timeout answers the latest state; decide settles from a live entry without a read',
      { skip: reason },
      async (t) => {
        const log = await fresh(t);
        await log.open();
        const clock = new ManualClock(T0);
        const read = () => log.store.requestGetSummary({ id: log.request.id });
        const timedOut = waitFor({ follow: log.follow(), clock, waitMs: 5000, read, ready: (r) => r?.status === 'completed' });
        await clock.advance(4999);
        let settled = false;
        void timedOut.then(() => (settled = true));
        await settle();
        assert.equal(settled, false, 'still waiting 1 ms before the timeout');
        await clock.advance(1);
        assert.equal((await timedOut)?.status, 'processing');
        assert.equal(clock.pendingTimers, 0);

        let reads = 0;
        const decided = waitFor({
          follow: log.follow(),
          clock,
          waitMs: 5000,
          read: () => (reads++, read()),
          ready: (r) => r?.status === 'completed',
          decide: (entry) => (entry.request?.status === 'completed' ? { value: entry.request } : 'ignore'),
        });
        await settle();
        log.publish(...(await log.output(2)));
        log.publishTerminal(await log.complete());
        assert.equal((await decided)?.status, 'completed');
        assert.equal(reads, 1, 'only the first read');
        assert.equal(clock.pendingTimers, 0);
      },
    );

    test(
      'waitFor: a follow that ends by itself (terminal caught up from the store after a gap) reads at once',
      { skip: reason },
      async (t) => {
        const log = await fresh(t);
        await log.open();
        const clock = new ManualClock(T0);
        let reads = 0;
        const waiting = waitFor({
          follow: log.follow(),
          clock,
          waitMs: 30_000,
          read: () => (reads++, log.store.requestGetSummary({ id: log.request.id })),
          ready: (r) => r === null || r.status === 'completed',
          // Like a sync wait: settles only from a live terminal entry, ignores the rest.
          decide: (entry) => (entry.live && entry.request?.status === 'completed' ? { value: entry.request } : 'ignore'),
        });
        await settle();
        log.publish(...(await log.output(1))); // 3, published: the follow now knows where it is
        await log.output(1); // 4, committed but never published (another node's entry, not relayed yet)
        log.publishTerminal(await log.complete()); // 5: a gap, so 4 and 5 come from the store (not live)
        let answer: Awaited<typeof waiting> | undefined;
        void waiting.then((r) => (answer = r));
        await until(() => answer !== undefined); // no clock advance: the timeout never fires
        assert.equal(answer?.status, 'completed');
        assert.equal(reads, 2, 'the first read, and one when the follow ended (decide ignored the rest)');
        assert.equal(clock.pendingTimers, 0);
        assert.equal(log.events.hasSubscribers(log.request.id), false);
      },
    );

    test('waitFor: aborting answers the latest state read; expiring reads once more', { skip: reason }, async (t) => {
      const log = await fresh(t);
      await log.open();
      const clock = new ManualClock(T0);
      const read = () => log.store.requestGetSummary({ id: log.request.id });
      const hangUp = new AbortController();
      const aborted = waitFor({ follow: log.follow(), clock, waitMs: 5000, read, ready: () => false, signal: hangUp.signal });
      await settle();
      hangUp.abort();
      assert.equal((await aborted)?.status, 'processing');
      const stopping = new AbortController();
      // The first read sees the request running, and is held while it completes and the wait expires.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let reads = 0;
      const heldRead = async () => {
        const found = await read();
        if (reads++ === 0) await held;
        return found;
      };
      const expired = waitFor({ follow: log.follow(), clock, waitMs: 5000, read: heldRead, ready: () => false, expire: stopping.signal });
      await until(() => reads === 1);
      await log.complete(); // committed, not published: only a read begun now sees it
      stopping.abort();
      release();
      assert.equal((await expired)?.status, 'completed');
      assert.equal(clock.pendingTimers, 0);
      assert.equal(log.events.hasSubscribers(log.request.id), false);
    });
  });
}

exercise(
  'SQLite',
  async () => {
    const { dir, cleanup } = tempDir('errand-follow-');
    const store = await openStore({ url: `sqlite:${join(dir, 'errand.db')}` });
    return {
      store,
      cleanup: async () => {
        await store.close();
        cleanup();
      },
    };
  },
  async () => false,
);

exercise('PostgreSQL', () => openPgStore(), pgSkipReason);
