/**
 * Group commit for PostgreSQL: the writes of the hot path (new requests, the
 * outcomes of attempts: completed, failed, retried, released, and lease
 * renewals: leases.ts) queued in
 * one event-loop turn share one transaction, each kind as one multi-row
 * statement, so N concurrent submissions or completions cost one COMMIT (one
 * WAL flush) and a handful of round trips instead of N of each. The shape is
 * SQLite's (../sqlite/groupCommit.ts): a queue per turn, every caller settled
 * only after COMMIT, nothing acknowledged early.
 *
 * - Outcomes stay per item: each kind's `many` returns one result per item in
 *   order (a guarded update that matched no row gives that item its null).
 * - A batch whose transaction fails because the store is unavailable (or
 *   whose COMMIT fails so) rejects every caller with `store_unavailable`:
 *   none of their writes holds. Any other failure (one item's constraint
 *   violation) is not everyone's: each item is then written again on its own,
 *   so only the offending item fails (a few at a time, not all at once on the
 *   pool). A deadlock or serialization failure counts as one item's conflict,
 *   not the store's: that group is written again item by item too.
 * - One request appears at most once per batch (a multi-row UPDATE changes a
 *   row once, so two writes to it in one statement would both see the same
 *   row); a second write to it waits for the next batch.
 * - At most `MAX_IN_FLIGHT` batches commit at once (the next one gathers while
 *   one waits for its WAL flush), each of at most `MAX_ITEMS` items.
 */
import type pg from 'pg';
import { ErrandError } from '../../model/index.js';
import { transaction, type Tx } from './connection.js';

/** Writes one kind of item, all in the caller's transaction; one result per item, in order. */
export type WriteMany<P, R> = (tx: Tx, items: readonly P[]) => Promise<R[]>;

interface Queued {
  many: WriteMany<unknown, unknown>;
  params: unknown;
  /** The request written (at most once per batch). */
  key: string;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Items per batch: bounds a transaction's statements (and bind parameters) under a burst. */
const MAX_ITEMS = 512;
/** Batches committing at once. */
const MAX_IN_FLIGHT = 2;
/** Items written at once when a failed group is written again one item at a time. */
const FALLBACK_CONCURRENCY = 4;

export class GroupCommit {
  private queue: Queued[] = [];
  private scheduled = false;
  private inFlight = 0;
  private idle: (() => void)[] = [];

  constructor(private readonly pool: pg.Pool) {}

  /** Resolves once every write queued so far has settled (before the pool closes). */
  settled(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Queues `params` for the next batch; resolves with its own result after the batch committed. */
  write<P, R>(many: WriteMany<P, R>, key: string, params: P): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ many: many as WriteMany<unknown, unknown>, params, key, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= MAX_IN_FLIGHT || this.queue.length === 0) return;
    this.scheduled = true;
    // The rest of this turn's writes join the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.startBatch();
    });
  }

  private startBatch(): void {
    if (this.inFlight >= MAX_IN_FLIGHT || this.queue.length === 0) return;
    const batch: Queued[] = [];
    const later: Queued[] = [];
    const keys = new Set<string>();
    for (const item of this.queue) {
      if (batch.length < MAX_ITEMS && !keys.has(item.key)) {
        keys.add(item.key);
        batch.push(item);
      } else later.push(item);
    }
    this.queue = later;
    this.inFlight += 1;
    void this.commit(batch).finally(() => {
      this.inFlight -= 1;
      this.schedule();
      if (this.queue.length === 0 && this.inFlight === 0) for (const resolve of this.idle.splice(0)) resolve();
    });
    // Another batch may start while this one commits.
    this.schedule();
  }

  private async commit(batch: readonly Queued[]): Promise<void> {
    let results: unknown[];
    try {
      results = await transaction(this.pool, (tx) => writeGroups(tx, batch));
    } catch (err) {
      // A deadlock or serialization failure rolled the whole group back for a conflict of one of its items:
      // written one by one, the others need not pay for it. Other unavailability (the connection, the server) is everyone's.
      if (batch.length === 1 || (isUnavailable(err) && !isConflict(err))) {
        for (const item of batch) item.reject(err);
        return;
      }
      // Not the store's fault: find the item(s) at fault by writing each on its own, a few at a time
      // (the pool also serves claims, heartbeats and reads).
      const rest = [...batch];
      const one = async (): Promise<void> => {
        for (let item = rest.shift(); item; item = rest.shift()) {
          const { many, params, resolve, reject } = item;
          await transaction(this.pool, async (tx) => (await many(tx, [params]))[0]).then(resolve, reject);
        }
      };
      await Promise.all(Array.from({ length: Math.min(FALLBACK_CONCURRENCY, rest.length) }, one));
      return;
    }
    batch.forEach((item, i) => item.resolve(results[i]));
  }
}

/** Runs each kind's statement once for its items; returns the results in the batch's order. */
async function writeGroups(tx: Tx, batch: readonly Queued[]): Promise<unknown[]> {
  const groups = new Map<WriteMany<unknown, unknown>, number[]>();
  batch.forEach((item, i) => {
    const group = groups.get(item.many);
    if (group) group.push(i);
    else groups.set(item.many, [i]);
  });
  const results = new Array<unknown>(batch.length);
  for (const [many, indexes] of groups) {
    const out = await many(
      tx,
      indexes.map((i) => batch[i]!.params),
    );
    if (out.length !== indexes.length) throw new Error(`group commit: ${out.length} results for ${indexes.length} items`);
    indexes.forEach((index, j) => (results[index] = out[j]));
  }
  return results;
}

function isUnavailable(err: unknown): boolean {
  return err instanceof ErrandError && err.type === 'store_unavailable';
}

/** A deadlock or serialization failure (translated to `store_unavailable`, its cause keeps the SQLSTATE). */
function isConflict(err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } }).cause?.code;
  return code === '40P01' || code === '40001';
}
