/**
 * The lease rescuer: finds `processing` requests whose lease expired (their
 * worker crashed, hung, or lost the database), or, on a store with node
 * sessions, whose node's session has been gone for `deadNodeAfterMs` (it
 * died: liveness.ts), and returns them to `pending` for another attempt, or
 * fails them (`lease_expired`) when no attempt or time is left. On a backend with exclusive access (SQLite) the first sweep at
 * start-up also takes back every lease this process does not hold: whoever
 * held it is gone.
 */
import type { Logger } from 'pino';
import type { RetryPolicies, Store } from '../store/index.js';
import type { Clock } from '../clock/index.js';
import { PeriodicSweeper } from '../services/index.js';
import { eventNameForTransition, type EngineEvents } from './events.js';

export interface LeaseRescuerOptions {
  store: Store;
  clock: Clock;
  events: EngineEvents;
  log: Logger;
  owner: string;
  intervalMs: number;
  /** When a rescued request runs again (the store applies them: store/rules.ts). */
  retry: RetryPolicies;
  /** Also rescue the requests of nodes whose session has been gone this long (ms; stores with `nodeRegister`). */
  deadNodeAfterMs?: number | undefined;
  /** Called after a sweep rescued something (to wake the dispatcher). */
  onRescued: () => void;
}

export class LeaseRescuer extends PeriodicSweeper {
  private started = false;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly options: LeaseRescuerOptions) {
    const log = options.log.child({ component: 'lease-rescuer' });
    super({ clock: options.clock, intervalMs: options.intervalMs, log, failed: 'lease rescue sweep failed' });
    this.log = log;
  }

  /** Runs the first sweep (awaited, so recovery happens before new work is claimed), then sweeps periodically. */
  override async start(): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    const { exclusiveAccess } = this.options.store.capabilities;
    try {
      await this.sweep(exclusiveAccess ? this.options.owner : undefined);
    } catch (err) {
      // Alone on the database, recovery must happen before anything is claimed: fail the start.
      // Shared, an expired lease is rescued by whichever node sweeps next: just try again.
      if (exclusiveAccess) throw err;
      this.log.error({ err }, 'lease rescue sweep failed; will try again');
    }
    await this.periodic.start();
  }

  /** One sweep; returns how many requests were rescued. */
  override async sweep(allExcept?: string): Promise<number> {
    const { store, clock, events } = this.options;
    let total = 0;
    for (let round = 0; round < 100; round++) {
      const rescued = await store.leaseRescueExpired({
        now: clock.now(),
        limit: 200,
        allExcept,
        deadNodeAfterMs: this.options.deadNodeAfterMs,
        retry: this.options.retry,
      });
      for (const transition of rescued) {
        this.log.warn(
          {
            request_id: transition.request.id,
            operation: transition.request.operation,
            tenant: transition.request.tenant,
            status: transition.request.status,
          },
          'rescued a request whose lease expired or whose node is gone',
        );
        events.emit('lease:expired', transition);
        events.emit(eventNameForTransition(transition.kind), transition);
      }
      total += rescued.length;
      if (rescued.length < 200) break;
    }
    if (total > 0) this.options.onRescued();
    return total;
  }

  /** No sweep starts after this; one in progress is awaited. */
  override async stop(): Promise<void> {
    this.stopped = true;
    await super.stop();
  }
}
