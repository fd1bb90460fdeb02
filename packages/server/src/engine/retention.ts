/**
 * The retention cleaner: deletes finished requests (and their event logs) once
 * they are older than `retention.ttl`, in batches, every `sweep_interval`,
 * leaving a tombstone per request (its id answers `410 Gone` until
 * `retention.tombstone_ttl` passes); also drops expired tombstones and
 * idempotency keys. Pending and processing requests are never purged, nor a
 * request or batch whose webhook delivery is still pending or retrying (the
 * next sweep after it ends takes it); a batch goes with its own
 * `batch.completed` delivery.
 */
import type { Logger } from 'pino';
import type { Store } from '../store/index.js';
import type { Clock } from '../clock/index.js';
import { PeriodicSweeper } from '../services/index.js';

export interface RetentionCleanerOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  ttlMs: number;
  /** How long a purged request's tombstone (410 Gone) is kept. */
  tombstoneTtlMs: number;
  intervalMs: number;
}

const BATCH = 500;

export class RetentionCleaner extends PeriodicSweeper {
  private readonly log: Logger;

  constructor(private readonly options: RetentionCleanerOptions) {
    const log = options.log.child({ component: 'retention' });
    super({ clock: options.clock, intervalMs: options.intervalMs, log, failed: 'retention sweep failed' });
    this.log = log;
  }

  /** Purges everything due now; returns how many requests were deleted. */
  async sweep(): Promise<number> {
    const now = this.options.clock.now();
    const before = now - this.options.ttlMs;
    const { store } = this.options;
    let total = 0;
    for (let round = 0; round < 1000; round++) {
      const purged = await store.requestPurgeFinished({ before, limit: BATCH, now, tombstoneUntil: now + this.options.tombstoneTtlMs });
      total += purged;
      if (purged < BATCH) break;
    }
    await store.batchPurgeEmpty({ before });
    for (let round = 0; round < 1000; round++) if ((await store.tombstonePurgeExpired({ now, limit: BATCH })) < BATCH) break;
    for (let round = 0; round < 1000; round++) if ((await store.idempotencyPurgeExpired({ now, limit: BATCH })) < BATCH) break;
    if (total > 0) this.log.info({ purged: total }, 'purged finished requests past retention.ttl');
    return total;
  }
}
