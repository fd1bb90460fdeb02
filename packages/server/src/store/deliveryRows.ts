/**
 * Delivery and attempt rows as both backends store them (errors as JSON text),
 * and their mapping to the model: one place, so SQLite and PostgreSQL hand the
 * engine identical objects.
 */
import type { Delivery, DeliveryAttempt, DeliveryError } from '../model/index.js';

/** A `deliveries` row. */
export interface DeliveryRow extends Omit<Delivery, 'last_error'> {
  last_error: string | null;
}

/** A `delivery_attempts` row. */
export interface AttemptRow extends Omit<DeliveryAttempt, 'error'> {
  delivery_id: string;
  seq: number;
  error: string | null;
}

export function deliveryFromRow(row: DeliveryRow): Delivery {
  return { ...row, last_error: row.last_error === null ? null : (JSON.parse(row.last_error) as DeliveryError) };
}

export function attemptFromRow(row: AttemptRow): DeliveryAttempt {
  return {
    series: row.series,
    attempt: row.attempt,
    started_at: row.started_at,
    duration_ms: row.duration_ms,
    status_code: row.status_code,
    error: row.error === null ? null : (JSON.parse(row.error) as DeliveryError),
    response_excerpt: row.response_excerpt,
  };
}
