/**
 * The periodic task shape (lease rescuer, retention, database clock refresh):
 * driven by a manual clock, so timing is exact and independent of load.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino, type Logger } from 'pino';
import { logFailures, PeriodicTask } from '../../src/services/index.js';
import { ManualClock, settle } from '../helpers/clock.js';

const T0 = Date.UTC(2026, 0, 1);

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('PeriodicTask', () => {
  test('runs every intervalMs after start, counted from the end of the previous run', async () => {
    const clock = new ManualClock(T0);
    const at: number[] = [];
    const task = new PeriodicTask({ clock, intervalMs: 1000, run: async () => void at.push(clock.now() - T0), onError: () => {} });
    await clock.advance(5000);
    assert.deepEqual(at, [], 'nothing runs before start');
    await task.start();
    await task.start(); // idempotent: still one timer
    await clock.advance(999);
    assert.deepEqual(at, []);
    await clock.advance(1);
    assert.deepEqual(at, [6000], 'the first run comes intervalMs after start');
    await clock.advance(2000);
    assert.deepEqual(at, [6000, 7000, 8000]);
    await task.stop();
    assert.equal(clock.pendingTimers, 0, 'stop clears the timer');
  });

  test('never overlaps: a slow run delays the next one', async () => {
    const clock = new ManualClock(T0);
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    let slow = deferred();
    const task = new PeriodicTask({
      clock,
      intervalMs: 100,
      run: async () => {
        runs++;
        active++;
        maxActive = Math.max(maxActive, active);
        await slow.promise;
        active--;
      },
      onError: () => {},
    });
    await task.start();
    await clock.advance(100);
    assert.equal(runs, 1);
    await clock.advance(1000);
    assert.equal(runs, 1, 'no second run while the first is in progress');
    assert.equal(clock.pendingTimers, 0, 'and no timer armed meanwhile');
    const first = slow;
    slow = deferred();
    first.resolve();
    await settle();
    await clock.advance(99);
    assert.equal(runs, 1);
    await clock.advance(1);
    assert.equal(runs, 2, 'the next run comes intervalMs after the previous one ended');
    assert.equal(maxActive, 1);
    slow.resolve();
    await task.stop();
  });

  test('a failed run is reported with how many failed in a row, and the task keeps running', async () => {
    const clock = new ManualClock(T0);
    const outcomes = ['fail', 'fail', 'ok', 'fail'];
    const reported: number[] = [];
    let runs = 0;
    const task = new PeriodicTask({
      clock,
      intervalMs: 10,
      run: async () => {
        if (outcomes[runs++] === 'fail') throw new Error(`run ${runs} failed`);
      },
      onError: (err, failures) => {
        assert.ok(err instanceof Error);
        reported.push(failures);
      },
    });
    await task.start();
    await clock.advance(40);
    assert.equal(runs, 4);
    assert.deepEqual(reported, [1, 2, 1], 'the count starts again after a success');
    await task.stop();
  });

  test('stop() waits for the run in progress and nothing runs after it', async () => {
    const clock = new ManualClock(T0);
    const slow = deferred();
    let runs = 0;
    let ended = false;
    const task = new PeriodicTask({
      clock,
      intervalMs: 50,
      run: async () => {
        runs++;
        await slow.promise;
        ended = true;
      },
      onError: () => {},
    });
    await task.start();
    await clock.advance(50);
    let stopped = false;
    const stopping = task.stop().then(() => (stopped = true));
    await settle();
    assert.equal(stopped, false, 'stop waits while the run is in progress');
    slow.resolve();
    await stopping;
    assert.equal(ended, true, 'the run had ended when stop resolved');
    await clock.advance(10_000);
    assert.equal(runs, 1, 'no run after stop');
    assert.equal(clock.pendingTimers, 0);
  });

  test('stop() before start() is safe, and start() after stop() does nothing', async () => {
    const clock = new ManualClock(T0);
    let runs = 0;
    const task = new PeriodicTask({ clock, intervalMs: 10, run: async () => void runs++, onError: () => {} });
    await task.stop();
    await task.start();
    await clock.advance(100);
    assert.equal(runs, 0);
    assert.equal(clock.pendingTimers, 0);
  });
});

describe('logFailures', () => {
  function capture(): { log: Logger; lines: { level: number; msg: string; failures?: number }[] } {
    const lines: { level: number; msg: string; failures?: number }[] = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
    return { log, lines };
  }

  test('the first failure at error level, every repeat at warn', () => {
    const { log, lines } = capture();
    const report = logFailures(log, { failed: 'sweep failed', stillFailing: 'sweep still fails' });
    for (let n = 1; n <= 4; n++) report(new Error('down'), n);
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.failures]),
      [
        [50, 'sweep failed', undefined],
        [40, 'sweep still fails', 2],
        [40, 'sweep still fails', 3],
        [40, 'sweep still fails', 4],
      ],
    );
  });

  test('with repeats "doubling", only the 2nd, 4th, 8th … repeat is logged; the message defaults to `failed`', () => {
    const { log, lines } = capture();
    const report = logFailures(log, { failed: 'claim failed', repeats: 'doubling' });
    for (let n = 1; n <= 9; n++) report(new Error('down'), n);
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.failures]),
      [
        [50, 'claim failed', undefined],
        [40, 'claim failed', 2],
        [40, 'claim failed', 4],
        [40, 'claim failed', 8],
      ],
    );
  });
});
