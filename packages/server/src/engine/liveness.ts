/**
 * The node's liveness: on a store that can register nodes (PostgreSQL,
 * `Store.nodeRegister`), the session that tells other nodes this one is alive,
 * so that when it dies they take its running requests back after
 * `engine.dead_node_timeout` instead of waiting for the leases to expire
 * (docs/decisions/0017-dead-node-from-its-session.md).
 *
 * While the session is down the node is not registered: other nodes will take
 * back what it runs once the timeout has passed (its handlers are then aborted
 * at their next heartbeat, `lease_lost`, and their late outcomes refused by
 * the attempt and owner guard). So it claims nothing new until the session is
 * back (each claim would only be rescued again, counting an attempt); the
 * session reconnects and re-registers by itself, and wakes the dispatcher.
 *
 * Started first and stopped last: registered before anything is claimed,
 * still registered while the dispatcher drains.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock/index.js';
import type { Service } from '../services/index.js';
import type { NodeRegistration, Store } from '../store/index.js';

export interface NodeLivenessOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  owner: string;
  /** Off (0) or a store without node sessions: nothing to hold, the node may always claim. */
  enabled: boolean;
  /** Called when the node is registered again after its session was lost (to wake the dispatcher). */
  onRegistered: () => void;
}

export class NodeLiveness implements Service {
  private registration: NodeRegistration | undefined;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private lostOnce = false;
  private readonly log: Logger;

  constructor(private readonly options: NodeLivenessOptions) {
    this.log = options.log.child({ component: 'node-liveness' });
  }

  /** True when this node may claim work: registered, or nothing to register with. */
  get registered(): boolean {
    if (!this.tracked) return true;
    return this.registration?.held ?? false;
  }

  /** Whether other nodes can tell this one's death from its session. */
  get tracked(): boolean {
    return this.options.enabled && this.options.store.nodeRegister !== undefined;
  }

  /** Registers (resolves after the first attempt; a failed one is retried in the background while claims wait). */
  async start(): Promise<void> {
    const register = this.options.store.nodeRegister;
    if (this.state !== 'new') return;
    this.state = 'running';
    if (!this.tracked || !register) return;
    const registration = await register({
      owner: this.options.owner,
      timers: this.options.clock,
      log: this.options.log,
      onChange: (held) => {
        if (this.state !== 'running') return;
        if (!held) {
          this.lostOnce = true;
          this.log.warn(
            'lost the database session that proves this node alive: claiming nothing until it is back; ' +
              'other nodes take back its running requests after engine.dead_node_timeout',
          );
          return;
        }
        if (this.lostOnce) this.log.info('node session back: claiming again');
        this.options.onRegistered();
      },
    });
    // Stopped while registering: end the session just opened.
    if (this.state !== 'running') await registration.stop();
    else this.registration = registration;
  }

  /** Ends the session: other nodes take back what this node still holds after the timeout. Idempotent. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    const registration = this.registration;
    this.registration = undefined;
    await registration?.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
