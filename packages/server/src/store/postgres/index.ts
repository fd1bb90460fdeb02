export { hasDatabaseClock, PostgresStore } from './postgresStore.js';
export { applicationName, type PostgresStoreOptions } from './connection.js';
export type { MigrationReport } from './migrate.js';
