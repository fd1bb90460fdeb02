/**
 * Human text for the client commands: the status resource as aligned
 * `key  value` lines, lists as aligned columns, one line per live event.
 * (`--json` bypasses all of this: scripts get the server's documents.)
 */
import type { StatusResource } from '@errand/client';

/** A result or input for people: strings as they are, anything else as indented JSON. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(value, null, 2) ?? 'null';
}

/** `label  value` lines with the values aligned; multi-line values are indented under their first line. */
export function formatFields(fields: [string, string][]): string {
  const width = Math.max(0, ...fields.map(([label]) => label.length));
  return fields.map(([label, value]) => `${label.padEnd(width)}  ${value.split('\n').join(`\n${' '.repeat(width + 2)}`)}`).join('\n');
}

/** Rows as columns padded to their widest cell (the last column is not padded). */
function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, col) => Math.max(...all.map((row) => (row[col] ?? '').length)));
  return all
    .map((row) =>
      row
        .map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** "2/4 analyse" from the progress fields, or "" when there is no step. */
export function formatStep(s: Pick<StatusResource, 'current_step' | 'completed_steps' | 'total_steps'>): string {
  const count = s.total_steps !== null && s.total_steps !== undefined ? `${s.completed_steps ?? 0}/${s.total_steps}` : '';
  return [count, s.current_step ?? ''].filter(Boolean).join(' ');
}

/** Percent, step and message of a request in one line ("50%  2/4 analyse  Halfway there"). */
function formatProgress(s: StatusResource): string {
  const percent = s.progress === null ? '–' : `${Math.round(s.progress)}%`;
  return [percent, formatStep(s), s.message ?? ''].filter(Boolean).join('  ');
}

/** The whole status resource for `errand status`. */
export function formatStatus(s: StatusResource): string {
  const fields: [string, string][] = [
    ['request', s.request_id],
    ['operation', s.operation],
    ['status', s.status],
    ['progress', formatProgress(s)],
    ['attempt', `${s.attempt} of ${s.max_attempts}`],
    ['created', s.created_at],
  ];
  if (s.started_at) fields.push(['started', s.started_at]);
  if (s.completed_at) fields.push(['finished', `${s.completed_at}${s.duration_ms === null ? '' : ` (${formatDuration(s.duration_ms)})`}`]);
  if (s.next_attempt_at) fields.push(['next attempt', s.next_attempt_at]);
  if (s.retry_of) fields.push(['retry of', s.retry_of]);
  if (s.status === 'completed') fields.push(['result', formatValue(s.result)]);
  if (s.error) fields.push(['error', formatError(s.error)]);
  else if (s.last_error) fields.push(['last error', formatError(s.last_error)]);
  return formatFields(fields);
}

export function formatError(e: { type: string; message: string }): string {
  return `${e.type}: ${e.message}`;
}

function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** The `list` table. */
export function formatList(rows: StatusResource[]): string {
  return formatTable(
    ['REQUEST', 'STATUS', 'OPERATION', 'PROGRESS', 'CREATED'],
    rows.map((s) => [s.request_id, s.status, s.operation, s.progress === null ? '–' : `${Math.round(s.progress)}%`, s.created_at]),
  );
}

/** What `tail` reads of a `GET /v1/events` message (docs/api.md#get-v1events). */
export interface TailLine {
  request_id: string;
  operation: string;
  tenant: string;
  seq: number;
  type: string;
  data: unknown;
  status: string;
  created_at: string;
}

/** One `tail` line: time, request, operation, status, and what happened. */
export function formatTailLine(e: TailLine): string {
  const time = e.created_at.slice(11, 19);
  return [time, e.request_id, e.operation, e.status.padEnd(10), e.type.padEnd(8), summarise(e)].join('  ').trimEnd();
}

function summarise(e: TailLine): string {
  const data = (e.data ?? {}) as Record<string, unknown>;
  if (e.type === 'progress') {
    const percent = typeof data.percent === 'number' ? `${Math.round(data.percent)}%` : '';
    const step = typeof data.current_step === 'string' ? data.current_step : '';
    const message = typeof data.message === 'string' ? data.message : '';
    return [percent, step, message].filter(Boolean).join('  ');
  }
  if (e.type === 'status') {
    const error = data.error as { type?: string; message?: string } | undefined;
    return error?.type ? `${formatError({ type: error.type, message: error.message ?? '' })}` : '';
  }
  const text = typeof e.data === 'string' ? e.data : JSON.stringify(e.data);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
