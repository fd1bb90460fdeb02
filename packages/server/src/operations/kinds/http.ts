/**
 * The `http` kind: forwards a request's input to an upstream URL, so a slow
 * synchronous API becomes an async Errand operation without touching it.
 *
 * - POST/PUT/PATCH send the input as the JSON body; GET/DELETE send none and
 *   put the input's top-level string, number and boolean fields in the query
 *   (parameters already in the configured URL are the operator's: input never replaces them).
 * - The call goes through ctx.fetch with the configured origin trusted:
 *   redirects are followed only to targets the SSRF guard allows.
 * - A 2xx JSON answer is the result as is; a text answer is the result as a
 *   string; an empty answer is `null`. Any other content type fails (results are JSON).
 * - Failures follow upstream.ts (5xx/429/timeouts/network retryable, 4xx not).
 * - The handler's signal (cancel, timeout, shutdown) aborts the call.
 */
import type { HttpKindConfig } from '../../config/index.js';
import { RequestFailure } from '../../model/index.js';
import type { OperationContext, OperationDefinition } from '../define.js';
import { displayUrl, fetchUpstream, logUpstreamFailure, readBounded, statusFailure, transportFailure, upstreamCall } from './upstream.js';

const BODYLESS = new Set(['GET', 'DELETE']);

export function httpOperation(spec: HttpKindConfig): OperationDefinition {
  const shownUrl = displayUrl(spec.url);
  // Tenants read failure messages: they never name the operator's URL (the log has it).
  const what = 'The upstream';
  return {
    description: `${spec.method} ${shownUrl}`,
    async run(input: unknown, ctx: OperationContext) {
      const bodyless = BODYLESS.has(spec.method);
      const headers: Record<string, string> = {
        accept: 'application/json, text/plain;q=0.9, */*;q=0.1',
        'x-errand-request-id': ctx.request_id,
        'x-errand-attempt': String(ctx.attempt),
      };
      if (!bodyless) headers['content-type'] = 'application/json';
      for (const [name, value] of Object.entries(spec.headers)) headers[name.toLowerCase()] = value;
      const url = bodyless ? withQuery(spec.url, input) : spec.url;

      const call = upstreamCall(ctx.signal, spec.timeout);
      try {
        const response = await fetchUpstream(
          ctx,
          url,
          { method: spec.method, headers, body: bodyless ? undefined : JSON.stringify(input ?? null) },
          call,
          spec.max_response,
        );
        const body = await readBounded(response, spec.max_response, what);
        if (!response.ok) throw statusFailure(response, body.toString('utf8'), what);
        return parseAnswer(response.headers.get('content-type'), body, what);
      } catch (error) {
        const failure = transportFailure(error, call, ctx.signal, what, spec.timeout);
        logUpstreamFailure(ctx, url, error, failure);
        throw failure;
      } finally {
        call.done();
      }
    },
  };
}

/** The configured URL plus the input's scalar fields as query parameters; the operator's own parameters are never replaced. */
function withQuery(base: string, input: unknown): string {
  const url = new URL(base);
  const fixed = new Set(url.searchParams.keys());
  if (typeof input === 'object' && input !== null && !Array.isArray(input)) {
    for (const [key, value] of Object.entries(input)) {
      if (fixed.has(key)) continue;
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') url.searchParams.set(key, String(value));
    }
  }
  return url.href;
}

function parseAnswer(contentType: string | null, body: Buffer, what: string): unknown {
  if (body.length === 0) return null;
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const text = body.toString('utf8');
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      throw RequestFailure.nonRetryable(`${what} answered ${type} that is not valid JSON: ${(cause as Error).message}`, {
        type: 'upstream_invalid_response',
        details: { content_type: type, body: text.slice(0, 1000) },
      });
    }
  }
  if (type === '' || type.startsWith('text/') || type === 'application/xml' || type === 'application/javascript') return text;
  throw RequestFailure.nonRetryable(`${what} answered ${type}, which is neither JSON nor text; a result must be JSON`, {
    type: 'upstream_invalid_response',
    details: { content_type: type, bytes: body.length },
  });
}
