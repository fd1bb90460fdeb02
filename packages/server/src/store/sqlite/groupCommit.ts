/**
 * Group commit for better-sqlite3. Every write queues a function; the writes
 * queued in one event-loop turn run in one transaction (one fsync), each in
 * its own savepoint so one failing write cannot undo the others, and every
 * caller's promise settles only after the commit — nothing is acknowledged
 * early. If the transaction itself is lost (I/O error, disk full: SQLite rolls
 * it back) or the commit fails, every caller in the batch gets
 * `store_unavailable`: none of their writes holds, and no later write of the
 * batch runs outside the transaction. Under load this turns N fsyncs into one.
 */
import type Database from 'better-sqlite3';
import { ErrandError } from '../../model/index.js';
import { storeCommits } from '../commits.js';

interface QueuedWrite {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class GroupCommit {
  private readonly queue: QueuedWrite[] = [];

  constructor(
    private readonly db: Database.Database,
    /** Maps driver errors to catalog errors (e.g. SQLITE_BUSY → store_unavailable). */
    private readonly translateError: (err: unknown) => unknown,
  ) {}

  /** Runs `fn` inside the next group transaction; resolves with its result after the commit. */
  write<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  /** Commits what is queued now (also called before the database closes). */
  flush(): void {
    const batch = this.queue.splice(0);
    if (batch.length === 0) return;
    const outcomes: Outcome[] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
      for (const item of batch) {
        this.db.exec('SAVEPOINT write');
        try {
          outcomes.push({ ok: true, value: item.fn() });
          this.db.exec('RELEASE write');
        } catch (error) {
          outcomes.push({ ok: false, error });
          if (!this.db.inTransaction) throw error;
          this.db.exec('ROLLBACK TO write; RELEASE write');
        }
      }
      this.db.exec('COMMIT');
      storeCommits.inc();
    } catch (cause) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      const error = this.translateError(cause);
      const failed =
        error instanceof ErrandError
          ? error
          : new ErrandError('store_unavailable', 'The SQLite store could not commit; retry shortly.', { cause });
      for (const item of batch) item.reject(failed);
      return;
    }
    batch.forEach((item, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok) item.resolve(outcome.value);
      else item.reject(this.translateError(outcome?.error));
    });
  }
}
