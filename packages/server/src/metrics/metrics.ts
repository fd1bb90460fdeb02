/**
 * Prometheus metrics (prom-client) for one node: what its engine accepted, ran
 * and finished, how long requests waited and ran, how deep the queue is, how
 * webhooks fared, how many SSE streams are open and how good the estimator's
 * guesses were. docs/observability.md lists every metric with its meaning.
 *
 * Counters and histograms follow this node's engine events (events another
 * node committed are not counted here: summing over nodes gives the cluster).
 * Queue depth and running counts are read from the store at scrape time, so on
 * a shared PostgreSQL database they are the cluster's figures.
 *
 * Durations come from the timestamps the engine committed (its clock), never
 * from a timer here. Label values are capped per label (labels.ts).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ErrandConfig } from '../config/index.js';
import type { Engine } from '../engine/index.js';
import type { Request } from '../model/index.js';
import { storeCommits } from '../store/index.js';
import { LabelCap } from './labels.js';

export interface MetricsOptions {
  config: Pick<ErrandConfig, 'observability'>;
  engine: Engine;
  /** Open SSE streams in this process now. */
  sseSubscribers: () => number;
  version: string;
  /** Store kind for `errand_info` (`sqlite`, `postgres`). */
  storeKind: string;
}

export interface Metrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** The exposition text. */
  render(): Promise<string>;
  /** Stops following the engine. */
  close(): void;
}

/** Seconds buckets from 5 ms to 1 h: requests here run from milliseconds to many minutes. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
/** actual ÷ estimated: 1 is a perfect guess, below 1 an over-estimate. */
const RATIO_BUCKETS = [0.1, 0.25, 0.5, 0.75, 0.9, 1, 1.1, 1.5, 2, 4, 10];

export function createMetrics(options: MetricsOptions): Metrics {
  const { engine } = options;
  const { track_async_tasks: trackAsync, metrics: settings } = options.config.observability;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'errand_' });
  const operations = new LabelCap(settings.max_label_values);
  const tenants = new LabelCap(settings.max_label_values);
  const op = (request: Request) => operations.value(request.operation);
  const tenant = (request: Request) => tenants.value(request.tenant);
  const registers = [registry];
  const unsubscribe: (() => void)[] = [];

  new Gauge({
    name: 'errand_info',
    help: 'Always 1; labels say which build and store this node runs.',
    labelNames: ['version', 'store'],
    registers,
  }).set({ version: options.version, store: options.storeKind }, 1);
  registry.registerMetric(storeCommits);
  new Gauge({
    name: 'errand_sse_subscribers',
    help: 'Server-Sent Events streams open on this node.',
    registers,
    collect() {
      this.set(options.sseSubscribers());
    },
  });

  // The queue gauges read the store at scrape time; a store that is down leaves their last values and says so here.
  const counts = queueCounts(engine);
  let storeUp = 1;
  const readCounts = async () => {
    try {
      const value = await counts();
      storeUp = 1;
      return value;
    } catch {
      storeUp = 0;
      return undefined;
    }
  };
  new Gauge({
    name: 'errand_store_up',
    help: '1 when the last scrape could read the store, 0 when it could not (the database is unreachable).',
    registers,
    async collect() {
      await readCounts();
      this.set(storeUp);
    },
  });

  const deliveries = new Counter({
    name: 'errand_webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome: delivered (2xx), retrying (failed, will retry), failed (gave up).',
    labelNames: ['outcome'],
    registers,
  });
  const deliveryLatency = new Histogram({
    name: 'errand_webhook_delivery_seconds',
    help: 'From the request ending (the delivery being written) to the receiver answering 2xx.',
    buckets: DURATION_BUCKETS,
    registers,
  });
  const webhookEvents = engine.webhooks.events;
  unsubscribe.push(
    webhookEvents.on('delivery:delivered', ({ delivery }) => {
      deliveries.inc({ outcome: 'delivered' });
      if (delivery.finished_at !== null) deliveryLatency.observe(seconds(delivery.finished_at - delivery.created_at));
    }),
    webhookEvents.on('delivery:retrying', () => deliveries.inc({ outcome: 'retrying' })),
    webhookEvents.on('delivery:failed', () => deliveries.inc({ outcome: 'failed' })),
  );

  if (trackAsync) followRequests();

  function followRequests(): void {
    const accepted = new Counter({
      name: 'errand_requests_accepted_total',
      help: 'Requests accepted (committed) by this node.',
      labelNames: ['operation', 'tenant'],
      registers,
    });
    const finished = new Counter({
      name: 'errand_requests_finished_total',
      help: 'Requests that reached a terminal state on this node, by status (completed, failed, cancelled).',
      labelNames: ['operation', 'tenant', 'status'],
      registers,
    });
    const retried = new Counter({
      name: 'errand_requests_retried_total',
      help: 'Retries: kind="automatic" when a failed attempt is scheduled again, kind="manual" for POST /v1/requests/{id}/retry.',
      labelNames: ['operation', 'tenant', 'kind'],
      registers,
    });
    const leasesExpired = new Counter({
      name: 'errand_leases_expired_total',
      help: 'Running requests rescued from a node that stopped renewing its lease (crashed or cut off).',
      labelNames: ['operation'],
      registers,
    });
    const queueWait = new Histogram({
      name: 'errand_request_queue_wait_seconds',
      help: 'From an attempt falling due (run_at) to a worker claiming it.',
      labelNames: ['operation'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    const runTime = new Histogram({
      name: 'errand_request_run_seconds',
      help: 'Run time of one attempt on this node, by how it ended (completed, failed, retrying, cancelled, released).',
      labelNames: ['operation', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    const duration = new Histogram({
      name: 'errand_request_duration_seconds',
      help: 'End to end, from acceptance to the terminal state, by status: what the caller waited.',
      labelNames: ['operation', 'status'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    const estimate = new Histogram({
      name: 'errand_estimate_ratio',
      help: 'Completed requests: actual end-to-end duration divided by the estimate given at submission (1 = exact).',
      labelNames: ['operation'],
      buckets: RATIO_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'errand_queue_depth',
      help: 'Pending requests (waiting to run, including delayed and retry-scheduled ones), per operation.',
      labelNames: ['operation'],
      registers,
      async collect() {
        for (const [name, c] of (await readCounts()) ?? []) this.set({ operation: operations.value(name) }, c.pending);
      },
    });
    new Gauge({
      name: 'errand_requests_running',
      help: 'Requests being processed now, per operation.',
      labelNames: ['operation'],
      registers,
      async collect() {
        for (const [name, c] of (await readCounts()) ?? []) this.set({ operation: operations.value(name) }, c.processing);
      },
    });

    // When this node's current attempt of each running request started (its claim).
    const attemptStarted = new Map<string, number>();
    const endAttempt = (request: Request, at: number, outcome: string) => {
      const started = attemptStarted.get(request.id);
      if (started === undefined) return;
      attemptStarted.delete(request.id);
      runTime.observe({ operation: op(request), outcome }, seconds(at - started));
    };
    const finish = (request: Request, at: number) => {
      finished.inc({ operation: op(request), tenant: tenant(request), status: request.status });
      endAttempt(request, at, request.status);
      const total = (request.completed_at ?? at) - request.created_at;
      duration.observe({ operation: op(request), status: request.status }, seconds(total));
      if (request.status === 'completed' && request.estimated_ms !== null && request.estimated_ms > 0) {
        estimate.observe({ operation: op(request) }, Math.max(0, total) / request.estimated_ms);
      }
    };
    const events = engine.events;
    unsubscribe.push(
      events.on('request:created', ({ request }) => {
        accepted.inc({ operation: op(request), tenant: tenant(request) });
        if (request.retry_of !== null) retried.inc({ operation: op(request), tenant: tenant(request), kind: 'manual' });
      }),
      events.on('request:claimed', ({ request, event }) => {
        attemptStarted.set(request.id, event.created_at);
        queueWait.observe({ operation: op(request) }, seconds(event.created_at - request.run_at));
      }),
      events.on('request:retrying', ({ request, event }) => {
        retried.inc({ operation: op(request), tenant: tenant(request), kind: 'automatic' });
        endAttempt(request, event.created_at, 'retrying');
      }),
      events.on('request:released', ({ request, event }) => endAttempt(request, event.created_at, 'released')),
      events.on('lease:expired', ({ request }) => leasesExpired.inc({ operation: op(request) })),
      events.on('request:completed', ({ request, event }) => finish(request, event.created_at)),
      events.on('request:failed', ({ request, event }) => finish(request, event.created_at)),
      events.on('request:cancelled', ({ request, event }) => finish(request, event.created_at)),
    );
  }

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    close() {
      for (const off of unsubscribe.splice(0)) off();
    },
  };
}

/**
 * Pending/processing per declared operation. prom-client starts every metric's
 * collect() in the same tick, so the three gauges that need the counts share
 * the one read in flight; the next scrape reads afresh.
 */
function queueCounts(engine: Engine): () => Promise<Map<string, { pending: number; processing: number }>> {
  let inFlight: Promise<Map<string, { pending: number; processing: number }>> | undefined;
  return () => {
    if (inFlight) return inFlight;
    const read = (async () => {
      const result = new Map<string, { pending: number; processing: number }>();
      for (const name of engine.operations.keys()) result.set(name, await engine.countRequests({ operation: name }));
      return result;
    })();
    inFlight = read;
    const clear = () => {
      if (inFlight === read) inFlight = undefined;
    };
    read.then(clear, clear);
    return read;
  };
}

function seconds(ms: number): number {
  return Math.max(0, ms) / 1000;
}
