/**
 * Request, event and batch rows as both backends store them (same columns,
 * JSON as TEXT, epoch ms as numbers), and their mapping to the model: one
 * place, so SQLite and PostgreSQL hand the engine identical objects. Delivery
 * rows are in deliveryRows.ts.
 */
import type { Batch, Request, RequestEvent } from '../model/index.js';
import type { NewRequest, RequestState, RequestSummary } from './store.js';

/** A `requests` row: the model's fields, those holding JSON as text, and the event counter. */
export interface RequestRow extends Omit<Request, 'input' | 'progress' | 'result' | 'error' | 'metadata'> {
  input: string;
  progress: string | null;
  result: string | null;
  error: string | null;
  metadata: string | null;
  /** The `seq` of the request's newest event. */
  last_seq: number;
}

/** A row of the summary reads: no `input`; `result_omitted` set where a result was left out for its size. */
export interface SummaryRow extends Omit<RequestRow, 'input'> {
  result_omitted?: number | boolean | null;
}

/**
 * The columns of a summary read, `input` left out and `result` only up to a
 * size: `octet_length` reads a value's length from its header (SQLite) or
 * TOAST pointer (PostgreSQL), never the value. `max` is the SQL placeholder of
 * the limit in bytes (a huge number for "no limit").
 */
export function summaryColumns(max: string, table = ''): string {
  const t = table === '' ? '' : `${table}.`;
  const cols = SUMMARY_COLUMNS.map((c) => `${t}${c}`).join(', ');
  return `${cols}, CASE WHEN octet_length(${t}result) <= ${max} THEN ${t}result END AS result,
    COALESCE(octet_length(${t}result) > ${max}, FALSE) AS result_omitted`;
}

/** The columns a new request is inserted with (see `rowFromNewRequest`); the store fills the others. */
export const NEW_REQUEST_COLUMNS = [
  'id',
  'tenant',
  'operation',
  'input',
  'mode',
  'max_attempts',
  'run_at',
  'task_timeout_ms',
  'deadline',
  'webhook_url',
  'idempotency_key',
  'priority',
  'estimated_ms',
  'metadata',
  'retry_of',
  'batch_id',
  'created_at',
] as const;

/** Every column but `input` and `result` (which summaries read by size). */
const SUMMARY_COLUMNS = [
  ...NEW_REQUEST_COLUMNS.filter((c) => c !== 'input'),
  'status',
  'progress',
  'error',
  'attempt',
  'lease_owner',
  'lease_expires_at',
  'started_at',
  'completed_at',
  'updated_at',
  'last_seq',
];

/** The columns of a state read (`requestGetState`): small ones only. */
export const STATE_COLUMNS = [
  'id',
  'tenant',
  'status',
  'attempt',
  'run_at',
  'created_at',
  'estimated_ms',
  'started_at',
  'completed_at',
  'progress',
  'error',
] as const;

/** A row of a state read. */
export type StateRow = Pick<RequestRow, (typeof STATE_COLUMNS)[number]>;

/** "No limit" for `summaryColumns` (a bound parameter must be a number). */
export const RESULT_NO_LIMIT = Number.MAX_SAFE_INTEGER;

export interface EventRow {
  request_id: string;
  seq: number;
  type: RequestEvent['type'];
  data: string;
  created_at: number;
}

/** A `batches` row. */
export interface BatchRow extends Omit<Batch, 'metadata'> {
  metadata: string | null;
}

export function batchFromRow(row: BatchRow): Batch {
  return { ...row, metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as Batch['metadata']) };
}

const parseOrNull = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

export function requestFromRow(row: RequestRow): Request {
  return { ...summaryFromRow(row), input: JSON.parse(row.input) as unknown };
}

export function summaryFromRow(row: SummaryRow): RequestSummary {
  const summary: RequestSummary = {
    id: row.id,
    tenant: row.tenant,
    operation: row.operation,
    mode: row.mode,
    status: row.status,
    progress: parseOrNull(row.progress) as Request['progress'],
    result: parseOrNull(row.result),
    error: parseOrNull(row.error) as Request['error'],
    attempt: row.attempt,
    max_attempts: row.max_attempts,
    run_at: row.run_at,
    lease_owner: row.lease_owner,
    lease_expires_at: row.lease_expires_at,
    task_timeout_ms: row.task_timeout_ms,
    deadline: row.deadline,
    webhook_url: row.webhook_url,
    idempotency_key: row.idempotency_key,
    priority: row.priority,
    estimated_ms: row.estimated_ms,
    metadata: parseOrNull(row.metadata) as Request['metadata'],
    retry_of: row.retry_of,
    batch_id: row.batch_id,
    created_at: row.created_at,
    started_at: row.started_at,
    completed_at: row.completed_at,
    updated_at: row.updated_at,
  };
  if (row.result_omitted) summary.result_omitted = true;
  return summary;
}

export function stateFromRow(row: StateRow): RequestState {
  return {
    id: row.id,
    tenant: row.tenant,
    status: row.status,
    attempt: row.attempt,
    run_at: row.run_at,
    created_at: row.created_at,
    estimated_ms: row.estimated_ms,
    started_at: row.started_at,
    completed_at: row.completed_at,
    progress: parseOrNull(row.progress) as Request['progress'],
    error: parseOrNull(row.error) as Request['error'],
  };
}

export function eventFromRow(row: EventRow): RequestEvent {
  return { request_id: row.request_id, seq: row.seq, type: row.type, data: JSON.parse(row.data), created_at: row.created_at };
}

/**
 * The whole row REQUEST_INSERT writes for `params` (what `rowFromNewRequest` gave): pending, attempt 0, nothing
 * run yet, `updated_at` = `created_at`, `last_seq` 1 (its first status event). A store that inserts without
 * reading the row back maps this instead; a conformance test checks it against the stored row.
 */
export function insertedRow(params: NewRequestRow): RequestRow {
  return {
    ...params,
    status: 'pending',
    progress: null,
    result: null,
    error: null,
    attempt: 0,
    lease_owner: null,
    lease_expires_at: null,
    started_at: null,
    completed_at: null,
    updated_at: params.created_at,
    last_seq: 1,
  };
}

/** The columns of a new request, as inserted. */
export type NewRequestRow = Pick<RequestRow, (typeof NEW_REQUEST_COLUMNS)[number]>;

/** The named parameters of REQUEST_INSERT. Throws if the input or metadata cannot be encoded as JSON. */
export function rowFromNewRequest(r: NewRequest): NewRequestRow {
  return {
    id: r.id,
    tenant: r.tenant,
    operation: r.operation,
    input: JSON.stringify(r.input === undefined ? null : r.input),
    mode: r.mode,
    max_attempts: r.max_attempts,
    run_at: r.run_at,
    task_timeout_ms: r.task_timeout_ms,
    deadline: r.deadline,
    webhook_url: r.webhook_url,
    idempotency_key: r.idempotency_key,
    priority: r.priority,
    estimated_ms: r.estimated_ms,
    metadata: r.metadata === null ? null : JSON.stringify(r.metadata),
    retry_of: r.retry_of,
    batch_id: r.batch_id,
    created_at: r.created_at,
  };
}
