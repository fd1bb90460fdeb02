/**
 * A periodic task: runs `run` every `intervalMs` (counted from the end of the
 * previous run, so runs never overlap) on the injected clock, until stopped.
 * A failed run is reported (with how many failed in a row) and the next one
 * comes at the usual interval. `stop()` cancels the next run and waits for
 * the one in progress. The lease rescuer, retention and the database clock's
 * refresh are all this.
 */
import type { Clock, TimerHandle } from '../clock/index.js';
import type { Logger } from 'pino';
import { logFailures, type FailureReporter } from './failures.js';
import type { Service } from './service.js';

export interface PeriodicTaskOptions {
  clock: Clock;
  /** Wait before each run, ms (the first run comes `intervalMs` after `start()`). */
  intervalMs: number;
  run: () => Promise<unknown>;
  /** Told about a failed run; `failures` counts the failed runs in a row (1 = the first since a success). */
  onError: FailureReporter;
}

export class PeriodicTask implements Service {
  private timer: TimerHandle | undefined;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private current: Promise<void> | undefined;
  private failures = 0;

  constructor(private readonly options: PeriodicTaskOptions) {}

  /** Arms the first run. */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    this.schedule();
  }

  /** No run starts after this; resolves when the run in progress (if any) has ended. Idempotent. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.current;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private schedule(): void {
    if (this.state !== 'running') return;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      this.current = this.tick();
    }, this.options.intervalMs);
  }

  private async tick(): Promise<void> {
    try {
      await this.options.run();
      this.failures = 0;
    } catch (err) {
      this.failures += 1;
      this.options.onError(err, this.failures);
    }
    this.current = undefined;
    this.schedule();
  }
}

export interface SweeperOptions {
  clock: Clock;
  /** Wait between sweeps, ms. */
  intervalMs: number;
  /** Where failed sweeps are logged (the first at error, then warn). */
  log: Logger;
  /** The message a failed sweep is logged with. */
  failed: string;
}

/**
 * A service whose work is one `sweep()` run periodically (the lease rescuer,
 * retention): the periodic task, its failure logging and the lifecycle, once.
 */
export abstract class PeriodicSweeper implements Service {
  protected readonly periodic: PeriodicTask;

  constructor(options: SweeperOptions) {
    this.periodic = new PeriodicTask({
      clock: options.clock,
      intervalMs: options.intervalMs,
      run: () => this.sweep(),
      onError: logFailures(options.log, { failed: options.failed }),
    });
  }

  /** One sweep now; resolves with how many things it handled. */
  abstract sweep(): Promise<number>;

  /** Sweeps every `intervalMs` from now on. */
  start(): Promise<void> {
    return this.periodic.start();
  }

  /** No sweep starts after this; one in progress is awaited. */
  async stop(): Promise<void> {
    await this.periodic.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
