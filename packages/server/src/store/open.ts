import { PostgresStore } from './postgres/index.js';
import { SqliteStore } from './sqlite/index.js';
import type { Store } from './store.js';

export interface OpenStoreOptions {
  /** `sqlite:PATH`, `sqlite::memory:`, or `postgres://…` / `postgresql://…` (optionally `?schema=NAME`). */
  url: string;
  synchronous?: 'full' | 'normal';
  /** PostgreSQL: this node's id, set as its connections' `application_name` (NOTIFY payloads name their writer by it). */
  nodeId?: string | undefined;
  /** PostgreSQL: most connections this node opens. */
  poolSize?: number | undefined;
  /** PostgreSQL: how long to wait for a connection before answering `store_unavailable`, in ms. */
  connectTimeoutMs?: number | undefined;
  /**
   * How to keep trying a database server that cannot be reached yet (several nodes and the database started
   * together): wraps each opening of a server-backed store. A local file (SQLite) is opened once.
   */
  retryUnreachable?: (<T>(attempt: () => Promise<T>) => Promise<T>) | undefined;
}

/** Opens and migrates the store a URL names. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const { url } = options;
  if (url.startsWith('sqlite:')) {
    const store = new SqliteStore({ path: url.slice('sqlite:'.length), synchronous: options.synchronous ?? 'full' });
    await store.migrate();
    return store;
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const open = async (): Promise<Store> => {
      const store = new PostgresStore({
        url,
        nodeId: options.nodeId,
        poolSize: options.poolSize,
        connectTimeoutMs: options.connectTimeoutMs,
      });
      try {
        await store.migrate();
      } catch (err) {
        await store.close();
        throw err;
      }
      return store;
    };
    return options.retryUnreachable ? options.retryUnreachable(open) : open();
  }
  throw new Error(`store.url: "${url}" is not a store URL; write sqlite:./data/errand.db or postgres://user@host:5432/db`);
}
