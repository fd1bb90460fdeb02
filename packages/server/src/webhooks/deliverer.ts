/**
 * The webhook deliverer: sends what the outbox holds.
 *
 * A terminal transition writes its delivery in the same transaction (see
 * store/), so nothing here has to be remembered across a crash. The deliverer
 * claims due deliveries under a lease (`webhooks.lease`) and sends each on its
 * own (send.ts), at most `webhooks.concurrency` at once: a slow or hanging
 * receiver holds one send slot for at most `async.webhook_timeout`.
 *
 * **Pipelined.** A delivery passes three stages: *ready* (claimed, waiting for
 * a send slot), *sending* (at most `concurrency`), and *recording* (its outcome
 * being committed; at most 2 × `concurrency`, then sending waits). A send slot is given back as soon
 * as the receiver has answered, so the next ready delivery goes out while the
 * outcome commits (group commit batches those), and claims are made in
 * batches: the loop claims again only once the ready queue is down to half,
 * and then fills it up (ready + sending + recording ≤ 3 × concurrency leases
 * held). A ready delivery whose lease would run out before its send could end
 * is handed back instead of sent. It
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

/** Time left on a ready delivery's lease, beyond its send, to commit the outcome. */
const RECORD_MARGIN_MS = 2000;
/** How long a delivery may wait in the ready queue when the lease is barely longer than the send. */
const LEASE_SLACK_MS = 500;

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

export class WebhookDeliverer implements Service {
  readonly events = new DeliveryEvents();
  private readonly agent: Agent;
  /** Claimed, waiting for a send slot (oldest first). */
  private readonly ready: Delivery[] = [];
  /** Being sent: the abort controller of each. */
  private readonly sending = new Map<string, AbortController>();
  /** Outcomes being recorded. */
  private recording = 0;
  /** Every attempt not yet recorded (sending or recording), awaited by stop(). */
  private readonly attempts = new Set<Promise<void>>();
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
      free: () => this.free(),
      claim: (limit) => o.store.deliveryClaim({ owner: o.owner, now: o.clock.now(), leaseMs: o.leaseMs, limit }),
      run: (delivery) => {
        this.ready.push(delivery);
        this.pump();
      },
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
    return this.sending.size;
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
    // Claimed but not started: handed back (they go out after a restart).
    await Promise.allSettled(this.ready.splice(0).map((d) => this.release(d)));
    for (const controller of this.sending.values()) controller.abort(SHUTDOWN);
    await Promise.allSettled([...this.attempts]);
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

  /** Room for more claims: none while more than half of `concurrency` is ready, else up to 3 × concurrency held. */
  private free(): number {
    const { concurrency } = this.o;
    if (this.ready.length > Math.floor(concurrency / 2)) return 0;
    return Math.max(0, 3 * concurrency - (this.ready.length + this.sending.size + this.recording));
  }

  /** Starts ready deliveries while send slots (and recording room) are free; asks for more once the queue is low. */
  private pump(): void {
    const { concurrency, clock } = this.o;
    const needMs = this.leaseNeededMs();
    while (this.state === 'running' && this.sending.size < concurrency && this.recording < 2 * concurrency) {
      const next = this.ready.shift();
      if (next === undefined) break;
      // Its lease must outlast the send and the recording of its outcome; else hand it back for a fresh claim.
      if (next.lease_expires_at !== null && next.lease_expires_at - clock.now() < needMs) {
        // Tracked with the attempts: stop() waits for it (the pool must not close under it).
        const handedBack: Promise<void> = this.release(next).finally(() => this.attempts.delete(handedBack));
        this.attempts.add(handedBack);
        continue;
      }
      this.launch(next);
    }
    if (this.ready.length <= Math.floor(concurrency / 2)) this.wake();
  }

  /**
   * The lease a ready delivery must still hold to be sent: the send (the timeout plus its 1 s backstop) and
   * RECORD_MARGIN_MS to commit the outcome; never more than a fresh claim holds less LEASE_SLACK_MS (with a lease
   * barely longer than the timeout, config's minimum, a delivery is sent only right after its claim).
   */
  private leaseNeededMs(): number {
    return Math.min(this.o.leaseMs - LEASE_SLACK_MS, this.o.timeoutMs + 1000 + RECORD_MARGIN_MS);
  }

  private async release(d: Delivery): Promise<void> {
    try {
      await this.o.store.deliveryRelease({ id: d.id, owner: this.o.owner, attempt: d.attempt, now: this.o.clock.now() });
    } catch (err) {
      // Its lease expires and the rescuer takes it back.
      this.o.log.warn({ err, delivery_id: d.id }, 'could not hand back a webhook delivery');
    }
  }

  private launch(delivery: Delivery): void {
    const controller = new AbortController();
    this.sending.set(delivery.id, controller);
    let sent = false;
    const freeSlot = () => {
      if (sent) return;
      sent = true;
      this.sending.delete(delivery.id);
      this.recording += 1;
      this.pump();
    };
    const done: Promise<void> = this.attempt(delivery, controller, freeSlot)
      .catch((err: unknown) => this.o.log.error({ err, delivery_id: delivery.id }, 'webhook attempt could not be recorded'))
      .finally(() => {
        freeSlot();
        this.recording -= 1;
        this.attempts.delete(done);
        this.pump();
      });
    this.attempts.add(done);
  }

  /** Sends `d` once, calls `sent()` once the receiver has answered (or the send failed), then records the outcome. */
  private async attempt(d: Delivery, controller: AbortController, sent: () => void): Promise<void> {
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
    sent();
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
