/**
 * The claim loop shape (dispatcher, webhook deliverer), against an in-memory
 * queue and a manual clock: which claims happen, when the timer fires, how
 * failures back off and what stop() waits for. No wall-clock waits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClaimLoop, type ClaimLoopOptions } from '../../src/services/index.js';
import { ManualClock, settle } from '../helpers/clock.js';

const T0 = Date.UTC(2026, 0, 1);
const POLL = 1000;

interface Item {
  id: string;
  dueAt: number;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((res) => (resolve = res));
  return { promise, resolve };
}

/** A queue of due items, slots that stay busy until `finish(id)`, and a record of every call the loop makes. */
function harness(options: { slots?: number; pollWhenFull?: boolean } = {}) {
  const clock = new ManualClock(T0);
  const slots = options.slots ?? 2;
  const queue: Item[] = [];
  const running = new Set<string>();
  const claims: { at: number; limit: number }[] = [];
  const released: string[] = [];
  const failures: { failures: number; retryInMs: unknown }[] = [];
  const recovered: number[] = [];
  let failClaims = 0;
  let gate: Promise<void> | undefined;
  const o: ClaimLoopOptions<Item> = {
    clock,
    pollMs: POLL,
    pollWhenFull: options.pollWhenFull,
    free: () => slots - running.size,
    claim: async (limit) => {
      claims.push({ at: clock.now() - T0, limit });
      if (gate) await gate;
      if (failClaims > 0) {
        failClaims--;
        throw new Error('store unavailable');
      }
      // Items named held-* are due but held back (like work over a concurrency limit).
      const due = queue.filter((i) => i.dueAt <= clock.now() && !i.id.startsWith('held')).slice(0, limit);
      for (const item of due) queue.splice(queue.indexOf(item), 1);
      return due;
    },
    run: (item) => void running.add(item.id),
    release: async (item) => {
      released.push(item.id);
      queue.push(item);
    },
    nextDueAt: async () => (queue.length === 0 ? null : Math.min(...queue.map((i) => i.dueAt))),
    onFailure: (_err, n, fields) => failures.push({ failures: n, retryInMs: fields?.retry_in_ms }),
    onRecovered: (n) => recovered.push(n),
  };
  const loop = new ClaimLoop(o);
  return {
    clock,
    loop,
    queue,
    running,
    claims,
    released,
    failures,
    recovered,
    add: (id: string, dueIn = 0) => queue.push({ id, dueAt: clock.now() + dueIn }),
    finish: (id: string) => {
      running.delete(id);
      loop.wake();
    },
    failNext: (n: number) => (failClaims = n),
    hold: () => {
      const d = deferred();
      gate = d.promise;
      return () => {
        gate = undefined;
        d.resolve();
      };
    },
  };
}

describe('ClaimLoop', () => {
  test('claims while slots are free, asking for as many as are free; a finished item frees its slot', async () => {
    const h = harness({ slots: 2 });
    for (const id of ['a', 'b', 'c']) h.add(id);
    h.loop.start();
    await settle();
    assert.deepEqual([...h.running], ['a', 'b']);
    assert.deepEqual(
      h.claims.map((c) => c.limit),
      [2],
      'one claim for both free slots, none while full',
    );
    h.finish('a');
    await settle();
    assert.deepEqual([...h.running], ['b', 'c']);
    assert.deepEqual(
      h.claims.map((c) => c.limit),
      [2, 1],
    );
    await h.loop.stop();
  });

  test('wake-ups during a pass coalesce into one more pass, and none is lost', async () => {
    const h = harness({ slots: 5 });
    h.loop.start();
    await settle();
    assert.equal(h.claims.length, 1);
    const release = h.hold();
    h.loop.wake();
    await settle();
    assert.equal(h.claims.length, 2, 'the woken pass is waiting on its claim');
    h.add('late');
    for (let i = 0; i < 10; i++) h.loop.wake();
    release();
    await settle();
    assert.equal(h.claims.length, 3, 'ten wake-ups during the pass made exactly one more');
    assert.deepEqual([...h.running], ['late'], 'what arrived during the pass was claimed by the next');
    await h.loop.stop();
  });

  test('arms a timer at the next due time, at most pollMs away, never at zero delay', async () => {
    const h = harness();
    h.add('later', 300);
    h.loop.start();
    await settle();
    assert.equal(h.claims.length, 1);
    await h.clock.advance(299);
    assert.equal(h.claims.length, 1, 'not before the item is due');
    await h.clock.advance(1);
    assert.equal(h.claims.length, 2, 'at the due time');
    assert.deepEqual([...h.running], ['later']);
    await h.clock.advance(POLL - 1);
    assert.equal(h.claims.length, 2);
    await h.clock.advance(1);
    assert.equal(h.claims.length, 3, 'with nothing due, every pollMs');
    // Due now but not claimable must not spin at the same instant: the timer waits at least 1 ms.
    h.add('held');
    h.loop.wake();
    await settle();
    assert.equal(h.claims.length, 4);
    await h.clock.advance(0);
    assert.equal(h.claims.length, 4, 'no zero-delay timer');
    await h.clock.advance(1);
    assert.equal(h.claims.length, 5, 'one claim 1 ms later, not a spin');
    await h.loop.stop();
  });

  test('with every slot busy it arms no timer unless pollWhenFull', async () => {
    for (const pollWhenFull of [false, true]) {
      const h = harness({ slots: 1, pollWhenFull });
      h.add('a');
      h.loop.start();
      await settle();
      assert.equal(h.clock.pendingTimers, pollWhenFull ? 1 : 0, `pollWhenFull ${pollWhenFull}`);
      await h.clock.advance(POLL);
      assert.equal(h.claims.length, 1, 'a full loop does not claim on its timer');
      await h.loop.stop();
    }
  });

  test('backs off on failure, doubling up to 16 polls, and reports failures and the recovery', async () => {
    const h = harness();
    h.failNext(6);
    h.loop.start();
    await settle();
    const times = [0];
    for (const wait of [1, 2, 4, 8, 16, 16]) {
      await h.clock.advance(wait * POLL - 1);
      assert.equal(h.claims.length, times.length, `no claim before ${wait} polls`);
      await h.clock.advance(1);
      times.push(times.at(-1)! + wait * POLL);
      assert.equal(h.claims.length, times.length, `a claim after ${wait} polls`);
    }
    assert.deepEqual(
      h.claims.map((c) => c.at),
      times,
    );
    assert.deepEqual(
      h.failures,
      [1, 2, 3, 4, 5, 6].map((n) => ({ failures: n, retryInMs: POLL * Math.min(2 ** (n - 1), 16) })),
    );
    assert.deepEqual(h.recovered, [6], 'the 7th pass succeeded after 6 failures');
    await h.clock.advance(POLL);
    assert.equal(h.claims.length, times.length + 1, 'back to polling every pollMs');
    await h.loop.stop();
  });

  test('a wake-up comes sooner than the backoff timer', async () => {
    const h = harness();
    h.failNext(3);
    h.loop.start();
    await settle();
    await h.clock.advance(POLL);
    await h.clock.advance(2 * POLL);
    assert.equal(h.failures.length, 3);
    h.add('x');
    h.loop.wake();
    await settle();
    assert.deepEqual([...h.running], ['x']);
    assert.deepEqual(h.recovered, [3]);
    await h.loop.stop();
  });

  test('stop() waits for the pass in progress; what it claimed after stop began is released, not run', async () => {
    const h = harness({ slots: 3 });
    h.loop.start();
    await settle();
    const release = h.hold();
    h.add('a');
    h.add('b');
    h.loop.wake();
    await settle();
    let stopped = false;
    const stopping = h.loop.stop().then(() => (stopped = true));
    await settle();
    assert.equal(stopped, false, 'stop waits for the claim in flight');
    release();
    await stopping;
    assert.deepEqual(h.released, ['a', 'b']);
    assert.equal(h.running.size, 0);
    assert.equal(h.clock.pendingTimers, 0, 'no timer after stop');
    h.loop.wake();
    await h.clock.advance(10 * POLL);
    assert.equal(h.claims.length, 2, 'nothing claimed after stop');
  });

  test('no wake-up is lost, whenever it lands after a claim returns (every microtask step swept)', async () => {
    for (let hops = 0; hops < 12; hops++) {
      const h = harness({ slots: 4 });
      let first = true;
      const loop = new ClaimLoop<Item>({
        clock: h.clock,
        pollMs: POLL,
        free: () => 4 - h.running.size,
        claim: async (limit) => {
          const due = h.queue.splice(0, limit);
          if (first) {
            first = false;
            // Another item arrives, and its wake-up lands `hops` promise jobs after this claim returns.
            let p = Promise.resolve();
            for (let i = 0; i < hops; i++) p = p.then(() => {});
            void p.then(() => {
              h.add('late');
              loop.wake();
            });
          }
          return due;
        },
        run: (item) => void h.running.add(item.id),
        release: async () => {},
        nextDueAt: async () => null,
        onFailure: () => {},
      });
      loop.start();
      await settle();
      assert.deepEqual([...h.running], ['late'], `wake-up ${hops} jobs after the claim returned`);
      await loop.stop();
    }
  });

  test('a wake-up while a pass reads the next due time claims at once; only the newest pass arms the timer', async () => {
    const clock = new ManualClock(T0);
    const claims: number[] = [];
    let slowDue: (() => void) | undefined;
    let reads = 0;
    const loop = new ClaimLoop<Item>({
      clock,
      pollMs: POLL,
      free: () => 1,
      claim: async () => {
        claims.push(clock.now() - T0);
        return [];
      },
      run: () => {},
      release: async () => {},
      nextDueAt: async () => {
        // The first read hangs until released, and answers "due in 10 ms"; later reads answer "nothing waiting".
        if (reads++ > 0) return null;
        await new Promise<void>((resolve) => (slowDue = resolve));
        return clock.now() + 10;
      },
      onFailure: () => {},
    });
    loop.start();
    await settle();
    assert.equal(claims.length, 1);
    assert.ok(slowDue, 'the first pass is reading the next due time');
    loop.wake();
    await settle();
    assert.equal(claims.length, 2, 'the wake-up did not wait for the slow read');
    assert.equal(clock.pendingTimers, 1, 'the newer pass armed its poll timer');
    slowDue();
    await settle();
    assert.equal(clock.pendingTimers, 1, 'the older pass, answering late, armed nothing');
    await clock.advance(10);
    assert.equal(claims.length, 2, "the older pass's stale 10 ms timer is not there");
    await clock.advance(POLL - 10);
    assert.equal(claims.length, 3, 'the poll timer fired');
    await loop.stop();
  });

  test('beforeTimedPass runs before a pass the timer starts, not before one a wake-up starts', async () => {
    const h = harness();
    const order: string[] = [];
    const loop = new ClaimLoop<Item>({
      clock: h.clock,
      pollMs: POLL,
      free: () => 1,
      claim: async () => {
        order.push('claim');
        return [];
      },
      run: () => {},
      release: async () => {},
      nextDueAt: async () => null,
      beforeTimedPass: async () => void order.push('before'),
      onFailure: () => {},
    });
    loop.start();
    await settle();
    loop.wake();
    await settle();
    await h.clock.advance(POLL);
    assert.deepEqual(order, ['claim', 'claim', 'before', 'claim']);
    await loop.stop();
  });
});
