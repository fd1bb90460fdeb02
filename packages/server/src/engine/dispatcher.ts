/**
 * The dispatcher: claims due requests while the worker pool has room and
 * starts an attempt for each. It wakes when told (a new submission, a finished
 * attempt), at the next known `run_at` (retries and delayed starts), and at
 * least every `pollMs` (work another process could have added). Only one claim
 * loop runs at a time; wake-ups during a loop make it go round once more.
 */
import type { Logger } from 'pino';
import { formatSeconds } from '../config/index.js';
import type { Request } from '../model/index.js';
import type { Operation } from '../operations/index.js';
import type { Store } from '../store/index.js';
import { sleep, type Clock, type TimerHandle } from './clock.js';
import type { EngineEvents } from './events.js';
import { publishTransition, runAttempt, type AbortCause, type RunnerDeps, type RunningAttempt } from './runner.js';

export interface DispatcherOptions extends RunnerDeps {
  operations: ReadonlyMap<string, Operation>;
  /** Handlers running at once on this node. */
  concurrency: number;
  pollMs: number;
}

/** Longest retry delay after repeated claim failures, in poll intervals. */
const MAX_BACKOFF_POLLS = 16;

export class Dispatcher {
  private readonly running = new Map<string, RunningAttempt>();
  private readonly runningByOperation = new Map<string, number>();
  private timer: TimerHandle | undefined;
  private started = false;
  private stopping = false;
  private ticking = false;
  private again = false;
  /** The claim loop in progress, awaited by stop() so nothing starts after it. */
  private tickPromise: Promise<void> | undefined;
  /** `now` of the last claim query: work due before it and not claimed is held back by limits. */
  private lastClaimAt = -Infinity;
  /** Claim loops that failed in a row (store unavailable): the retry delay doubles with each, up to MAX_BACKOFF_POLLS polls. */
  private failures = 0;
  private readonly log: Logger;
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly events: EngineEvents;

  constructor(private readonly options: DispatcherOptions) {
    this.log = options.log.child({ component: 'dispatcher' });
    this.store = options.store;
    this.clock = options.clock;
    this.events = options.events;
  }

  /** Requests running on this node. */
  get runningCount(): number {
    return this.running.size;
  }

  start(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    this.wake();
  }

  /** Looks for work now. */
  wake(): void {
    if (!this.started || this.stopping) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.tickPromise = this.tick();
  }

  /** Aborts the attempt running `id` on this node, if any; true when there was one. */
  abortRequest(id: string, cause: AbortCause): boolean {
    const attempt = this.running.get(id);
    if (!attempt) return false;
    attempt.abort(cause);
    return true;
  }

  /**
   * Stops claiming, waits up to `graceMs` for running attempts, then aborts the
   * rest (`shutdown`): they stay `processing` and are rescued at the next start.
   * Idempotent; safe before start().
   */
  async stop(graceMs = 0): Promise<void> {
    this.stopping = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    // A claim in flight either starts its attempts before this resolves (they are
    // drained below) or, having seen `stopping`, releases what it claimed.
    await this.tickPromise;
    const pending = [...this.running.values()].map((a) => a.done);
    if (pending.length > 0 && graceMs > 0) {
      const grace = new AbortController();
      await Promise.race([Promise.all(pending), sleep(this.clock, graceMs, grace.signal).catch(() => {})]);
      grace.abort();
    }
    if (this.running.size > 0) {
      this.log.warn({ count: this.running.size }, 'grace period over; leaving running requests to be recovered at the next start');
      for (const attempt of this.running.values()) attempt.abort('shutdown');
      await Promise.all([...this.running.values()].map((a) => a.done));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private async tick(): Promise<void> {
    this.ticking = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    try {
      do {
        this.again = false;
        await this.claimWhileRoom();
      } while (this.again && !this.stopping);
      this.failures = 0;
    } catch (err) {
      this.failures += 1;
      // Once per outage at error level; the repeats (one per backoff step) at warn.
      if (this.failures === 1) this.log.error({ err }, 'claiming work failed; will try again');
      else this.log.warn({ err, failures: this.failures }, 'claiming work still fails; backing off');
    } finally {
      this.ticking = false;
    }
    if (!this.stopping) await this.scheduleNext();
  }

  private async claimWhileRoom(): Promise<void> {
    const { concurrency, operations } = this.options;
    for (;;) {
      const free = concurrency - this.running.size;
      if (free <= 0 || this.stopping) return;
      const operationLimits: Record<string, number> = {};
      for (const op of operations.values()) {
        if (op.concurrency !== undefined) operationLimits[op.name] = op.concurrency - (this.runningByOperation.get(op.name) ?? 0);
      }
      const now = this.clock.now();
      this.lastClaimAt = now;
      const claimed = await this.store.requestClaim({
        owner: this.options.owner,
        now,
        leaseMs: this.options.leaseMs,
        limit: free,
        operationLimits,
      });
      for (const transition of claimed) {
        publishTransition(this.events, transition);
        try {
          if (this.stopping) await this.release(transition.request);
          else await this.startAttempt(transition.request);
        } catch (err) {
          // Keep going: the other claimed requests must still start. This one's lease will expire and be rescued.
          this.log.error({ err, request_id: transition.request.id }, 'could not start a claimed request');
        }
      }
      if (claimed.length < free) return;
    }
  }

  private async startAttempt(request: Request): Promise<void> {
    const ref = { id: request.id, attempt: request.attempt, owner: this.options.owner, now: this.clock.now() };
    const operation = this.options.operations.get(request.operation);
    if (!operation) {
      publishTransition(
        this.events,
        await this.store.requestFail({
          ...ref,
          error: {
            type: 'operation_unavailable',
            message: `Operation "${request.operation}" is not declared in this server's config`,
            retryable: false,
          },
        }),
      );
      return;
    }
    if (ref.now >= request.deadline) {
      publishTransition(
        this.events,
        await this.store.requestFail({
          ...ref,
          error: {
            type: 'workflow_timeout',
            message: `Workflow exceeded timeout (${formatSeconds(operation.workflowTimeoutMs)})`,
            retryable: false,
          },
        }),
      );
      return;
    }
    const attempt = runAttempt(this.options, request, operation);
    this.running.set(request.id, attempt);
    this.runningByOperation.set(request.operation, (this.runningByOperation.get(request.operation) ?? 0) + 1);
    void attempt.done.finally(() => {
      // A newer attempt of the same request (after a lost lease) may have taken the entry.
      if (this.running.get(request.id) === attempt) this.running.delete(request.id);
      this.runningByOperation.set(request.operation, (this.runningByOperation.get(request.operation) ?? 1) - 1);
      this.wake();
    });
  }

  /** Hands a request claimed while stopping back to `pending`, its attempt not counted. */
  private async release(request: Request): Promise<void> {
    publishTransition(
      this.events,
      await this.store.requestRelease({ id: request.id, attempt: request.attempt, owner: this.options.owner, now: this.clock.now() }),
    );
  }

  private async scheduleNext(): Promise<void> {
    let delay = this.options.pollMs * 2 ** Math.min(Math.max(0, this.failures - 1), Math.log2(MAX_BACKOFF_POLLS));
    if (this.failures > 0) {
      // The store is failing: retry on the backoff timer (a wake-up, e.g. the database coming back, comes sooner).
      if (!this.stopping && !this.ticking) this.arm(delay);
      return;
    }
    try {
      // Work already due at the last claim and still waiting is held back by a
      // concurrency limit: don't spin on it (a finishing attempt wakes us). Work
      // that falls due later gets a timer for that moment.
      const next = await this.store.requestNextRunAt({ after: this.lastClaimAt });
      if (next !== null) delay = Math.min(delay, Math.max(0, next - this.clock.now()));
    } catch (err) {
      this.log.warn({ err }, 'could not read the next run time');
    }
    if (this.stopping || this.ticking) return;
    this.arm(delay);
  }

  private arm(delay: number): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => this.wake(), Math.max(delay, 1));
  }
}
