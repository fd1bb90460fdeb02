/**
 * Wires one Errand node: config → store → operations → engine → HTTP app.
 * `createServer()` is what `errand serve` runs, and what tests start in-process.
 */
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import type { ErrandConfig } from './config/index.js';
import { Engine, type Clock } from './engine/index.js';
import type { Resolver } from './webhooks/index.js';
import { buildApp } from './http/index.js';
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
    /** How webhook targets' host names resolve (a stub keeps SSRF tests off the network). */
    resolve?: Resolver;
  };
}

export interface ErrandServer {
  readonly config: ErrandConfig;
  readonly app: FastifyInstance;
  readonly engine: Engine;
  readonly store: Store;
  readonly log: Logger;
  /** Listens on `server.host:server.port` (or the given port); resolves with the URL. */
  listen(port?: number): Promise<string>;
  /** Stops accepting, drains running handlers within `graceMs` (default `server.shutdown_grace`), closes the store. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

export async function createServer(options: CreateServerOptions): Promise<ErrandServer> {
  const { config } = options;
  const log = options.log ?? pino({ level: config.logging.level, base: { service: 'errand' } });
  const operations = await loadOperations(config);
  const store = options.test?.store ?? (await openStore({ url: config.store.url, synchronous: config.store.synchronous }));
  const engine = new Engine({ config, store, operations, log, clock: options.test?.clock, random: options.test?.random, resolve: options.test?.resolve });
  let app: FastifyInstance;
  try {
    await engine.start();
    app = await buildApp({ config, engine, log });
  } catch (err) {
    await engine.stop();
    await store.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    config,
    app,
    engine,
    store,
    log,
    async listen(port) {
      return app.listen({ host: config.server.host, port: port ?? config.server.port });
    },
    close(graceMs = config.server.shutdown_grace) {
      closing ??= (async () => {
        const stopEngine = engine.stop(graceMs);
        await app.close();
        await stopEngine;
        await store.close();
      })();
      return closing;
    },
  };
}
