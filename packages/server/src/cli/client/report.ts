/**
 * How the client commands print a request: accepted (`--async`), finished
 * (the result, or the error with its exit status), or as it stands.
 */
import { isTerminal, type RequestHandle, type StatusResource } from '@errand/client';
import { CommandExit, EXIT } from './exitCodes.js';
import { formatError, formatFields, formatStatus, formatValue } from './format.js';
import type { Output } from './output.js';

/** A request just accepted and left running: its id, and how to follow it. */
export function reportAccepted(out: Output, handle: RequestHandle): void {
  // The 202 body (id, status, estimate, location); a sync answer that came back unfinished otherwise.
  const answer = handle.accepted ?? handle.initial;
  if (out.json) {
    out.document(answer ?? { request_id: handle.id, status: 'pending' });
    return;
  }
  out.line(
    formatFields([
      ['request', handle.id],
      ['status', answer?.status ?? 'pending'],
      ['follow', `errand watch ${handle.id}`],
    ]),
  );
}

/**
 * A request that has ended. Completed: the result on stdout (a string as it
 * is, else indented JSON; `--json`: the status resource), exit 0. Failed or
 * cancelled: the status resource with `--json`, the error on stderr, exit 1 or 3.
 */
export function reportFinished(out: Output, status: StatusResource): void {
  if (out.json) out.document(status);
  else if (status.status === 'completed') out.line(formatValue(status.result));
  if (status.status === 'completed') return;
  const error = status.error ? `: ${formatError(status.error)}` : '';
  if (status.status === 'cancelled') throw new CommandExit(EXIT.cancelled, `request ${status.request_id} was cancelled${error}`);
  throw new CommandExit(EXIT.failed, `request ${status.request_id} failed${error}`);
}

/** The status resource as it stands (`errand status`). */
export function reportStatus(out: Output, status: StatusResource): void {
  if (out.json) out.document(status);
  else out.line(formatStatus(status));
}

/** Waits for `handle` unless its submission already answered the end, then reports it. */
export async function finish(
  out: Output,
  handle: RequestHandle,
  options: { timeoutMs?: number | undefined; signal: AbortSignal },
): Promise<void> {
  const initial = handle.initial;
  const final =
    initial && isTerminal(initial.status)
      ? initial
      : await handle.wait({ signal: options.signal, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
  reportFinished(out, final);
}
