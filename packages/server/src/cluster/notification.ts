/**
 * The NOTIFY contract with the PostgreSQL store (its AFTER INSERT trigger on
 * the event log sends one per committed event, on commit):
 *
 * - channel `errand_events`, payload `{"r": request id, "s": seq, "t": event
 *   type, "st": the request's status after the event, "o": operation, "n": the
 *   writing node's application_name (its node id), "sc": the schema it was written in}`;
 * - channel `errand_deliveries` when a webhook delivery falls due, payload
 *   `{"d": delivery id, "at": due time, "n": writer, "sc": schema}`.
 *
 * Channels are per database: clusters in other schemas of the same database
 * are heard too, and told apart by `sc`.
 */
import { z } from 'zod';
import { EVENT_TYPES, REQUEST_STATUSES, type EventType, type RequestStatus } from '../model/index.js';

export const EVENTS_CHANNEL = 'errand_events';
export const DELIVERIES_CHANNEL = 'errand_deliveries';

export interface EventNotification {
  requestId: string;
  seq: number;
  type: EventType;
  status: RequestStatus;
  operation: string;
  /** The node that committed the event ('' when unknown). */
  node: string;
  /** The schema it was committed in (null when the payload does not say). */
  schema: string | null;
}

/** The writer and schema of an `errand_deliveries` payload (empty when unreadable). */
export interface DeliveryNotification {
  node: string;
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
export function parseEventNotification(payload: string): EventNotification | null {
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    return null;
  }
  const parsed = payloadSchema.safeParse(json);
  if (!parsed.success) return null;
  const p = parsed.data;
  return { requestId: p.r, seq: p.s, type: p.t, status: p.st, operation: p.o, node: p.n ?? '', schema: p.sc ?? null };
}

/** Parses an `errand_deliveries` payload; a payload it cannot read wakes the deliverer anyway (a spare claim is harmless). */
export function parseDeliveryNotification(payload: string): DeliveryNotification {
  try {
    const parsed = deliverySchema.safeParse(JSON.parse(payload));
    if (parsed.success) return { node: parsed.data.n ?? '', schema: parsed.data.sc ?? null };
  } catch {
    // not JSON
  }
  return { node: '', schema: null };
}
