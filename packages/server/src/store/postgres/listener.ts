/**
 * One dedicated PostgreSQL connection that LISTENs on the cluster's channels
 * (or, with no channels and an `onSession` step, holds the node's liveness
 * lock: nodes.ts).
 *
 * NOTIFY is fire-and-forget: a notification sent while this connection is down
 * is gone. So the listener reconnects by itself with exponential backoff and,
 * each time it is (re)connected, tells its owner through `onConnected`: after a
 * reconnect the owner must assume it missed something and resync from the
 * event log. A connection can also die silently (a partition leaves the socket
 * open): a periodic `SELECT 1` with a deadline detects that and reconnects.
 *
 * A pooled connection cannot be used: LISTEN is per session, and the pool hands
 * sessions out to whoever asks. Raw channels and payloads: notifications.ts
 * reads them.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import type { NotificationTimers } from '../notifications.js';

export interface NotifyListenerOptions {
  /** `postgres://…` (without Errand's `schema` parameter). */
  url: string;
  /** Server options sent at connect (connectionSettings().options). */
  options?: string | undefined;
  channels: readonly string[];
  /**
   * Runs on each new session after the LISTENs, before it counts as connected (nodes.ts takes the node's lock
   * here); a throw counts as a lost connection, retried with the backoff.
   */
  onSession?: ((client: pg.Client) => Promise<void>) | undefined;
  /** What the connection is called in logs (default "notification connection"). */
  what?: string | undefined;
  /** Shown in `pg_stat_activity.application_name` (the node id). */
  applicationName: string;
  timers: NotificationTimers;
  log: Logger;
  /** First reconnect delay, doubled per failed attempt up to `maxBackoffMs`. */
  initialBackoffMs?: number | undefined;
  maxBackoffMs?: number | undefined;
  /** How often the connection is checked with `SELECT 1` (also its deadline, unless `pingDeadlineMs` is set). */
  pingMs?: number | undefined;
  /** How long connecting may take before it is tried again (default `pingMs`). */
  connectTimeoutMs?: number | undefined;
  /** How long a `SELECT 1` may take before the connection is dropped as dead (default `pingMs`). */
  pingDeadlineMs?: number | undefined;
  random?: (() => number) | undefined;
  onNotification: (channel: string, payload: string) => void;
  /** Called after every successful LISTEN; `reconnected` is false only for the first connection. */
  onConnected: (info: { reconnected: boolean }) => void;
  /** Called once per lost connection (or failed first attempt). */
  onDisconnected?: ((err: unknown) => void) | undefined;
}

/** Channel names are fixed identifiers: refuse anything that would need quoting. */
const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

export class NotifyListener {
  private client: pg.Client | null = null;
  private timer: object | undefined;
  private pingTimer: object | undefined;
  private failures = 0;
  private everConnected = false;
  private stopped = false;
  private up = false;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly pingMs: number;
  private readonly pingDeadlineMs: number;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly what: string;

  constructor(private readonly options: NotifyListenerOptions) {
    for (const channel of options.channels) if (!CHANNEL.test(channel)) throw new Error(`not a channel name: ${channel}`);
    this.initialBackoffMs = options.initialBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.pingMs = options.pingMs ?? 5000;
    this.pingDeadlineMs = options.pingDeadlineMs ?? this.pingMs;
    this.random = options.random ?? Math.random;
    this.log = options.log.child({ component: 'notify-listener' });
    this.what = options.what ?? 'notification connection';
  }

  /** True while LISTENing. */
  get connected(): boolean {
    return this.up;
  }

  /** Connects (resolves after the first attempt, whether it worked or not; later attempts run in the background). */
  async start(): Promise<void> {
    if (this.stopped || this.client) return;
    await this.connect();
  }

  /** Closes the connection and stops reconnecting. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.up = false;
    if (this.timer) this.options.timers.clearTimeout(this.timer);
    if (this.pingTimer) this.options.timers.clearTimeout(this.pingTimer);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.url,
      options: this.options.options,
      application_name: this.options.applicationName,
      keepAlive: true,
      connectionTimeoutMillis: this.options.connectTimeoutMs ?? this.pingMs,
    });
    this.client = client;
    let lost = false;
    const onLost = (err: unknown) => {
      if (lost) return;
      lost = true;
      this.lose(client, err);
    };
    client.on('error', onLost);
    client.on('end', () => onLost(new Error(`the ${this.what} closed`)));
    client.on('notification', (msg) => {
      if (this.client === client) this.options.onNotification(msg.channel, msg.payload ?? '');
    });
    try {
      await client.connect();
      for (const channel of this.options.channels) await client.query(`LISTEN ${channel}`);
      await this.options.onSession?.(client);
    } catch (err) {
      onLost(err);
      return;
    }
    if (lost || this.stopped || this.client !== client) return;
    this.up = true;
    this.failures = 0;
    const reconnected = this.everConnected;
    this.everConnected = true;
    if (reconnected) this.log.info(`${this.what} restored${this.options.channels.length > 0 ? '; resyncing from the event log' : ''}`);
    this.schedulePing(client);
    this.options.onConnected({ reconnected });
  }

  private lose(client: pg.Client, err: unknown): void {
    if (this.client !== client) return;
    const wasUp = this.up;
    this.up = false;
    this.client = null;
    if (this.pingTimer) this.options.timers.clearTimeout(this.pingTimer);
    // The socket may be half-open; end() without waiting, errors are expected here.
    client.end().catch(() => {});
    if (this.stopped) return;
    this.failures += 1;
    const delay = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** Math.min(this.failures - 1, 20));
    const jittered = Math.round(delay * (0.5 + this.random() / 2));
    if (wasUp || this.failures === 1) this.log.warn({ err, retry_in_ms: jittered }, `${this.what} lost; reconnecting`);
    else this.log.debug({ err, retry_in_ms: jittered, failures: this.failures }, `${this.what} still down`);
    this.options.onDisconnected?.(err);
    this.timer = this.options.timers.setTimeout(() => void this.connect(), jittered);
  }

  private schedulePing(client: pg.Client): void {
    this.pingTimer = this.options.timers.setTimeout(() => {
      if (this.client !== client || this.stopped) return;
      let answered = false;
      const deadline = this.options.timers.setTimeout(() => {
        if (!answered) this.lose(client, new Error(`the ${this.what} did not answer within ${this.pingDeadlineMs} ms`));
      }, this.pingDeadlineMs);
      client.query('SELECT 1').then(
        () => {
          answered = true;
          this.options.timers.clearTimeout(deadline);
          if (this.client === client) this.schedulePing(client);
        },
        (err: unknown) => {
          answered = true;
          this.options.timers.clearTimeout(deadline);
          this.lose(client, err);
        },
      );
    }, this.pingMs);
  }
}
