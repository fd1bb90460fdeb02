/**
 * The dispatcher: claims due requests while the worker pool has room and
 * starts an attempt for each. It wakes when told (a new submission, a finished
 * attempt), at the next known `run_at` (retries and delayed starts), and at
 * least every `pollMs` (work another process could have added). The loop
 * itself (one pass at a time, coalesced wake-ups, backoff) is the shared
 * claim loop in services/claimLoop.ts.
 */
import type { Logger } from 'pino';
import { formatSeconds } from '../config/index.js';
import type { Request } from '../model/index.js';
import type { Operation } from '../operations/index.js';
import type { Transition, Store } from '../store/index.js';
import { sleep, type Clock } from '../clock/index.js';
import { ClaimLoop, logFailures, type Service } from '../services/index.js';
import type { EngineEvents } from './events.js';
import { publishTransition, runAttempt, type AbortCause, type RunnerDeps, type RunningAttempt } from './runner.js';

export interface DispatcherOptions extends RunnerDeps {
  operations: ReadonlyMap<string, Operation>;
  /** Handlers running at once on this node. */
  concurrency: number;
  pollMs: number;
  /** False while this node must not claim (its liveness session is down: liveness.ts); default always true. */
  mayClaim?: (() => boolean) | undefined;
}

export class Dispatcher implements Service {
  private readonly running = new Map<string, RunningAttempt>();
  private readonly runningByOperation = new Map<string, number>();
  private readonly loop: ClaimLoop<Transition>;
  /** `now` of the last claim query: work due before it and not claimed is held back by limits. */
  private lastClaimAt = -Infinity;
  private readonly log: Logger;
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly events: EngineEvents;

  constructor(private readonly options: DispatcherOptions) {
    this.log = options.log.child({ component: 'dispatcher' });
    this.store = options.store;
    this.clock = options.clock;
    this.events = options.events;
    this.loop = new ClaimLoop<Transition>({
      clock: this.clock,
      pollMs: options.pollMs,
      // A poll timer even with every slot busy: work held back by limits is looked at again.
      pollWhenFull: true,
      free: () => options.concurrency - this.running.size,
      claim: (limit) => this.claim(limit),
      run: (transition) => this.run(transition),
      release: (transition) => this.run(transition, true),
      nextDueAt: () => this.nextRunAt(),
      onFailure: logFailures(this.log, {
        failed: 'claiming work failed; will try again',
        stillFailing: 'claiming work still fails; backing off',
      }),
    });
  }

  /** Requests running on this node. */
  get runningCount(): number {
    return this.running.size;
  }

  async start(): Promise<void> {
    this.loop.start();
  }

  /** Looks for work now. */
  wake(): void {
    this.loop.wake();
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
    // A claim in flight either starts its attempts before this resolves (they are
    // drained below) or, having seen the stop, releases what it claimed.
    await this.loop.stop();
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

  private claim(limit: number): Promise<Transition[]> {
    const operationLimits: Record<string, number> = {};
    for (const op of this.options.operations.values()) {
      if (op.concurrency !== undefined) operationLimits[op.name] = op.concurrency - (this.runningByOperation.get(op.name) ?? 0);
    }
    const now = this.clock.now();
    this.lastClaimAt = now;
    // Not registered: what is due waits (held back like work over a limit) until the session is back and wakes us.
    if (this.options.mayClaim?.() === false) return Promise.resolve([]);
    return this.store.requestClaim({ owner: this.options.owner, now, leaseMs: this.options.leaseMs, limit, operationLimits });
  }

  /** Publishes the claim, then starts the attempt (or, when stopping, hands the request back). */
  private async run(transition: Transition, release = false): Promise<void> {
    publishTransition(this.events, transition);
    try {
      if (release) await this.release(transition.request);
      else await this.startAttempt(transition.request);
    } catch (err) {
      // Keep going: the other claimed requests must still start. This one's lease will expire and be rescued.
      this.log.error({ err, request_id: transition.request.id }, 'could not start a claimed request');
    }
  }

  /**
   * Work already due at the last claim and still waiting is held back by a
   * concurrency limit: don't spin on it (a finishing attempt wakes us). Work
   * that falls due later gets a timer for that moment.
   */
  private async nextRunAt(): Promise<number | null> {
    try {
      return await this.store.requestNextRunAt({ after: this.lastClaimAt });
    } catch (err) {
      this.log.warn({ err }, 'could not read the next run time');
      return null;
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
}
