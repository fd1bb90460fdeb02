/**
 * The estimator: how long a request of an operation will take, learned from
 * history and shared through the store.
 *
 * - **History.** Every completed request adds its run time (started → completed)
 *   to the operation's decayed histogram in the store (model/histogram.ts), so
 *   the estimate survives restarts, follows an operation that gets slower or
 *   faster, and is the same on every node. With at least `minSamples` samples,
 *   the run time is the median to the 90th percentile of that histogram.
 * - **Prior.** Before that, the operation's own guess is used: its module's
 *   `estimate(input)` (seconds) or the config's `estimate_seconds` — as
 *   0.8×–1.2× of the guess. With neither, there is no estimate (null).
 * - **Queue.** The requests of the operation already waiting run first, in
 *   waves of the operation's concurrency (or the engine's), each about one
 *   median long: `waiting / slots × median` is added to both ends.
 *
 * Reads go through a short cache (stats for 1 s, queue counts for 250 ms), so a
 * burst of submissions costs the store one read per operation, not one each.
 *
 * Writes are batched: a completion's run time is kept in memory (and counted
 * in this node's estimates at once) and written with the others of its
 * operation at most `FLUSH_MS` later, or as soon as `FLUSH_SAMPLES` are
 * waiting, in one store write per operation — not one commit per completed
 * request (that was a third of PostgreSQL's commits per no-op job). `stop()`
 * writes what is left. The history is a learned estimate, not acknowledged
 * data: a node that crashes loses at most its last second of run times, which
 * only makes the estimate learn a little slower.
 */
import type { Logger } from 'pino';
import { emptyHistogram, histogramAdd, histogramQuantile, type Request } from '../model/index.js';
import type { Operation } from '../operations/index.js';
import type { OperationStats, Store } from '../store/index.js';
import type { Clock, TimerHandle } from '../clock/index.js';

export interface Estimate {
  lowMs: number;
  highMs: number;
  /** Where the run-time part came from. */
  source: 'history' | 'prior';
  /** Time spent waiting behind queued requests, included in low and high. */
  queueMs: number;
}

export interface EstimatorOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  operations: ReadonlyMap<string, Operation>;
  /** Slots when an operation sets no concurrency of its own. */
  engineConcurrency: number;
  minSamples: number;
  decay: number;
}

const STATS_TTL_MS = 1000;
const COUNTS_TTL_MS = 250;
/** Longest a recorded run time waits in memory before it is written, ms. */
const FLUSH_MS = 1000;
/** Run times waiting (all operations) that trigger a write at once. */
const FLUSH_SAMPLES = 500;

export class Estimator {
  private readonly stats = new Map<string, { value: OperationStats | null; at: number }>();
  private readonly waiting = new Map<string, { value: number; at: number }>();
  /** Run times recorded and not yet written, per operation, oldest first. */
  private unwritten = new Map<string, number[]>();
  private unwrittenCount = 0;
  private timer: TimerHandle | undefined;
  /** The write in progress: reads of the history wait for it, so they never miss or double-count its samples. */
  private writing: Promise<void> = Promise.resolve();
  private readonly reading = new Map<string, Promise<{ value: OperationStats | null; at: number }>>();

  constructor(private readonly options: EstimatorOptions) {}

  /** Records a completed request's run time (in memory; written within `FLUSH_MS`). Never throws: estimates are advisory. */
  record(request: Request): void {
    try {
      this.remember(request);
    } catch (err) {
      // Called from an event listener: a throw would keep the other listeners (streams, webhooks) from the event.
      this.options.log.warn({ err, operation: request.operation }, 'could not record a run time for estimates');
    }
  }

  private remember(request: Request): void {
    if (request.started_at === null || request.completed_at === null) return;
    const durationMs = request.completed_at - request.started_at;
    const list = this.unwritten.get(request.operation);
    if (list) list.push(durationMs);
    else this.unwritten.set(request.operation, [durationMs]);
    this.unwrittenCount += 1;
    // Counted in this node's estimates at once: the cached history gets the sample too.
    const cached = this.stats.get(request.operation);
    if (cached) cached.value = this.withUnwritten(request.operation, cached.value, [durationMs]);
    if (this.unwrittenCount >= FLUSH_SAMPLES) void this.flush();
    else this.timer ??= this.options.clock.setTimeout(() => void this.flush(), FLUSH_MS);
  }

  /** Writes the recorded run times now (one store write per operation); resolves when written or given up. */
  flush(): Promise<void> {
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.unwritten;
    if (batch.size === 0) return this.writing;
    this.unwritten = new Map();
    this.unwrittenCount = 0;
    // One write at a time, in order: each applies its samples on top of the previous one's.
    this.writing = this.writing.then(() => this.write(batch));
    return this.writing;
  }

  /** Writes what is left; the estimator can still be used (a later record arms a new timer). */
  async stop(): Promise<void> {
    await this.flush();
  }

  private async write(batch: Map<string, number[]>): Promise<void> {
    const { store, clock, decay } = this.options;
    for (const [operation, durationsMs] of batch) {
      try {
        const value = await store.operationStatsRecord({ operation, durationsMs, now: clock.now(), decay });
        this.stats.set(operation, { value: this.withUnwritten(operation, value), at: clock.now() });
      } catch (err) {
        // Dropped, not retried: a store that is down must not make this grow without bound.
        this.options.log.warn({ err, operation, samples: durationsMs.length }, 'could not record run times for estimates');
      }
    }
  }

  /** The estimate for a new request of `operation` with `input`, or null when nothing is known. */
  async estimate(operation: string, input: unknown): Promise<Estimate | null> {
    const op = this.options.operations.get(operation);
    if (!op) return null;
    const run = (await this.fromHistory(operation)) ?? this.fromPrior(op, input);
    if (!run) return null;
    const waiting = await this.waitingCount(operation);
    const slots = op.concurrency ?? this.options.engineConcurrency;
    const queueMs = Math.floor(waiting / Math.max(1, slots)) * run.medianMs;
    return { lowMs: run.medianMs + queueMs, highMs: Math.max(run.medianMs, run.highMs) + queueMs, source: run.source, queueMs };
  }

  /** The median run time of `operation` (no queue), for pacing polls of a running request. */
  async medianMs(operation: string): Promise<number | null> {
    const op = this.options.operations.get(operation);
    const run = (await this.fromHistory(operation)) ?? (op ? this.fromPrior(op, undefined) : null);
    return run?.medianMs ?? null;
  }

  private async fromHistory(operation: string): Promise<{ medianMs: number; highMs: number; source: 'history' } | null> {
    const now = this.options.clock.now();
    let cached = this.stats.get(operation);
    if (!cached || now - cached.at > STATS_TTL_MS) {
      try {
        cached = await this.readHistory(operation, now);
      } catch (err) {
        this.options.log.warn({ err, operation }, 'could not read duration history');
        return null;
      }
    }
    const h = cached.value?.histogram;
    if (!h || h.count < this.options.minSamples) return null;
    const medianMs = histogramQuantile(h, 0.5);
    const highMs = histogramQuantile(h, 0.9);
    return medianMs === null || highMs === null ? null : { medianMs, highMs, source: 'history' };
  }

  /** One read per operation at a time, however many estimates wait for it; after the write in progress. */
  private readHistory(operation: string, now: number): Promise<{ value: OperationStats | null; at: number }> {
    let read = this.reading.get(operation);
    if (!read) {
      read = (async () => {
        await this.writing;
        const value = this.withUnwritten(operation, await this.options.store.operationStatsGet({ operation }));
        const entry = { value, at: now };
        this.stats.set(operation, entry);
        return entry;
      })().finally(() => this.reading.delete(operation));
      this.reading.set(operation, read);
    }
    return read;
  }

  /** `stored` with this node's run times not written yet (all of them, or just `samples`) added. */
  private withUnwritten(
    operation: string,
    stored: OperationStats | null,
    samples = this.unwritten.get(operation) ?? [],
  ): OperationStats | null {
    if (samples.length === 0) return stored;
    const base = stored ?? { operation, histogram: emptyHistogram(), updated_at: this.options.clock.now() };
    return { ...base, histogram: samples.reduce((h, ms) => histogramAdd(h, ms, this.options.decay), base.histogram) };
  }

  private fromPrior(op: Operation, input: unknown): { medianMs: number; highMs: number; source: 'prior' } | null {
    let seconds: number | undefined;
    if (op.definition.estimate && input !== undefined) {
      try {
        const guess = op.definition.estimate(input);
        if (typeof guess === 'number' && Number.isFinite(guess) && guess >= 0) seconds = guess;
      } catch (err) {
        this.options.log.warn({ err, operation: op.name }, "the operation's estimate(input) threw; using estimate_seconds");
      }
    }
    seconds ??= op.estimateSeconds;
    if (seconds === undefined) return null;
    const ms = seconds * 1000;
    return { medianMs: Math.round(ms * 0.8), highMs: Math.round(ms * 1.2), source: 'prior' };
  }

  private async waitingCount(operation: string): Promise<number> {
    const now = this.options.clock.now();
    const cached = this.waiting.get(operation);
    if (cached && now - cached.at <= COUNTS_TTL_MS) return cached.value;
    try {
      const counts = await this.options.store.requestCounts({ operation });
      this.waiting.set(operation, { value: counts.pending, at: now });
      return counts.pending;
    } catch {
      return cached?.value ?? 0;
    }
  }
}

/** A human range such as "45-60 seconds", "under a second" or "2-3 minutes". */
export function formatEstimate({ lowMs, highMs }: Pick<Estimate, 'lowMs' | 'highMs'>): string {
  if (highMs < 1000) return 'under a second';
  if (highMs <= 120_000) {
    const low = Math.max(1, Math.floor(lowMs / 1000));
    const high = Math.max(low, Math.ceil(highMs / 1000));
    return low === high ? `about ${high} second${high === 1 ? '' : 's'}` : `${low}-${high} seconds`;
  }
  const low = Math.max(1, Math.floor(lowMs / 60_000));
  const high = Math.max(low, Math.ceil(highMs / 60_000));
  return low === high ? `about ${high} minutes` : `${low}-${high} minutes`;
}
