/**
 * `PostgresStore.listen`: the reading side of the NOTIFY contract whose
 * writing side is the triggers in migrations/0001_init.ts (keep both in step).
 * The triggers send, on commit only:
 *
 * - channel `errand_events`, payload `{"r": request id, "s": seq, "t": event
 *   type, "st": the request's status after the event, "o": operation, "n": the
 *   writing node's application_name (its node id), "sc": the schema it was written in}`;
 * - channel `errand_deliveries` when a webhook delivery falls due, payload
 *   `{"d": delivery id, "at": due time, "n": writer, "sc": schema}`.
 *
 * Channels are per database: clusters in other schemas of the same database
 * are heard too, and told apart by `sc`; this module drops theirs, so
 * listeners receive typed notifications of their own schema only.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import { EVENT_TYPES, REQUEST_STATUSES } from '../../model/index.js';
import type {
  DeliveryNotification,
  EventNotification,
  ListenOptions,
  NotificationSource,
  NotificationStats,
  NotificationSubscription,
} from '../notifications.js';
import { connectionSettings, type ConnectionSettings } from './connection.js';
import { NotifyListener } from './listener.js';

export const EVENTS_CHANNEL = 'errand_events';
export const DELIVERIES_CHANNEL = 'errand_deliveries';

/** A payload read, with the schema it names (null when it does not say). */
interface Parsed<T> {
  note: T;
  schema: string | null;
}

const payloadSchema = z.object({
  r: z.string().min(1),
  s: z.number().int().min(1),
  t: z.enum(EVENT_TYPES),
  st: z.enum(REQUEST_STATUSES),
  o: z.string(),
  n: z.string().nullable().optional(),
  sc: z.string().nullable().optional(),
});

const deliverySchema = z.object({ n: z.string().nullable().optional(), sc: z.string().nullable().optional() });

/** Parses an `errand_events` payload; null when it is not one (logged by the caller, never thrown). */
function parseEventNotification(payload: string): Parsed<EventNotification> | null {
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    return null;
  }
  const parsed = payloadSchema.safeParse(json);
  if (!parsed.success) return null;
  const p = parsed.data;
  return {
    note: { kind: 'event', requestId: p.r, seq: p.s, type: p.t, status: p.st, operation: p.o, node: p.n ?? '' },
    schema: p.sc ?? null,
  };
}

/** Parses an `errand_deliveries` payload; one it cannot read wakes the deliverer anyway (a spare claim is harmless). */
function parseDeliveryNotification(payload: string): Parsed<DeliveryNotification> {
  try {
    const parsed = deliverySchema.safeParse(JSON.parse(payload));
    if (parsed.success) return { note: { kind: 'delivery', node: parsed.data.n ?? '' }, schema: parsed.data.sc ?? null };
  } catch {
    // not JSON
  }
  return { note: { kind: 'delivery', node: '' }, schema: null };
}

export interface ListenTarget {
  settings: ConnectionSettings;
  /** The LISTEN connection's application_name (shown in `pg_stat_activity`). */
  applicationName: string;
  /** Reconnect backoff (NotifyListener's defaults when unset). */
  initialBackoffMs?: number | undefined;
  maxBackoffMs?: number | undefined;
}

/** LISTENs on both channels with one dedicated connection (reconnecting by itself) and delivers this schema's notifications, typed. */
export async function listenForNotifications(target: ListenTarget, options: ListenOptions): Promise<NotificationSubscription> {
  const log = options.log.child({ component: 'notify-listener' });
  const schema = await listenSchema(target.settings, log);
  const stats: NotificationStats = { received: 0, invalid: 0, foreign: 0 };
  const foreign = (named: string | null): boolean => {
    if (named === null || schema === null || named === schema) return false;
    stats.foreign += 1;
    return true;
  };
  const listener = new NotifyListener({
    url: target.settings.connectionString,
    options: target.settings.options,
    channels: [EVENTS_CHANNEL, DELIVERIES_CHANNEL],
    applicationName: target.applicationName,
    timers: options.timers,
    log: options.log,
    initialBackoffMs: target.initialBackoffMs,
    maxBackoffMs: target.maxBackoffMs,
    onNotification: (channel, payload) => {
      stats.received += 1;
      if (channel === DELIVERIES_CHANNEL) {
        const delivery = parseDeliveryNotification(payload);
        if (!foreign(delivery.schema)) options.onNotification(delivery.note);
        return;
      }
      if (channel !== EVENTS_CHANNEL) return;
      const event = parseEventNotification(payload);
      if (!event) {
        stats.invalid += 1;
        log.warn({ channel, payload: payload.slice(0, 200) }, 'ignored a notification that is not an event');
        return;
      }
      if (!foreign(event.schema)) options.onNotification(event.note);
    },
    onConnected: options.onConnected,
    onDisconnected: options.onDisconnected,
  });
  await listener.start();
  return {
    get connected() {
      return listener.connected;
    },
    get stats() {
      return { ...stats };
    },
    stop: () => listener.stop(),
  };
}

/**
 * Notifications of the database a `postgres://…` URL names, without a store
 * (a node whose own store does not notify, tests): the URL's `schema` is the
 * one listened for.
 */
export function postgresNotifications(url: string, target: Omit<ListenTarget, 'settings'>): NotificationSource {
  const settings = connectionSettings(url);
  return { listen: (options) => listenForNotifications({ ...target, settings }, options) };
}

/**
 * The schema whose notifications are delivered: the configured one, else the
 * connection's `current_schema()` (normally `public`); null (deliver every
 * notification) when it cannot be asked.
 */
async function listenSchema(settings: ConnectionSettings, log: Logger): Promise<string | null> {
  if (settings.schema !== undefined) return settings.schema;
  const client = new pg.Client({ connectionString: settings.connectionString, options: settings.options, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ schema: string | null }>('SELECT current_schema() AS schema');
    return rows[0]?.schema ?? null;
  } catch (err) {
    log.warn({ err }, 'could not read the current schema; notifications of other schemas in this database will be delivered too');
    return null;
  } finally {
    await client.end().catch(() => {});
  }
}
