/**
 * What the `http` and `llm` kinds share about calling an upstream over HTTP:
 * the call goes through `ctx.fetch` (the SSRF-guarded fetch) with the
 * configured upstream's origin trusted — so a redirect anywhere else is
 * checked hop by hop like a tenant's URL —, one abort signal for the handler's
 * signal and the call's own timeout, a bounded body read, and the mapping of
 * upstream trouble onto failures. Their messages never name the upstream's URL
 * or host (tenants read them); {@link logUpstreamFailure} puts it in the log.
 *
 * - 5xx and 429 → `upstream_error`, retryable (honouring `Retry-After` seconds);
 * - other 4xx → `upstream_rejected`, not retried (the same call would be refused again);
 * - no answer in time → `upstream_timeout`, retryable;
 * - connection refused, reset, DNS… → `upstream_unreachable`, retryable;
 * - an answer too large → `upstream_response_too_large`, not retried.
 */
import { RequestFailure } from '../../model/index.js';
import { FetchFailure, type GuardedFetchInit } from '../../net/index.js';
import type { OperationContext } from '../define.js';

/** Characters of an upstream's error body kept in a failure's details. */
const ERROR_BODY_CHARS = 1000;
/** Cap on a Retry-After an upstream can impose (the request's deadline still applies). */
const RETRY_AFTER_MAX_MS = 3_600_000;

/** The signal an upstream call runs under: the handler's signal plus an optional timeout. */
export interface UpstreamCall {
  readonly signal: AbortSignal;
  /** True once the call's own timeout fired. */
  timedOut(): boolean;
  /** Clears the timer and listeners; call when the call is over. */
  done(): void;
}

export function upstreamCall(parent: AbortSignal, timeoutMs: number | undefined): UpstreamCall {
  const controller = new AbortController();
  let timedOut = false;
  const onAbort = () => controller.abort(parent.reason);
  if (parent.aborted) onAbort();
  else parent.addEventListener('abort', onAbort, { once: true });
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          controller.abort(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    done() {
      if (timer) clearTimeout(timer);
      parent.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Calls the operator's upstream through `ctx.fetch`: its origin is trusted (the
 * operator chose it), anything it redirects to is checked; no time limit of the
 * fetch's own (the kind's `timeout` is `call`'s); at most `maxResponseBytes` read.
 */
export function fetchUpstream(
  ctx: OperationContext,
  url: string,
  init: GuardedFetchInit,
  call: UpstreamCall,
  maxResponseBytes: number,
): Promise<Response> {
  return ctx.fetch(url, { ...init, signal: call.signal, trustedOrigins: [new URL(url).origin], timeoutMs: 0, maxResponseBytes });
}

/** Logs a failed upstream call with what tenants are not shown: the upstream's URL and the cause. */
export function logUpstreamFailure(ctx: OperationContext, url: string, error: unknown, failure: unknown): void {
  if (ctx.signal.aborted) return;
  const shown = failure instanceof Error ? { type: (failure as { type?: unknown }).type, message: failure.message } : failure;
  ctx.log.warn({ upstream: displayUrl(url), err: error, failure: shown }, 'upstream call failed');
}

/** A URL safe to show in logs: no credentials, no query (it may carry tokens). */
export function displayUrl(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/** Reads the whole body, failing once it passes `limitBytes`. */
export async function readBounded(response: Response, limitBytes: number, what: string): Promise<Buffer> {
  if (!response.body) return Buffer.alloc(0);
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limitBytes) {
    await response.body.cancel();
    throw tooLarge(what, limitBytes);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    total += chunk.byteLength;
    if (total > limitBytes) throw tooLarge(what, limitBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export function tooLarge(what: string, limitBytes: number): RequestFailure {
  return RequestFailure.nonRetryable(
    `${what} answered more than ${limitBytes} bytes; raise the operation's limit or make the answer smaller`,
    {
      type: 'upstream_response_too_large',
      details: { limit_bytes: limitBytes },
    },
  );
}

/** The failure for a non-2xx answer; `body` is the (bounded) text the upstream sent. */
export function statusFailure(response: Response, body: string, what: string): RequestFailure {
  const status = response.status;
  const details = { status, body: body.slice(0, ERROR_BODY_CHARS) };
  const summary = `${what} answered ${status}${response.statusText ? ` ${response.statusText}` : ''}`;
  if (status >= 500 || status === 429) {
    return RequestFailure.retryable(summary, {
      type: 'upstream_error',
      details,
      retryAfterMs: retryAfterMs(response.headers.get('retry-after')),
    });
  }
  return RequestFailure.nonRetryable(`${summary}; it refused the call, so it is not retried`, { type: 'upstream_rejected', details });
}

/**
 * Maps an error thrown by fetch or a body read. The handler's own abort is
 * passed through (the engine already knows why it stopped the attempt).
 */
export function transportFailure(
  error: unknown,
  call: UpstreamCall,
  parent: AbortSignal,
  what: string,
  timeoutMs: number | undefined,
): unknown {
  if (error instanceof RequestFailure) return error;
  if (parent.aborted) return parent.reason;
  if (error instanceof FetchFailure) {
    // The fetch's own size limit is the kind's; refused targets and redirects keep their fetch_* type.
    if (error.type === 'fetch_response_too_large') return tooLarge(what, Number(error.details?.limit_bytes));
    if (error.type !== 'fetch_unreachable') return error;
  }
  if (call.timedOut()) {
    return RequestFailure.retryable(`${what} did not answer within ${timeoutMs} ms`, {
      type: 'upstream_timeout',
      details: { timeout_ms: timeoutMs },
      cause: error,
    });
  }
  // Only the system error's code: its message names the host and port ("connect ECONNREFUSED 10.0.0.5:80").
  const details = error instanceof FetchFailure ? error.details : undefined;
  const code = typeof details?.code === 'string' ? details.code : undefined;
  return RequestFailure.retryable(`${what} could not be reached (${code ?? 'network error'})`, {
    type: 'upstream_unreachable',
    details: code === undefined ? {} : { code },
    cause: error,
  });
}

/** `Retry-After: <seconds>` in ms; an HTTP-date or garbage is ignored (the backoff applies). */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null || !/^\s*\d+\s*$/.test(header)) return undefined;
  return Math.min(Number(header) * 1000, RETRY_AFTER_MAX_MS);
}
