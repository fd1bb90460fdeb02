import { ErrandError } from '../model/index.js';
import { SqliteStore } from './sqlite/index.js';
import type { Store } from './store.js';

export interface OpenStoreOptions {
  /** `sqlite:PATH` or `sqlite::memory:` (PostgreSQL arrives in a later release). */
  url: string;
  synchronous?: 'full' | 'normal';
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
    throw new ErrandError('store_unavailable', 'store.url: the PostgreSQL store is not available in this release; use sqlite:PATH');
  }
  throw new Error(`store.url: "${url}" is not a store URL; write sqlite:./data/errand.db`);
}
