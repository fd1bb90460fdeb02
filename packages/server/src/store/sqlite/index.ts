export { SqliteStore } from './sqliteStore.js';
export type { SqliteStoreOptions } from './sqliteStore.js';
