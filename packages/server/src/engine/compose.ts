/**
 * Builds the engine's background services from the config: the guarded
 * fetcher, the dispatcher (claims and runs), the lease rescuer (crash
 * recovery), the estimator, the webhook deliverer and the retention cleaner,
 * wired to each other and to the engine's events. The Engine gets them
 * ready-made and only starts and stops them.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock/index.js';
import type { ErrandConfig } from '../config/index.js';
import { ErrandError, type Request } from '../model/index.js';
import { GuardedFetcher, TargetPolicy, withHosts, type Resolver } from '../net/index.js';
import type { Operation } from '../operations/index.js';
import type { Store } from '../store/index.js';
import { SecretBook, WebhookDeliverer } from '../webhooks/index.js';
import { Dispatcher } from './dispatcher.js';
import { Estimator } from './estimator.js';
import type { EngineEvents } from './events.js';
import { NodeLiveness } from './liveness.js';
import { LeaseRescuer } from './rescuer.js';
import { RetentionCleaner } from './retention.js';

export interface ComposeOptions {
  config: ErrandConfig;
  store: Store;
  operations: ReadonlyMap<string, Operation>;
  log: Logger;
  clock: Clock;
  events: EngineEvents;
  /** This node's name in `lease_owner`. */
  nodeId: string;
  /** Randomness for retry jitter. */
  random: () => number;
  /** How webhook targets' and fetched URLs' host names resolve. */
  resolve: Resolver;
}

/** The engine's services. Started in the order liveness, rescuer, webhooks, retention, dispatcher; see Engine.start/stop. */
export interface EngineServices {
  /** The session that tells other nodes this one is alive (stores with `nodeRegister`). */
  liveness: NodeLiveness;
  /** Operations' outbound HTTP (`ctx.fetch`), under the SSRF guard with `fetch.allow`. */
  fetcher: GuardedFetcher;
  dispatcher: Dispatcher;
  rescuer: LeaseRescuer;
  /** Learned duration estimates (shared through the store). */
  estimator: Estimator;
  /** Which webhook targets may be reached (SSRF guard). */
  targets: TargetPolicy;
  /** Sends webhook deliveries from the outbox; its `events` report each outcome. */
  webhooks: WebhookDeliverer;
  retention: RetentionCleaner;
}

export function composeServices(options: ComposeOptions): EngineServices {
  const { config, store, log, clock, events, nodeId, operations, random } = options;
  const retry = config.workflow.retry;
  const defaultPolicy = {
    maxAttempts: retry.max_attempts,
    initialDelayMs: retry.initial_delay,
    maxDelayMs: retry.max_delay,
    backoffFactor: retry.backoff_factor,
    jitter: retry.jitter,
  };
  const fetcher = new GuardedFetcher({
    allow: config.fetch.allow,
    maxRedirects: config.fetch.max_redirects,
    timeoutMs: config.fetch.timeout,
    maxResponseBytes: config.fetch.max_response_bytes,
    resolve: options.resolve,
  });
  const liveness = new NodeLiveness({
    store,
    clock,
    log,
    owner: nodeId,
    enabled: config.engine.dead_node_timeout > 0,
    onRegistered: () => dispatcher.wake(),
  });
  const dispatcher = new Dispatcher({
    fetcher,
    store,
    clock,
    events,
    log,
    owner: nodeId,
    leaseMs: config.engine.lease_duration,
    heartbeatMs: config.engine.heartbeat_interval,
    random,
    operations,
    concurrency: config.engine.concurrency,
    pollMs: config.engine.poll_interval,
    mayClaim: () => liveness.registered,
  });
  const leaseSweepMs = Math.max(config.engine.heartbeat_interval, 1000);
  const deadNodeAfterMs = liveness.tracked ? config.engine.dead_node_timeout : undefined;
  const rescuer = new LeaseRescuer({
    store,
    clock,
    events,
    log,
    owner: nodeId,
    intervalMs: deadNodeAfterMs === undefined ? leaseSweepMs : Math.min(leaseSweepMs, deadNodeSweepMs(deadNodeAfterMs)),
    deadNodeAfterMs,
    retry: { byOperation: operations, fallback: defaultPolicy, random },
    onRescued: () => dispatcher.wake(),
  });
  const estimator = new Estimator({
    store,
    clock,
    log,
    operations,
    engineConcurrency: config.engine.concurrency,
    minSamples: config.estimator.min_samples,
    decay: config.estimator.decay,
  });
  events.on('request:completed', ({ request }) => estimator.record(request));
  const targets = new TargetPolicy(config.webhooks.allow);
  const defaultHook = config.async.webhook_url;
  const refusal = defaultHook === null ? null : targets.refusalForUrl(defaultHook);
  if (refusal !== null) throw new ErrandError('validation_error', `async.webhook_url: ${refusal}`, { field: 'async.webhook_url' });
  const secrets = new SecretBook(config.webhooks.secret, config.webhooks.secrets);
  if (secrets.empty) log.warn('webhooks.secret is not set: webhook deliveries are sent unsigned');
  const webhooks = new WebhookDeliverer({
    store,
    clock,
    log,
    owner: nodeId,
    retries: config.async.webhook_retries,
    timeoutMs: config.async.webhook_timeout,
    backoffMs: config.webhooks.backoff,
    concurrency: config.webhooks.concurrency,
    maxResponseBytes: config.webhooks.max_response_bytes,
    leaseMs: config.webhooks.lease,
    pollMs: config.engine.poll_interval,
    secrets,
    targets,
    resolve: withHosts(config.webhooks.hosts, options.resolve),
  });
  const wakeWebhooks = ({ request }: { request: Request }) => {
    // A request's own webhook, or its batch's (written when the last item ends).
    if (request.webhook_url !== null || request.batch_id !== null) webhooks.wake();
  };
  for (const name of ['request:completed', 'request:failed', 'request:cancelled'] as const) events.on(name, wakeWebhooks);
  const retention = new RetentionCleaner({
    store,
    clock,
    log,
    ttlMs: config.retention.ttl,
    tombstoneTtlMs: config.retention.tombstone_ttl,
    intervalMs: config.retention.sweep_interval,
  });
  return { liveness, fetcher, dispatcher, rescuer, estimator, targets, webhooks, retention };
}

/**
 * How often the rescuer looks for dead nodes: a quarter of the timeout, between 0.1 and 1 s. A node is then seen
 * gone at most this long after its session ended and rescued at most this long after the timeout: with the 2 s
 * default, 2 to 3 s after it died. One sweep is one short transaction.
 */
function deadNodeSweepMs(timeoutMs: number): number {
  return Math.min(1000, Math.max(100, Math.round(timeoutMs / 4)));
}
