/**
 * The local clock shifted onto the database's, for nodes sharing one database.
 * Its refresh is a periodic task (services/periodic.ts).
 */
import { PeriodicTask } from '../services/index.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';

export interface DatabaseClockOptions {
  /** Reads the database's clock (epoch ms), e.g. PostgresStore.dbNow. */
  readDbNow: () => Promise<number>;
  /** The local clock it corrects; its timers schedule the refreshes (default: the system clock). */
  local?: Clock | undefined;
  /** How often the offset is measured again (default 60 s): clocks drift, and NTP steps them. */
  refreshMs?: number | undefined;
  /** A sample whose round trip took longer than this is discarded (default 1 s): the offset it gives is too uncertain. */
  maxRoundTripMs?: number | undefined;
  /** Told about a failed refresh; the clock keeps its last offset meanwhile. */
  onError?: ((err: unknown) => void) | undefined;
}

/**
 * The local clock shifted onto the database's: nodes whose clocks disagree
 * still agree on when a lease expires, because every `now` they write is the
 * database's time. The offset is measured at start (the midpoint of the round
 * trip, as NTP does) and refreshed every `refreshMs`; one query per refresh,
 * so the cost is bounded. `now()` never runs backwards when a refresh
 * shrinks the offset (event times and lease times stay ordered).
 */
export class DatabaseClock implements Clock {
  /** Database time minus local time, in ms. */
  offsetMs = 0;
  private readonly local: Clock;
  private last = -Infinity;
  private readonly refresher: PeriodicTask;

  private constructor(private readonly options: DatabaseClockOptions) {
    this.local = options.local ?? systemClock;
    this.refresher = new PeriodicTask({
      clock: this.local,
      intervalMs: options.refreshMs ?? 60_000,
      run: () => this.refresh(),
      onError: (err) => options.onError?.(err),
    });
  }

  /** Measures the offset once (rejects when the database cannot be read), then keeps it fresh until `stop()`. */
  static async start(options: DatabaseClockOptions): Promise<DatabaseClock> {
    const clock = new DatabaseClock(options);
    if (!(await clock.refresh())) {
      // Every sample so far was too slow to trust: take the next one as it comes rather than none.
      await clock.refresh(Infinity);
    }
    await clock.refresher.start();
    return clock;
  }

  now(): number {
    this.last = Math.max(this.last, this.local.now() + this.offsetMs);
    return this.last;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.local.setTimeout(fn, ms);
  }

  clearTimeout(handle: TimerHandle): void {
    this.local.clearTimeout(handle);
  }

  /** Measures the offset now; false when the sample was discarded (slow round trip). Rejects when the read fails. */
  async refresh(maxRoundTripMs = this.options.maxRoundTripMs ?? 1000): Promise<boolean> {
    const before = this.local.now();
    const db = await this.options.readDbNow();
    const after = this.local.now();
    if (after - before > maxRoundTripMs) return false;
    // Whole milliseconds: stores keep integer epoch ms.
    this.offsetMs = Math.round(db - (before + after) / 2);
    return true;
  }

  /** Stops refreshing (no refresh starts after this; one in progress is awaited). The offset stays. */
  stop(): Promise<void> {
    return this.refresher.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
