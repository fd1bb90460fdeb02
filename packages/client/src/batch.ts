/** A handle on a batch (`POST /v1/batches`): its items as request handles, its status, and a wait. */
import { ErrandTimeoutError } from './errors.js';
import type { RequestHandle } from './handle.js';
import { abortReason, backoffDelay, parseRetryAfter, sleep } from './timing.js';
import type { Transport } from './transport.js';
import type { BatchStatus } from './types.js';

export class BatchHandle {
  readonly id: string;
  /** The `202` answer: the batch's status, `location` and `request_ids`. */
  readonly initial: BatchStatus;
  /** The items' request ids, in submission order. */
  readonly requestIds: string[];
  /** A handle per item, in submission order. */
  readonly requests: RequestHandle[];

  constructor(
    private readonly transport: Transport,
    initial: BatchStatus,
    requests: RequestHandle[],
    private readonly poll: { initialMs: number; maxMs: number },
  ) {
    this.id = initial.batch_id;
    this.initial = initial;
    this.requestIds = initial.request_ids ?? [];
    this.requests = requests;
  }

  /** `GET /v1/batches/{id}`: counts, and every item's status resource. */
  async status(options: { signal?: AbortSignal } = {}): Promise<BatchStatus> {
    const answer = await this.transport.call<BatchStatus>({
      method: 'GET',
      path: `/v1/batches/${encodeURIComponent(this.id)}`,
      signal: options.signal,
      safe: true,
    });
    return answer.body;
  }

  /** Polls (backoff with jitter, never sooner than `Retry-After`) until every item is terminal. */
  async wait(options: { timeoutMs?: number; signal?: AbortSignal; onProgress?: (status: BatchStatus) => void } = {}): Promise<BatchStatus> {
    const timeout = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
    const signals = [options.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    try {
      for (let poll = 0; ; poll++) {
        const answer = await this.transport.call<BatchStatus>({
          method: 'GET',
          path: `/v1/batches/${encodeURIComponent(this.id)}`,
          signal,
          safe: true,
        });
        if (answer.body.status === 'completed') return answer.body;
        options.onProgress?.(answer.body);
        const retryAfterMs = parseRetryAfter(answer.headers.get('retry-after')) ?? 0;
        await sleep(Math.max(retryAfterMs, backoffDelay(poll, { ...this.poll, factor: 1.5 })), signal);
      }
    } catch (err) {
      if (options.signal?.aborted) throw abortReason(options.signal);
      if (timeout?.aborted)
        throw new ErrandTimeoutError(`Batch ${this.id} was not complete after ${options.timeoutMs} ms.`, { timeoutMs: options.timeoutMs! });
      throw err;
    }
  }
}
