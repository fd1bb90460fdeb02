/**
 * The webhook deliverer: sends what the outbox holds.
 *
 * A terminal transition writes its delivery in the same transaction (see
 * store/), so nothing here has to be remembered across a crash. The deliverer
 * claims due deliveries under a lease (`webhooks.lease`), at most
 * `webhooks.concurrency` at once, and sends each on its own (send.ts): a slow
 * or hanging receiver holds one slot for at most `async.webhook_timeout`. It
 * wakes when a request with a webhook ends (the engine calls `wake()`), when
 * the next delivery falls due (a timer on the injected clock), and at least
 * every `pollMs` (the shared claim loop, services/claimLoop.ts). A failed attempt is retried after `backoff[n-1]` (the last
 * entry repeats) until `async.webhook_retries` retries are spent.
 *
 * Crash and shutdown: leases of a dead node expire and are taken back by
 * `deliveryRescueExpired` (at start-up, on an exclusive-access store, every
 * lease not ours at once); `stop()` aborts sends in flight and releases them
 * (the attempt does not count), so they go out after the restart. Delivery is
 * at least once: receivers de-duplicate on `webhook-id`.
 */
import type { Logger } from 'pino';
import { Agent } from 'undici';
import type { Clock } from '../clock/index.js';
import type { Delivery } from '../model/index.js';
import { systemResolver, type Resolver, type TargetPolicy } from '../net/index.js';
import { ClaimLoop, logFailures, type Service } from '../services/index.js';
import type { Store } from '../store/index.js';
import { DeliveryEvents } from './events.js';
import { sendWebhook } from './send.js';
import type { SecretBook } from './signing.js';

export interface DelivererOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  /** This node's name in `lease_owner`. */
  owner: string;
  /** Retries after the first attempt (`async.webhook_retries`). */
  retries: number;
  /** Per-attempt timeout (`async.webhook_timeout`), ms. */
  timeoutMs: number;
  /** Wait before retry n is `backoffMs[n-1]`, the last entry repeating. */
  backoffMs: readonly number[];
  concurrency: number;
  maxResponseBytes: number;
  leaseMs: number;
  /** Longest sleep without a wake-up, ms. */
  pollMs: number;
  secrets: SecretBook;
  targets: TargetPolicy;
  /** Test seam: host name resolution (default: the system resolver). */
  resolve?: Resolver | undefined;
}

const SHUTDOWN = new Error('The server is shutting down');

interface InFlight {
  controller: AbortController;
  done: Promise<void>;
}

export class WebhookDeliverer implements Service {
  readonly events = new DeliveryEvents();
  private readonly agent: Agent;
  private readonly inFlight = new Map<string, InFlight>();
  private readonly loop: ClaimLoop<Delivery>;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(private readonly o: DelivererOptions) {
    this.agent = new Agent({
      connect: { lookup: o.targets.lookup(o.resolve ?? systemResolver) as never, timeout: o.timeoutMs },
      keepAliveTimeout: 4_000,
    });
    this.loop = new ClaimLoop<Delivery>({
      clock: o.clock,
      pollMs: o.pollMs,
      free: () => o.concurrency - this.inFlight.size,
      claim: (limit) => o.store.deliveryClaim({ owner: o.owner, now: o.clock.now(), leaseMs: o.leaseMs, limit }),
      run: (delivery) => this.launch(delivery),
      release: async (delivery) => {
        await o.store.deliveryRelease({ id: delivery.id, owner: o.owner, attempt: delivery.attempt, now: o.clock.now() });
      },
      // Until the next delivery is due or a lease expires (then rescued before the pass).
      nextDueAt: () => o.store.deliveryNextDueAt(),
      beforeTimedPass: () => this.rescue(false),
      onFailure: logFailures(o.log, {
        failed: 'webhook deliverer could not claim; will try again',
        stillFailing: 'webhook deliverer still cannot claim; backing off',
        repeats: 'doubling',
      }),
      onRecovered: (failures) => o.log.info({ failures }, 'webhook deliverer reaches the store again'),
    });
  }

  /** Deliveries being sent by this node now. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Takes back deliveries a previous process left half-sent, then starts sending. */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    await this.rescue(this.o.store.capabilities.exclusiveAccess);
    if (this.state === 'running') this.loop.start();
  }

  /** Looks for due deliveries now. */
  wake(): void {
    this.loop.wake();
  }

  /** Stops claiming, aborts sends in flight and releases them (they go out after a restart). Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    await this.loop.stop();
    for (const { controller } of this.inFlight.values()) controller.abort(SHUTDOWN);
    await Promise.allSettled([...this.inFlight.values()].map((f) => f.done));
    await this.agent.destroy().catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private async rescue(allOthers: boolean): Promise<void> {
    const now = this.o.clock.now();
    try {
      for (let round = 0; round < 100; round++) {
        const n = await this.o.store.deliveryRescueExpired({ now, limit: 500, allExcept: allOthers ? this.o.owner : undefined });
        if (n > 0) this.o.log.warn({ deliveries: n }, 'took back webhook deliveries from a node that stopped');
        if (n < 500) break;
      }
    } catch (err) {
      this.o.log.error({ err }, 'webhook delivery rescue failed');
    }
  }

  private launch(delivery: Delivery): void {
    const controller = new AbortController();
    const done = this.attempt(delivery, controller)
      .catch((err: unknown) => this.o.log.error({ err, delivery_id: delivery.id }, 'webhook attempt could not be recorded'))
      .finally(() => {
        this.inFlight.delete(delivery.id);
        this.wake();
      });
    this.inFlight.set(delivery.id, { controller, done });
  }

  private async attempt(d: Delivery, controller: AbortController): Promise<void> {
    const { clock, store, log } = this.o;
    const startedAt = clock.now();
    const ref = { id: d.id, owner: this.o.owner, attempt: d.attempt };
    const timeout = clock.setTimeout(
      () => controller.abort(new Error(`No answer within ${this.o.timeoutMs} ms (async.webhook_timeout)`)),
      this.o.timeoutMs,
    );
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'Errand-Webhooks/1',
      'webhook-id': d.id,
      'webhook-timestamp': String(Math.floor(startedAt / 1000)),
    };
    const signature = this.o.secrets.sign(d.tenant, d.id, new Date(startedAt), d.payload);
    if (signature !== null) headers['webhook-signature'] = signature;
    const literal = this.o.targets.refusalForUrl(d.url);
    const outcome = literal
      ? { statusCode: null, responseExcerpt: null, error: { type: 'forbidden_target', message: literal }, final: true }
      : await sendWebhook({
          dispatcher: this.agent,
          url: d.url,
          headers,
          body: d.payload,
          signal: controller.signal,
          maxResponseBytes: this.o.maxResponseBytes,
          backstopMs: this.o.timeoutMs + 1000,
        });
    clock.clearTimeout(timeout);
    const now = clock.now();
    if (controller.signal.reason === SHUTDOWN && outcome.error !== null) {
      await store.deliveryRelease({ ...ref, now });
      return;
    }
    const recorded = { startedAt, durationMs: now - startedAt, statusCode: outcome.statusCode, responseExcerpt: outcome.responseExcerpt };
    const context = { delivery_id: d.id, request_id: d.request_id, attempt: d.attempt, status_code: outcome.statusCode };
    if (outcome.error === null) {
      const delivered = await store.deliveryComplete({ ...ref, now, ...recorded });
      if (!delivered) return log.warn(context, 'webhook delivered, but this node had lost its lease on the delivery');
      log.info(context, 'webhook delivered');
      this.events.emit('delivery:delivered', { delivery: delivered });
      return;
    }
    const retryAt = outcome.final || d.attempt > this.o.retries ? null : now + this.backoffMs(d.attempt);
    const failed = await store.deliveryFail({ ...ref, now, ...recorded, error: outcome.error, retryAt });
    if (!failed) return log.warn(context, 'webhook attempt failed, and this node had lost its lease on the delivery');
    const refusal = 'logDetail' in outcome && outcome.logDetail !== undefined ? { refusal: outcome.logDetail } : {};
    log.warn(
      { ...context, error: outcome.error, ...refusal, next_attempt_at: retryAt },
      retryAt === null ? 'webhook delivery failed' : 'webhook attempt failed; will retry',
    );
    this.events.emit(retryAt === null ? 'delivery:failed' : 'delivery:retrying', { delivery: failed });
  }

  /** Wait before retry number `attempt` (1 = the first retry). */
  private backoffMs(attempt: number): number {
    const list = this.o.backoffMs;
    return list[Math.min(attempt, list.length) - 1] ?? 0;
  }
}
