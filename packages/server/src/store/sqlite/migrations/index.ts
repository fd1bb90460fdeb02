import { migration0001 } from './0001_init.js';
import { migration0002 } from './0002_estimates_idempotency_tombstones.js';
import { migration0003 } from './0003_batches.js';
import { migration0004 } from './0004_deliveries.js';
import { migration0005 } from './0005_payload_last_stats_indexes.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Every SQLite migration, in order. Append only; never edit a released one. */
export const MIGRATIONS: readonly Migration[] = [migration0001, migration0002, migration0003, migration0004, migration0005];
