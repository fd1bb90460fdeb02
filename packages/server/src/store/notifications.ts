/**
 * Notifications of what other nodes committed, as a store that can push them
 * delivers them (`Store.listen`, PostgreSQL LISTEN/NOTIFY): typed, and already
 * narrowed to this store's data (a shared database may hold other clusters).
 * The wire format is the backend's business (postgres/notifications.ts parses
 * what its triggers write); consumers (the cluster relay) see only these types.
 */
import type { Logger } from 'pino';
import type { EventType, RequestStatus } from '../model/index.js';

/** One event appended to a request's log (one per committed `request_events` row). */
export interface EventNotification {
  kind: 'event';
  requestId: string;
  seq: number;
  type: EventType;
  /** The request's status after the event. */
  status: RequestStatus;
  operation: string;
  /** The node that committed the event ('' when unknown). */
  node: string;
}

/** A webhook delivery fell due (inserted, redelivered, retried, released or rescued). */
export interface DeliveryNotification {
  kind: 'delivery';
  /** The node that committed it ('' when unknown). */
  node: string;
}

export type StoreNotification = EventNotification | DeliveryNotification;

/** Timers for reconnects and liveness checks (the engine's Clock is one); they must not keep the process alive. */
export interface NotificationTimers {
  setTimeout(fn: () => void, ms: number): object;
  clearTimeout(handle: object): void;
}

export interface ListenOptions {
  timers: NotificationTimers;
  log: Logger;
  onNotification: (note: StoreNotification) => void;
  /**
   * Called after every successful (re)connection; `reconnected` is false only
   * for the first. Notifications sent while disconnected are lost: after a
   * reconnect the owner must resync from the event log.
   */
  onConnected: (info: { reconnected: boolean }) => void;
  /** Called once per lost connection (or failed first attempt). */
  onDisconnected?: ((err: unknown) => void) | undefined;
}

/** Counts of what a subscription received (for tests and metrics). */
export interface NotificationStats {
  received: number;
  /** Payloads that could not be read (logged, not delivered). */
  invalid: number;
  /** Another cluster's (same database, another schema): not delivered. */
  foreign: number;
}

export interface NotificationSubscription {
  /** True while notifications can arrive. */
  readonly connected: boolean;
  readonly stats: Readonly<NotificationStats>;
  /** Stops listening (and reconnecting). Idempotent. */
  stop(): Promise<void>;
}

/**
 * Subscribes: resolves after the first connection attempt, whether it worked
 * or not (later attempts run in the background and report through the
 * callbacks).
 */
export type Listen = (options: ListenOptions) => Promise<NotificationSubscription>;

/** Anything notifications come from: a store with `listen`, or a fake in tests. */
export interface NotificationSource {
  listen: Listen;
}
