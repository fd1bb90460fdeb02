/**
 * One HTTP attempt of a delivery, with undici. The outcome is a value, never
 * a throw: 2xx is delivered; `410 Gone` ends the delivery; a 3xx is a failure
 * (redirects are never followed — the target was checked, its redirect was
 * not); any other status, a timeout or a network error is retried; a refused
 * target (the SSRF guard) ends the delivery. The response body is read to at
 * most `maxResponseBytes` and then the connection is dropped, so a receiver
 * that streams forever costs one bounded read; the whole attempt is bounded by
 * the caller's signal (the delivery timeout), so a receiver that hangs, trickles
 * or resets holds one slot for at most that long and never stalls the others.
 */
import { request, type Dispatcher } from 'undici';
import type { DeliveryError } from '../model/index.js';
import { FORBIDDEN_TARGET_CODE, ForbiddenTargetError } from '../net/index.js';

/** Bytes of the response body kept in the attempt log. */
const RESPONSE_EXCERPT_BYTES = 1024;

export interface SendParams {
  dispatcher: Dispatcher;
  url: string;
  headers: Record<string, string>;
  body: string;
  /** Aborts the attempt (timeout or shutdown). */
  signal: AbortSignal;
  maxResponseBytes: number;
  /** Real-time backstop for headers and body (the signal normally ends the attempt first). */
  backstopMs: number;
}

export interface SendOutcome {
  statusCode: number | null;
  responseExcerpt: string | null;
  /** null when delivered. */
  error: DeliveryError | null;
  /** The delivery must not be retried (410 Gone, forbidden target). */
  final: boolean;
  /** For the operator's log only, never stored: which address a refused name resolved to. */
  logDetail?: string;
}

export async function sendWebhook(p: SendParams): Promise<SendOutcome> {
  let response: Dispatcher.ResponseData;
  try {
    response = await request(p.url, {
      dispatcher: p.dispatcher,
      method: 'POST',
      headers: p.headers,
      body: p.body,
      signal: p.signal,
      headersTimeout: p.backstopMs,
      bodyTimeout: p.backstopMs,
    });
  } catch (err) {
    return failureOf(err, p.signal);
  }
  const { statusCode } = response;
  const responseExcerpt = await readCapped(response.body, p.maxResponseBytes);
  const outcome = (error: DeliveryError | null, final = false): SendOutcome => ({ statusCode, responseExcerpt, error, final });
  if (statusCode >= 200 && statusCode < 300) return outcome(null);
  if (statusCode === 410) return outcome({ type: 'gone', message: 'The receiver answered 410 Gone: no more retries' }, true);
  if (statusCode >= 300 && statusCode < 400) {
    const location = response.headers.location;
    const to = typeof location === 'string' ? ` to ${location.slice(0, 200)}` : '';
    return outcome({ type: 'redirect', message: `The receiver answered ${statusCode}${to}; redirects are not followed` });
  }
  return outcome({ type: 'http_status', message: `The receiver answered ${statusCode}` });
}

/** Reads at most `max` bytes, then destroys the stream (dropping the connection); returns the first KiB as text. */
async function readCapped(body: Dispatcher.ResponseData['body'], max: number): Promise<string | null> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (keptBytes < RESPONSE_EXCERPT_BYTES) {
        const part = chunk.subarray(0, RESPONSE_EXCERPT_BYTES - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
      if (total > max) break;
    }
  } catch {
    // A reset or timeout while reading the body: the status already decided the outcome.
  } finally {
    if (!body.destroyed) body.destroy();
  }
  if (keptBytes === 0) return null;
  return Buffer.concat(kept).toString('utf8');
}

function failureOf(err: unknown, signal: AbortSignal): SendOutcome {
  const none = { statusCode: null, responseExcerpt: null };
  const forbidden = findCause(err, (e) => e.code === FORBIDDEN_TARGET_CODE);
  if (forbidden) {
    // The tenant reads the delivery log: the stored message names no address; the log line does.
    const logDetail = forbidden instanceof ForbiddenTargetError ? forbidden.detail : forbidden.message;
    return { ...none, error: { type: 'forbidden_target', message: forbidden.message }, final: true, logDetail };
  }
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    const message = reason instanceof Error ? reason.message : 'The attempt was aborted';
    return { ...none, error: { type: 'timeout', message }, final: false };
  }
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? `${e.code}: ` : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const timedOut = e?.code === 'UND_ERR_HEADERS_TIMEOUT' || e?.code === 'UND_ERR_CONNECT_TIMEOUT' || e?.code === 'UND_ERR_BODY_TIMEOUT';
  return { ...none, error: { type: timedOut ? 'timeout' : 'network', message: `${code}${message}`.slice(0, 500) }, final: false };
}

function findCause(err: unknown, match: (e: { code?: unknown; message: string }) => boolean): { message: string } | null {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (match(current as Error & { code?: unknown })) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}
