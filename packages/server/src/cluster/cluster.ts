/**
 * Joins a node to its cluster: the store's notifications of other nodes'
 * commits (`Store.listen`; PostgreSQL LISTEN/NOTIFY) feeding the relay. Only
 * for stores that notify; a SQLite node is its own cluster and starts none of
 * this.
 */
import type { Logger } from 'pino';
import type { Engine } from '../engine/index.js';
import type { NotificationSource, NotificationSubscription } from '../store/index.js';
import { ClusterRelay } from './relay.js';

export interface StartClusterOptions {
  engine: Engine;
  /** Where notifications come from: the store (`{ listen: store.listen }`), or a fake in tests. */
  source: NotificationSource;
  log: Logger;
  /** Resync period while the notification connection is down (default 1 s). */
  fallbackMs?: number | undefined;
}

export interface Cluster {
  readonly subscription: NotificationSubscription;
  readonly relay: ClusterRelay;
  stop(): Promise<void>;
}

/** Subscribes (a failed first connection is retried in the background by the source) and returns the running cluster link. */
export async function startCluster(options: StartClusterOptions): Promise<Cluster> {
  const { engine, log } = options;
  const relay = new ClusterRelay({ engine, log, fallbackMs: options.fallbackMs });
  const subscription = await options.source.listen({
    timers: engine.clock,
    log,
    onNotification: (note) => relay.handle(note),
    onConnected: ({ reconnected }) => relay.connectedChanged(true, reconnected),
    onDisconnected: () => relay.connectedChanged(false),
  });
  return {
    subscription,
    relay,
    async stop() {
      relay.stop();
      await subscription.stop();
    },
  };
}
