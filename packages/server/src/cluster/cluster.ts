/**
 * Joins a node to its cluster: a LISTEN connection to the shared PostgreSQL
 * database feeding the relay. Only for stores that notify (PostgreSQL); a
 * SQLite node is its own cluster and starts none of this.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import type { Engine } from '../engine/index.js';
import { NotifyListener } from './listener.js';
import { DELIVERIES_CHANNEL, EVENTS_CHANNEL } from './notification.js';
import { ClusterRelay } from './relay.js';

export interface StartClusterOptions {
  engine: Engine;
  /** The store's `postgres://…` URL. */
  url: string;
  log: Logger;
  /** Resync period while the LISTEN connection is down (default 1 s). */
  fallbackMs?: number | undefined;
}

export interface Cluster {
  readonly listener: NotifyListener;
  readonly relay: ClusterRelay;
  stop(): Promise<void>;
}

/** Connects the listener (a failed first attempt is retried in the background) and returns the running cluster link. */
export async function startCluster(options: StartClusterOptions): Promise<Cluster> {
  const { engine, log } = options;
  const relay = new ClusterRelay({ engine, log, fallbackMs: options.fallbackMs, schema: await clusterSchema(options.url, log) });
  const listener = new NotifyListener({
    url: listenUrl(options.url),
    channels: [EVENTS_CHANNEL, DELIVERIES_CHANNEL],
    applicationName: `${engine.nodeId}:listen`.slice(0, 63),
    clock: engine.clock,
    log,
    onNotification: (channel, payload) => relay.handle(channel, payload),
    onConnected: ({ reconnected }) => relay.connectedChanged(true, reconnected),
    onDisconnected: () => relay.connectedChanged(false),
  });
  await listener.start();
  return {
    listener,
    relay,
    async stop() {
      relay.stop();
      await listener.stop();
    },
  };
}

/** The store URL for a plain node-postgres client: Errand's own `schema` parameter dropped (LISTEN is per database, not per schema). */
function listenUrl(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.delete('schema');
  return parsed.toString();
}

/**
 * The schema this node's tables live in: the URL's `schema`, else the
 * connection's `current_schema()` (normally `public`); null (accept every
 * notification) when it cannot be asked.
 */
async function clusterSchema(url: string, log: Logger): Promise<string | null> {
  const named = new URL(url).searchParams.get('schema');
  if (named !== null) return named;
  const client = new pg.Client({ connectionString: listenUrl(url), connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ schema: string | null }>('SELECT current_schema() AS schema');
    return rows[0]?.schema ?? null;
  } catch (err) {
    log.warn({ err }, 'could not read the current schema; notifications of other schemas in this database will wake this node too');
    return null;
  } finally {
    await client.end().catch(() => {});
  }
}
