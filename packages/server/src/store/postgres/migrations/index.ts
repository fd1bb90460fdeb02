import { migration0001 } from './0001_init.js';
import { migration0002 } from './0002_rate_limits.js';
import { migration0003 } from './0003_stats_indexes.js';
import { migration0004 } from './0004_nodes.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * Every PostgreSQL migration, in order. Append only; never edit a released one.
 * Like SQLite's, they are TypeScript modules holding SQL, so `tsc` puts them in
 * dist/ with the rest of the code (no copy step, no file reads at run time).
 */
export const PG_MIGRATIONS: readonly Migration[] = [migration0001, migration0002, migration0003, migration0004];
