/**
 * Wires one Errand node: config → store → operations → engine → HTTP app.
 * `createServer()` is what `errand serve` runs, and what tests start in-process.
 */
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { ConfigError, type ErrandConfig } from './config/index.js';
import { maskUrl, retryStartup, startCluster, type Cluster } from './cluster/index.js';
import { DatabaseClock, systemClock, type Clock } from './clock/index.js';
import { Engine, newNodeId } from './engine/index.js';
import type { Resolver } from './net/index.js';
import { buildApp, isLoopbackHost, openSseStreamCount } from './http/index.js';
import { createMetrics, startMetricsListener, type Metrics, type MetricsListener } from './metrics/index.js';
import { loadOperations } from './operations/index.js';
import { openStore, type Store } from './store/index.js';

export interface CreateServerOptions {
  config: ErrandConfig;
  /** Logger (default: pino at `logging.level`, JSON to stdout). */
  log?: Logger | undefined;
  /** Knobs for tests only: never set in production. */
  test?: {
    clock?: Clock;
    random?: () => number;
    /** Use this store instead of opening `store.url`. */
    store?: Store;
    /** How webhook targets' and fetched URLs' host names resolve (a stub keeps SSRF tests off the network). */
    resolve?: Resolver;
  };
}

export interface ErrandServer {
  readonly config: ErrandConfig;
  readonly app: FastifyInstance;
  readonly engine: Engine;
  readonly store: Store;
  readonly log: Logger;
  /** The link to the other nodes, on a store that notifies (PostgreSQL: LISTEN/NOTIFY); undefined on SQLite. */
  readonly cluster: Cluster | undefined;
  /** Where the separate metrics listener (`observability.metrics.port`) listens, once `listen()` started it. */
  readonly metricsUrl: string | undefined;
  /** Listens on `server.host:server.port` (or the given port), and the metrics listener when configured; resolves with the API's URL. */
  listen(port?: number): Promise<string>;
  /**
   * Stops accepting new work (answered `503 shutting_down` while the listener stays open), drains running
   * handlers within `graceMs` (default `server.shutdown_grace`), then closes the listener and the store. Idempotent.
   */
  close(graceMs?: number): Promise<void>;
}

export async function createServer(options: CreateServerOptions): Promise<ErrandServer> {
  const { config } = options;
  const log = options.log ?? pino({ level: config.logging.level, base: { service: 'errand' } });
  const operations = await loadOperations(config);
  // One id for the engine's leases and the store's connections: other nodes' notifications name their writer by it.
  const nodeId = newNodeId(config);
  const store = options.test?.store ?? (await openConfiguredStore(config, nodeId, log, options.test?.clock ?? systemClock));
  const dbClock = options.test?.clock === undefined ? await startDatabaseClock(store, log) : undefined;
  const engine = new Engine({
    config,
    store,
    operations,
    log,
    clock: options.test?.clock ?? dbClock,
    random: options.test?.random,
    resolve: options.test?.resolve,
    nodeId,
  });
  let cluster: Cluster | undefined;
  let app: FastifyInstance;
  let metrics: Metrics | undefined;
  try {
    await engine.start();
    const listen = store.listen;
    if (listen) cluster = await startCluster({ engine, source: { listen }, log });
    if (config.observability.metrics.enabled) {
      metrics = createMetrics({
        config,
        engine,
        sseSubscribers: openSseStreamCount,
        version: VERSION,
        storeKind: store.capabilities.kind,
      });
    }
    app = await buildApp({ config, engine, log, metrics });
  } catch (err) {
    metrics?.close();
    await engine.stop();
    await cluster?.stop();
    await dbClock?.stop();
    await store.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  let metricsListener: MetricsListener | undefined;
  return {
    config,
    app,
    engine,
    store,
    log,
    cluster,
    get metricsUrl() {
      return metricsListener?.url;
    },
    async listen(port) {
      refuseOpenNonLoopback(config);
      const url = await app.listen({ host: config.server.host, port: port ?? config.server.port });
      const separate = config.observability.metrics;
      if (metrics && separate.port !== undefined && metricsListener === undefined) {
        metricsListener = await startMetricsListener(metrics, separate.host, separate.port);
      }
      return url;
    },
    close(graceMs = config.server.shutdown_grace) {
      closing ??= (async () => {
        // Drain with the listener still open: new work is answered 503 shutting_down (with Retry-After),
        // /ready 503 (load balancers move on), status polls and cancels are served. Then close it.
        try {
          await engine.stop(graceMs);
        } finally {
          await app.close();
          await metricsListener?.close();
          metrics?.close();
        }
        await cluster?.stop();
        await dbClock?.stop();
        await store.close();
      })();
      return closing;
    },
  };
}

/** With no API keys every caller sees every request: such a node listens on loopback only, whoever starts it. */
function refuseOpenNonLoopback(config: ErrandConfig): void {
  const authOff = config.auth.keys.length + config.auth.admin_keys.length === 0;
  if (authOff && !isLoopbackHost(config.server.host)) {
    throw new ConfigError(config.source, [
      `server.host: "${config.server.host}" is not a loopback address, and no API keys are configured (auth is off: every caller would see every request); configure auth.keys or auth.admin_keys, or listen on 127.0.0.1`,
    ]);
  }
}

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Opens `store.url`; a database server that cannot be reached yet is retried for `store.startup_timeout`. */
function openConfiguredStore(config: ErrandConfig, nodeId: string, log: Logger, clock: Clock): Promise<Store> {
  // `nodeId`, pool, timeout and retry matter to database servers (PostgreSQL) only; SQLite ignores them.
  return openStore({
    url: config.store.url,
    synchronous: config.store.synchronous,
    nodeId,
    poolSize: config.store.pool_size,
    connectTimeoutMs: config.store.connect_timeout,
    retryUnreachable: (attempt) =>
      retryStartup({
        attempt,
        timeoutMs: config.store.startup_timeout,
        clock,
        log,
        what: `the database at ${maskUrl(config.store.url)}`,
      }),
  });
}

/**
 * Nodes sharing a database (not exclusive access) keep time on its clock, so a
 * node whose clock runs ahead cannot expire another node's live leases.
 */
async function startDatabaseClock(store: Store, log: Logger): Promise<DatabaseClock | undefined> {
  const dbNow = store.dbNow;
  if (store.capabilities.exclusiveAccess || !dbNow) return undefined;
  try {
    const clock = await DatabaseClock.start({
      readDbNow: dbNow,
      onError: (err) => log.warn({ err }, 'could not refresh the database clock offset; keeping the last one'),
    });
    log.info({ offset_ms: Math.round(clock.offsetMs) }, 'following the database clock');
    return clock;
  } catch (err) {
    await store.close();
    throw err;
  }
}
