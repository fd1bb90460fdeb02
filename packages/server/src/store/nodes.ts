/**
 * A node's proof of life on a store shared by several nodes (PostgreSQL): a
 * database session the node keeps open while it runs, which the database ends
 * when the node's process dies (its socket closes) or stops answering (TCP
 * keepalives). Other nodes' rescuers take back the running requests of a node
 * whose session has been gone for `LeaseRescueExpiredParams.deadNodeAfterMs`,
 * instead of waiting for its leases to expire. The mechanism (an advisory lock
 * and a `nodes` row) is the backend's business: postgres/nodes.ts.
 */
import type { Logger } from 'pino';
import type { NotificationTimers } from './notifications.js';

export interface NodeRegisterParams {
  /** The node's `lease_owner` (unique per process). */
  owner: string;
  /** Reconnect backoff and liveness checks of the session (the engine's Clock). */
  timers: NotificationTimers;
  log: Logger;
  /**
   * Told `true` each time the session is established and the node registered,
   * `false` each time it is lost (the node should then stop claiming: other
   * nodes will soon treat its running requests as abandoned).
   */
  onChange: (held: boolean) => void;
}

export interface NodeRegistration {
  /** True while the session is up and the node registered. */
  readonly held: boolean;
  /**
   * Ends the session (and stops reconnecting). The node's row stays: other
   * nodes rescue what it still held after the timeout, then delete the row. Idempotent.
   */
  stop(): Promise<void>;
}

/** Registers a node; resolves after the first attempt, whether it worked or not (later ones run in the background). */
export type NodeRegister = (params: NodeRegisterParams) => Promise<NodeRegistration>;
