/**
 * The engine: accepts requests into the store and runs them. It owns the
 * background services — dispatcher (claims and runs), lease rescuer (crash
 * recovery), retention cleaner and webhook deliverer, built by compose.ts —
 * with one start()/stop() lifecycle, and publishes every change on `events`.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ErrandConfig } from '../config/index.js';
import {
  ErrandError,
  isTerminal,
  newBatchId,
  newRequestId,
  type Batch,
  type Delivery,
  type DeliveryWithAttempts,
  type Request,
  type RequestEvent,
  type RequestMode,
} from '../model/index.js';
import type { Operation } from '../operations/index.js';
import type {
  BatchGetByIdParams,
  CancelOutcome,
  EventListAfterParams,
  NewRequest,
  RateLimitTake,
  RateLimitTakeParams,
  RequestCounts,
  RequestCountsParams,
  RequestGetByIdParams,
  RequestListParams,
  RequestStats,
  RequestStatsParams,
  RequestState,
  RequestSummary,
  Store,
  Tombstone,
  TombstoneGetParams,
} from '../store/index.js';
import { systemClock, type Clock } from '../clock/index.js';
import { systemResolver, type Resolver, type TargetPolicy } from '../net/index.js';
import type { WebhookDeliverer } from '../webhooks/index.js';
import { composeServices, type EngineServices } from './compose.js';
import type { Dispatcher } from './dispatcher.js';
import type { Estimator, Estimate } from './estimator.js';
import { EngineEvents } from './events.js';
import { Follow, waitFor, type WaitForParams } from './follow.js';
import { publishTransition } from './runner.js';

export interface EngineOptions {
  config: ErrandConfig;
  store: Store;
  operations: ReadonlyMap<string, Operation>;
  log: Logger;
  /** Test seam: the clock every timer and timestamp comes from. */
  clock?: Clock | undefined;
  /** Test seam: randomness for retry jitter. */
  random?: (() => number) | undefined;
  /** Test seam: how webhook targets' and fetched URLs' host names resolve (default: the system resolver). */
  resolve?: Resolver | undefined;
  /** This node's id (default: `newNodeId(config)`); give the store the same one so its notifications name this node. */
  nodeId?: string | undefined;
}

/**
 * A fresh node id: `engine.node_id` (default the hostname), then `:pid:random`.
 * Always unique per process, so a restarted node never mistakes its
 * predecessor's leases for its own; at most 55 characters, so it fits
 * PostgreSQL's 63-byte `application_name` whole (notifications name their node by it).
 */
export function newNodeId(config: ErrandConfig): string {
  const name = Buffer.from(config.engine.node_id ?? hostname())
    .subarray(0, 40)
    .toString()
    .replace(/\uFFFD+$/, '');
  return `${name}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
}

export interface SubmitParams {
  tenant: string;
  operation: string;
  input: unknown;
  mode: RequestMode;
  webhookUrl?: string | null | undefined;
  metadata?: Record<string, unknown> | null | undefined;
  priority?: number | undefined;
  /** Earliest start (epoch ms); default now. */
  runAt?: number | undefined;
  /** The failed or cancelled request this one re-runs. */
  retryOf?: string | undefined;
  /** The estimate given to the caller, kept on the request (paces Retry-After). */
  estimatedMs?: number | null | undefined;
  /** The batch this request is an item of. */
  batchId?: string | undefined;
}

export interface SubmitBatchParams {
  tenant: string;
  operation: string;
  /** One input per item. */
  items: unknown[];
  concurrency: number;
  webhookUrl?: string | null | undefined;
  metadata?: Record<string, unknown> | null | undefined;
  priority?: number | undefined;
}

export interface SubmitWithKeyParams extends SubmitParams {
  idempotency: { key: string; fingerprint: string };
}

export class Engine {
  readonly events = new EngineEvents();
  readonly store: Store;
  readonly operations: ReadonlyMap<string, Operation>;
  readonly clock: Clock;
  /** This node's name in `lease_owner`. */
  readonly nodeId: string;
  /** The background services (built by composeServices), started and stopped with the engine. */
  readonly services: EngineServices;
  private readonly dispatcher: Dispatcher;
  /** Sends webhook deliveries from the outbox; its `events` report each outcome. */
  readonly webhooks: WebhookDeliverer;
  /** Which webhook targets may be reached (SSRF guard). */
  private readonly targets: TargetPolicy;
  private readonly log: Logger;
  /** Learned duration estimates (shared through the store). */
  readonly estimator: Estimator;
  /** Aborted when the engine stops: sync waits answer early so their callers get a 202 handoff. */
  private readonly stopping = new AbortController();
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(private readonly options: EngineOptions) {
    const { config, store, log } = options;
    this.store = store;
    this.operations = options.operations;
    this.clock = options.clock ?? systemClock;
    this.log = log;
    this.nodeId = options.nodeId ?? newNodeId(config);
    this.services = composeServices({
      config,
      store,
      operations: this.operations,
      log,
      clock: this.clock,
      events: this.events,
      nodeId: this.nodeId,
      random: options.random ?? Math.random,
      resolve: options.resolve ?? systemResolver,
    });
    this.dispatcher = this.services.dispatcher;
    this.webhooks = this.services.webhooks;
    this.targets = this.services.targets;
    this.estimator = this.services.estimator;
  }

  /** Recovers requests left by a previous process, then starts claiming. */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    const { liveness, rescuer, webhooks, retention, dispatcher } = this.services;
    // Registered first, so nothing is claimed before other nodes can tell this one is alive.
    await liveness.start();
    await rescuer.start();
    await webhooks.start();
    await retention.start();
    await dispatcher.start();
  }

  /** How long a new request of `operation` with `input` is likely to take, queue included (null when unknown). */
  estimate(operation: string, input: unknown): Promise<Estimate | null> {
    return this.estimator.estimate(operation, input);
  }

  /** Requests running on this node now. */
  get runningCount(): number {
    return this.dispatcher.runningCount;
  }

  get accepting(): boolean {
    return this.state === 'running' || this.state === 'new';
  }

  /** Validates and durably stores a new request; resolves once committed. */
  async submit(params: SubmitParams): Promise<Request> {
    const transition = await this.store.requestInsert({ request: this.newRequest(params) });
    publishTransition(this.events, transition);
    this.dispatcher.wake();
    return transition.request;
  }

  /**
   * Like submit(), under an idempotency key (scoped to the tenant, kept for
   * `idempotency.ttl`): the same key again returns the original request
   * (`replayed: true`); the same key for a different submission (another
   * fingerprint) is `idempotency_conflict`. Concurrent duplicates get one request.
   */
  async submitWithKey(params: SubmitWithKeyParams): Promise<{ request: Request; replayed: boolean }> {
    const request = this.newRequest(params);
    const outcome = await this.store.requestInsertIdempotent({
      request: { ...request, idempotency_key: params.idempotency.key },
      key: {
        tenant: params.tenant,
        key: params.idempotency.key,
        fingerprint: params.idempotency.fingerprint,
        expiresAt: request.created_at + this.options.config.idempotency.ttl,
      },
    });
    if (outcome.outcome === 'created') {
      publishTransition(this.events, outcome.transition);
      this.dispatcher.wake();
      return { request: outcome.transition.request, replayed: false };
    }
    if (!outcome.sameFingerprint) {
      throw new ErrandError('idempotency_conflict', undefined, { field: 'Idempotency-Key', details: { request_id: outcome.request.id } });
    }
    return { request: outcome.request, replayed: true };
  }

  private newRequest(params: SubmitParams): NewRequest {
    if (!this.accepting) throw new ErrandError('shutting_down');
    const operation = this.operations.get(params.operation);
    if (!operation) throw new ErrandError('operation_not_found', `No operation named "${params.operation}" is declared in the config.`);
    const refusal = params.webhookUrl == null ? null : this.targets.refusalForUrl(params.webhookUrl);
    if (refusal !== null) throw new ErrandError('validation_error', `webhook_url: ${refusal}`, { field: 'webhook_url' });
    const now = this.clock.now();
    return {
      id: newRequestId(now),
      tenant: params.tenant,
      operation: operation.name,
      input: params.input,
      mode: params.mode,
      max_attempts: operation.retry.maxAttempts,
      run_at: Math.max(now, params.runAt ?? now),
      task_timeout_ms: operation.taskTimeoutMs,
      // The workflow timeout counts from the earliest start, so a delayed request gets its full time.
      deadline: Math.max(now, params.runAt ?? now) + operation.workflowTimeoutMs,
      webhook_url: params.webhookUrl ?? null,
      idempotency_key: null,
      priority: params.priority ?? 0,
      estimated_ms: params.estimatedMs ?? null,
      metadata: params.metadata ?? null,
      retry_of: params.retryOf ?? null,
      batch_id: params.batchId ?? null,
      created_at: now,
    };
  }

  /**
   * Submits many inputs to one operation as a batch: each item is an ordinary
   * async request (`batch_id` set), all committed in one transaction, and never
   * more than `concurrency` of them run at once.
   */
  async submitBatch(params: SubmitBatchParams): Promise<{ batch: Batch; requests: Request[] }> {
    const refusal = params.webhookUrl == null ? null : this.targets.refusalForUrl(params.webhookUrl);
    if (refusal !== null) throw new ErrandError('validation_error', `webhook_url: ${refusal}`, { field: 'webhook_url' });
    const now = this.clock.now();
    const batch: Batch = {
      id: newBatchId(now),
      tenant: params.tenant,
      operation: params.operation,
      concurrency: params.concurrency,
      total: params.items.length,
      webhook_url: params.webhookUrl ?? null,
      metadata: params.metadata ?? null,
      created_at: now,
    };
    const requests = params.items.map((input) =>
      this.newRequest({
        tenant: params.tenant,
        operation: params.operation,
        input,
        mode: 'async',
        priority: params.priority,
        batchId: batch.id,
      }),
    );
    const { transitions } = await this.store.batchInsert({ batch, requests });
    for (const transition of transitions) publishTransition(this.events, transition);
    this.dispatcher.wake();
    return { batch, requests: transitions.map((t) => t.request) };
  }

  /**
   * Re-runs a failed or cancelled request as a new request (`retry_of` = its id):
   * terminal requests never change. Idempotent: retrying the same request again
   * returns the re-run created the first time (`created: false`).
   */
  async retryRequest(params: { id: string; tenant?: string | null | undefined }): Promise<{ request: Request; created: boolean }> {
    const original = await this.store.requestGetById({ id: params.id, tenant: params.tenant });
    if (!original) throw new ErrandError('request_not_found', `No request with id "${params.id}".`);
    if (original.status !== 'failed' && original.status !== 'cancelled') {
      throw new ErrandError(
        'request_not_retryable',
        `Request ${original.id} is ${original.status}; only a failed or cancelled request can be retried.`,
        {
          details: { request_id: original.id, status: original.status },
        },
      );
    }
    const existing = await this.store.requestGetByRetryOf({ id: original.id });
    if (existing) return { request: existing, created: false };
    try {
      const request = await this.submit({
        tenant: original.tenant,
        operation: original.operation,
        input: original.input,
        mode: 'async',
        webhookUrl: original.webhook_url,
        metadata: original.metadata,
        priority: original.priority,
        retryOf: original.id,
        estimatedMs: (await this.estimate(original.operation, original.input))?.highMs ?? null,
      });
      return { request, created: true };
    } catch (err) {
      // A concurrent retry of the same request won the unique retry_of link: return its re-run.
      const winner = await this.store.requestGetByRetryOf({ id: original.id });
      if (winner) return { request: winner, created: false };
      throw err;
    }
  }

  /** A request's webhook deliveries with their attempts (`request_not_found` when absent or another tenant's). */
  async deliveries(params: { id: string; tenant?: string | null | undefined }): Promise<DeliveryWithAttempts[]> {
    const request = await this.store.requestGetSummary({ id: params.id, tenant: params.tenant });
    if (!request) throw new ErrandError('request_not_found', `No request with id "${params.id}".`);
    return this.store.deliveryListForRequest({ requestId: request.id });
  }

  /**
   * Sends a delivery again as a new attempt series, now: same `webhook-id`, same
   * payload. `delivery_in_progress` while an attempt is under way.
   */
  async redeliver(params: { id: string; deliveryId: string; tenant?: string | null | undefined }): Promise<Delivery> {
    const request = await this.store.requestGetSummary({ id: params.id, tenant: params.tenant });
    if (!request) throw new ErrandError('request_not_found', `No request with id "${params.id}".`);
    const outcome = await this.store.deliveryRedeliver({ id: params.deliveryId, requestId: request.id, now: this.clock.now() });
    if (outcome.outcome === 'not_found') {
      throw new ErrandError('delivery_not_found', `Request ${request.id} has no delivery "${params.deliveryId.slice(0, 80)}".`);
    }
    if (outcome.outcome === 'in_progress') {
      throw new ErrandError('delivery_in_progress', undefined, { details: { delivery_id: params.deliveryId }, retryAfterSeconds: 1 });
    }
    this.webhooks.wake();
    return outcome.delivery;
  }

  /** Cancels a pending or processing request; a running handler's signal aborts. */
  async cancel(params: { id: string; tenant?: string | null | undefined }): Promise<CancelOutcome> {
    const outcome = await this.store.requestCancel({ id: params.id, tenant: params.tenant, now: this.clock.now() });
    if (outcome.outcome === 'cancelled') {
      publishTransition(this.events, outcome.transition);
      if (outcome.wasProcessing) this.dispatcher.abortRequest(params.id, 'cancelled');
    }
    return outcome;
  }

  /**
   * Resolves with the request once it is terminal, or with its latest state
   * when `timeoutMs` passes first or the engine stops (null if it does not exist).
   */
  waitForTerminal(id: string, timeoutMs: number): Promise<Request | null> {
    return this.waitFor({
      id,
      waitMs: timeoutMs,
      read: () => this.store.requestGetById({ id }),
      ready: (request) => request === null || isTerminal(request.status),
      // A terminal live entry carries the request as committed: no read needed. A terminal entry the follow
      // caught up from the store (after a gap) carries only a summary: read the request. Others change nothing here.
      decide: ({ live, request }) => (request === null || !isTerminal(request.status) ? 'ignore' : live ? { value: request } : 'read'),
    });
  }

  /** Stops claiming, lets running handlers finish within `graceMs`, then stops every service. Idempotent. */
  async stop(graceMs = 0): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'stopping';
    const { liveness, rescuer, retention, dispatcher, webhooks, fetcher } = this.services;
    // No new sweep starts; one in progress is awaited below, alongside the drain.
    const sweeps = Promise.all([rescuer.stop(), retention.stop()]);
    await dispatcher.stop(graceMs);
    // The run times of the last completions (kept in memory, see estimator.ts).
    await this.estimator.stop();
    // After the drain, so outcomes of the last handlers are still sent; what is in flight is released for the next start.
    await webhooks.stop();
    await sweeps;
    // Last: other nodes would take back what is still running here once the session is gone.
    await liveness.stop();
    await fetcher.close();
    this.stopping.abort();
    this.state = 'stopped';
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * Aborts the handler of `id` if it runs on this node (another node cancelled
   * the request); true when one was running.
   */
  abortLocal(id: string, cause: 'cancelled' | 'lease_lost'): boolean {
    return this.dispatcher.abortRequest(id, cause);
  }

  /** Wakes the webhook deliverer (a delivery fell due, possibly written by another node). */
  wakeWebhooks(): void {
    this.webhooks.wake();
  }

  /** Wakes the dispatcher (e.g. after a clock jump in tests). */
  wake(): void {
    this.dispatcher.wake();
  }

  // Following and reading requests: the HTTP layer reaches the store only through these.

  /**
   * Subscribes to `id`'s entries now (buffering until `start()`): create it
   * before reading anything about the request, then start it (see follow.ts).
   */
  follow(id: string, signal?: AbortSignal): Follow {
    return new Follow({ store: this.store, events: this.events }, id, signal);
  }

  /**
   * Holds until `read` gives a state `ready` accepts, or `waitMs` passes, the
   * signal aborts or the engine stops (see `waitFor` in follow.ts): long-polls and sync waits.
   */
  waitFor<T>(params: Omit<WaitForParams<T>, 'follow' | 'clock' | 'expire'> & { id: string }): Promise<T> {
    const follow = this.follow(params.id);
    return waitFor({ ...params, follow, clock: this.clock, expire: this.stopping.signal });
  }

  /** The request without its input, or null. */
  getRequestSummary(params: RequestGetByIdParams): Promise<RequestSummary | null> {
    return this.store.requestGetSummary(params);
  }

  /** The request's changing state only (a cheap read for conditional status reads), or null. */
  getRequestState(params: RequestGetByIdParams): Promise<RequestState | null> {
    return this.store.requestGetState(params);
  }

  /** Requests, newest first, filtered (one page). */
  listRequests(params: RequestListParams): Promise<RequestSummary[]> {
    return this.store.requestList(params);
  }

  /** A request's event-log entries after a seq (one page); followers use `follow()`. */
  listEvents(params: EventListAfterParams): Promise<RequestEvent[]> {
    return this.store.eventListAfter(params);
  }

  /** A batch with its items, or null. */
  getBatch(params: BatchGetByIdParams): Promise<{ batch: Batch; items: RequestSummary[] } | null> {
    return this.store.batchGetById(params);
  }

  /** What retention kept of a purged request, or null. */
  getTombstone(params: TombstoneGetParams): Promise<Tombstone | null> {
    return this.store.tombstoneGet(params);
  }

  /** Requests per status. */
  countRequests(params?: RequestCountsParams): Promise<RequestCounts> {
    return this.store.requestCounts(params);
  }

  /** Per-operation aggregates over a window (`GET /v1/stats`). */
  requestStats(params: RequestStatsParams): Promise<RequestStats> {
    return this.store.requestStatsByOperation(params);
  }

  /** Takes from a shared token bucket (submission limits). */
  rateLimitTake(params: RateLimitTakeParams): Promise<RateLimitTake> {
    return this.store.rateLimitTake(params);
  }
}
