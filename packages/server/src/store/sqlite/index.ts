export { SqliteStore } from './sqliteStore.js';
