import type { Clock, TimerHandle } from '../../src/clock/index.js';

interface Timer {
  id: number;
  due: number;
  fn: () => void;
}

/**
 * A clock that moves only when told. Timers fire in due order as `advance()`
 * passes them; between timers, pending I/O callbacks and promise jobs run, so
 * the engine's async work settles before time moves on.
 */
export class ManualClock implements Clock {
  private current: number;
  private timers: Timer[] = [];
  private nextId = 1;

  constructor(start: number) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: this.nextId++, due: this.current + Math.max(0, ms), fn };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t !== handle);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    for (let guard = 0; guard < 10_000; guard++) {
      await settle();
      const next = this.timers.filter((t) => t.due <= target).sort((a, b) => a.due - b.due || a.id - b.id)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.current = Math.max(this.current, next.due);
      next.fn();
    }
    this.current = target;
    await settle();
  }

  /** Timers waiting to fire (for assertions). */
  get pendingTimers(): number {
    return this.timers.length;
  }
}

/** Lets queued callbacks and promise jobs run (a few event-loop turns; no wall-clock wait). */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
