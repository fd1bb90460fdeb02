/**
 * A claim loop: takes due work from the store while this node has free slots
 * and hands each item to its service. The dispatcher (requests) and the
 * webhook deliverer (deliveries) are both this; each says only what to claim,
 * how to run one item and how to hand one back.
 *
 * - One pass claims at a time. A `wake()` while it claims makes it go round
 *   once more (wake-ups coalesce; none is lost); a `wake()` while it only
 *   reads the next due time starts the next pass at once.
 * - A pass claims while slots are free (`free()`), then arms a timer at the
 *   next due time (`nextDueAt()`), at most `pollMs` away (work another
 *   process could have added); never a zero-delay timer, so something due now
 *   and not claimable does not spin.
 * - When a pass fails (the store is down) the loop backs off: the timer waits
 *   `pollMs`, doubling with each failure in a row up to 16 polls; the first
 *   failure is logged at error level, repeats at warn. A wake-up (e.g. the
 *   database coming back) comes sooner.
 * - `stop()` arms nothing more and waits for the pass in progress: an item
 *   claimed after `stop()` began is handed back (`release`), not run.
 */
import type { Clock, TimerHandle } from '../clock/index.js';
import type { FailureReporter } from './failures.js';

export interface ClaimLoopOptions<T> {
  clock: Clock;
  /** Longest wait without a wake-up, ms. */
  pollMs: number;
  /** Slots free on this node now. */
  free(): number;
  /** Claims up to `limit` due items (under a lease). */
  claim(limit: number): Promise<readonly T[]>;
  /** Starts one claimed item; reports its own failures (a throw fails the whole pass). */
  run(item: T): Promise<void> | void;
  /** Hands back an item claimed while stopping. */
  release(item: T): Promise<void>;
  /** When the next item falls due (epoch ms), or null when nothing is waiting. A throw fails the pass. */
  nextDueAt(): Promise<number | null>;
  /** With every slot busy, still arm the poll timer (default false: the next finished item wakes the loop). */
  pollWhenFull?: boolean | undefined;
  /** Runs before a pass the timer starts (not one a wake-up starts); its failures are its own. */
  beforeTimedPass?: (() => Promise<void>) | undefined;
  /** Told about a failed pass (`retry_in_ms` in `fields`). */
  onFailure: FailureReporter;
  /** Told when a pass succeeds after `failures` failed ones. */
  onRecovered?: ((failures: number) => void) | undefined;
}

/** Longest retry delay after repeated failures, in poll intervals. */
const MAX_BACKOFF_POLLS = 16;
/** Claim rounds per pass before it yields to the timer (a guard against a store that keeps returning full pages). */
const MAX_ROUNDS = 1000;

export class ClaimLoop<T> {
  private state: 'new' | 'running' | 'stopped' = 'new';
  private timer: TimerHandle | undefined;
  /** A pass is claiming: a wake-up now makes it go round once more instead of starting another. */
  private claiming = false;
  private again = false;
  /** Passes not yet ended (at most one claiming; an older one may still be reading the next due time), awaited by stop(). */
  private readonly passes = new Set<Promise<void>>();
  /** Counts passes: only the newest arms the timer. */
  private generation = 0;
  /** Passes that failed in a row. */
  private failures = 0;

  constructor(private readonly o: ClaimLoopOptions<T>) {}

  /** Starts claiming (the first pass runs now). */
  start(): void {
    if (this.state !== 'new') return;
    this.state = 'running';
    this.wake();
  }

  /** Looks for work now (or once more, when a pass is claiming). */
  wake(): void {
    if (this.state !== 'running') return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    const pass: Promise<void> = this.pass().finally(() => this.passes.delete(pass));
    this.passes.add(pass);
  }

  /** Stops claiming and arming; resolves when the pass in progress has ended. Idempotent, safe before start(). */
  async stop(): Promise<void> {
    this.state = 'stopped';
    this.clearTimer();
    await Promise.all([...this.passes]);
  }

  private async pass(): Promise<void> {
    const generation = ++this.generation;
    this.clearTimer();
    let delay: number | undefined;
    try {
      await this.claimWhileFree();
      delay = await this.nextDelay();
      if (this.failures > 0) this.o.onRecovered?.(this.failures);
      this.failures = 0;
    } catch (err) {
      this.failures += 1;
      delay = this.o.pollMs * Math.min(2 ** (this.failures - 1), MAX_BACKOFF_POLLS);
      this.o.onFailure(err, this.failures, { retry_in_ms: delay });
    }
    // A pass woken meanwhile arms its own timer, from fresher information.
    if (delay !== undefined && generation === this.generation) this.arm(delay);
  }

  private async claimWhileFree(): Promise<void> {
    // Set and cleared in this function's own synchronous steps: a wake-up between the last
    // look at `again` and the end of claiming would otherwise be lost.
    this.claiming = true;
    try {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        this.again = false;
        const free = this.o.free();
        if (this.state !== 'running' || free <= 0) return;
        const claimed = await this.o.claim(free);
        for (const item of claimed) {
          if (this.state === 'running') await this.o.run(item);
          else await this.o.release(item);
        }
        if (claimed.length < free && !this.again) return;
      }
    } finally {
      this.claiming = false;
    }
  }

  /** Until the next item is due, at most `pollMs`; undefined (no timer) when full and not polling then. */
  private async nextDelay(): Promise<number | undefined> {
    if (this.state !== 'running') return undefined;
    if (!this.o.pollWhenFull && this.o.free() <= 0) return undefined;
    const due = await this.o.nextDueAt();
    if (due === null) return this.o.pollMs;
    return Math.min(this.o.pollMs, Math.max(0, due - this.o.clock.now()));
  }

  private arm(delay: number): void {
    if (this.state !== 'running') return;
    this.clearTimer();
    this.timer = this.o.clock.setTimeout(
      () => {
        this.timer = undefined;
        const before = this.o.beforeTimedPass;
        if (before) void before().then(() => this.wake());
        else this.wake();
      },
      Math.max(delay, 1),
    );
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
