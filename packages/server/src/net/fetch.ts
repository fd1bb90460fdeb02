/**
 * The guarded fetch: the one way Errand's operations reach URLs that tenants
 * supply — `ctx.fetch` in a handler, the `http` and `llm` kinds, and the
 * exported {@link GuardedFetcher} for code outside a handler. It speaks the
 * WHATWG `fetch` interface (a `Response` comes back) with the webhook
 * deliverer's SSRF policy (targets.ts) and bounds on everything:
 *
 * - **Targets.** A URL must be http(s) and at most {@link FETCH_URL_MAX_LENGTH}
 *   characters; a literal forbidden address is refused before anything is
 *   sent; a host name is resolved in the connection's own lookup and refused
 *   if any of its addresses is forbidden, so the socket only ever connects to
 *   a checked address (no DNS-rebinding window). `fetch.allow` lists hosts or
 *   CIDRs that may be reached anyway. Origins the caller names in
 *   `trustedOrigins` (the operator's configured upstream) skip the check.
 * - **Redirects** are followed by hand, at most `maxRedirects` hops, each hop's
 *   target checked like the first (a trusted origin that redirects elsewhere
 *   is checked too). As in the fetch standard: 301/302 turn POST into GET and
 *   303 turns anything but GET/HEAD into GET, dropping the body; 307/308 keep
 *   both (a streamed body cannot be sent twice: refused). A hop to another
 *   origin carries only the {@link CROSS_ORIGIN_HEADERS} (so an operator's
 *   `X-Api-Key`, `api-key`, `Authorization` or cookie never follows a redirect
 *   off its upstream), and a 307/308 to another origin with a body is refused
 *   with `fetch_redirect_refused`: the body (a tenant's input, sent with the
 *   operator's credentials) goes only to the origin it was written for.
 * - **URL credentials** (`http://user:pw@host/`) are refused as
 *   `fetch_invalid_url`, and URLs are logged without them.
 * - **Time.** One timer covers connect, every hop and the whole body
 *   (`timeoutMs`, 0: none of its own); the caller's `signal` aborts too.
 * - **Size.** A declared `content-length` over `maxResponseBytes` fails at
 *   once; otherwise reading the body fails when it passes the limit.
 *
 * Failures are {@link FetchFailure}s: a stable `type`, `retryable`, and a
 * message that names neither the URL nor its address (tenants see it; the
 * details go to the log). The engine retries them like any failure with
 * `retryable` set. A non-2xx answer is not a failure: the caller reads `status`.
 */
import type { Logger } from 'pino';
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';
import { isIP } from 'node:net';
import {
  forbiddenReason,
  ForbiddenTargetError,
  FORBIDDEN_TARGET_CODE,
  hostOf,
  systemResolver,
  TargetPolicy,
  type Resolver,
} from './targets.js';

/** Longest URL fetched. */
const FETCH_URL_MAX_LENGTH = 8192;

/** The stable types a {@link FetchFailure} carries. */
export type FetchFailureType =
  'fetch_invalid_url' | 'fetch_forbidden' | 'fetch_redirect_refused' | 'fetch_response_too_large' | 'fetch_timeout' | 'fetch_unreachable';

const RETRYABLE: Readonly<Record<FetchFailureType, boolean>> = {
  fetch_invalid_url: false,
  fetch_forbidden: false,
  fetch_redirect_refused: false,
  fetch_response_too_large: false,
  fetch_timeout: true,
  fetch_unreachable: true,
};

/** Why a guarded fetch failed. Thrown as is from a handler, the engine records `type` and retries when `retryable`. */
export class FetchFailure extends Error {
  readonly type: FetchFailureType;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(type: FetchFailureType, message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FetchFailure';
    this.type = type;
    this.retryable = RETRYABLE[type];
    this.details = options.details;
  }
}

/** The limits of one fetch; each defaults to the fetcher's (`fetch.*` in the config). */
export interface FetchLimits {
  /** Redirects followed, each hop checked; 0 follows none (a 3xx then fails with `fetch_redirect_refused`). */
  maxRedirects: number;
  /** The whole fetch, connect to last body byte, in ms; 0: no limit of its own (the handler's signal still applies). */
  timeoutMs: number;
  /** Most bytes of the response body. */
  maxResponseBytes: number;
}

/** `fetch`'s options, plus the guard's. */
export interface GuardedFetchInit extends RequestInit, Partial<FetchLimits> {
  /**
   * Origins (`https://api.internal:8443`) reached without the address check: an
   * upstream the operator configured. Redirects to any other origin are checked.
   * Never put a URL a tenant chose here.
   */
  trustedOrigins?: readonly string[] | undefined;
}

export interface GuardedFetcherOptions extends Partial<FetchLimits> {
  /** Hosts or CIDRs that may be reached although they are forbidden by default (`fetch.allow`). */
  allow?: readonly string[] | undefined;
  /** Host name resolution (default: the system resolver); tests inject a stub. */
  resolve?: Resolver | undefined;
}

/** `fetch.*` defaults, also the exported helper's. */
export const FETCH_DEFAULTS: Readonly<FetchLimits> = { maxRedirects: 5, timeoutMs: 30_000, maxResponseBytes: 10 * 1024 * 1024 };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
/**
 * The request headers a hop to another origin keeps; every other header (an
 * operator's `X-Api-Key`, `Authorization`, cookies, custom headers) stays with
 * the origin it was set for.
 */
const CROSS_ORIGIN_HEADERS: readonly string[] = [
  'accept',
  'accept-language',
  'cache-control',
  'content-language',
  'content-type',
  'pragma',
  'user-agent',
];
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location'];

type Body = UndiciRequestInit['body'];

/** Owns the connection pools; one per engine (or per embedding program). */
export class GuardedFetcher {
  private readonly policy: TargetPolicy;
  private readonly guarded: Agent;
  private readonly trusted: Agent;
  private readonly limits: FetchLimits;

  constructor(options: GuardedFetcherOptions = {}) {
    this.policy = new TargetPolicy(options.allow ?? [], { subject: 'operations', setting: 'fetch.allow' });
    this.limits = {
      maxRedirects: options.maxRedirects ?? FETCH_DEFAULTS.maxRedirects,
      timeoutMs: options.timeoutMs ?? FETCH_DEFAULTS.timeoutMs,
      maxResponseBytes: options.maxResponseBytes ?? FETCH_DEFAULTS.maxResponseBytes,
    };
    this.guarded = new Agent({
      connect: { lookup: this.policy.lookup(options.resolve ?? systemResolver) as never },
      keepAliveTimeout: 4_000,
    });
    this.trusted = new Agent({ keepAliveTimeout: 4_000 });
  }

  /**
   * Fetches `input` under the guard; see the file header. Resolves with the
   * (final) response, whatever its status; rejects with a {@link FetchFailure},
   * or with the caller's `signal.reason` when that aborted it. `log` gets the
   * details tenants are not shown (URL, address, cause).
   */
  async fetch(input: string | URL, init: GuardedFetchInit = {}, log?: Pick<Logger, 'warn'>): Promise<Response> {
    const { maxRedirects, timeoutMs, maxResponseBytes } = { ...this.limits, ...definedLimits(init) };
    const trusted = new Set((init.trustedOrigins ?? []).map((o) => new URL(o).origin));
    const controller = new AbortController();
    const callerSignal = init.signal ?? undefined;
    const onCallerAbort = () => controller.abort(callerSignal?.reason);
    if (callerSignal?.aborted) onCallerAbort();
    else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer =
      timeoutMs > 0
        ? setTimeout(
            () =>
              controller.abort(
                new FetchFailure('fetch_timeout', `The fetch did not complete within ${timeoutMs} ms`, {
                  details: { timeout_ms: timeoutMs },
                }),
              ),
            timeoutMs,
          )
        : undefined;
    timer?.unref();
    const finish = () => {
      if (timer) clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    };

    const fail = (failure: FetchFailure, context: Record<string, unknown>): never => {
      log?.warn(
        { ...context, error: { type: failure.type, message: failure.message }, cause: (failure.cause as Error | undefined)?.message },
        'fetch refused or failed',
      );
      throw failure;
    };
    try {
      let url = this.checkedUrl(String(input instanceof URL ? input.href : input), trusted, fail);
      let method = (init.method ?? 'GET').toUpperCase();
      let body: Body = (init.body ?? null) as Body;
      const headers = new Headers(init.headers);
      for (let hop = 0; ; hop++) {
        let response: Awaited<ReturnType<typeof undiciFetch>>;
        try {
          response = await undiciFetch(url, {
            method,
            headers: headers as UndiciRequestInit['headers'],
            body,
            // A stream body needs it (fetch standard); the others ignore it.
            ...(body !== null && body !== undefined && !replayable(body) ? { duplex: 'half' as const } : {}),
            redirect: 'manual',
            signal: controller.signal,
            dispatcher: trusted.has(url.origin) ? this.trusted : this.guarded,
          });
        } catch (err) {
          if (callerSignal?.aborted) throw callerSignal.reason;
          return fail(this.failureOf(err, controller.signal), { url: loggable(url), hop, err });
        }
        const location = response.headers.get('location');
        if (!REDIRECTS.has(response.status) || location === null || init.redirect === 'manual') {
          return limitBody(response, {
            maxResponseBytes,
            controller,
            finish,
            fail: (f) => fail(f, { url: loggable(url) }),
            redirected: hop > 0,
          });
        }
        await response.body?.cancel().catch(() => undefined);
        const from = url;
        if (init.redirect === 'error' || hop >= maxRedirects) {
          const message =
            init.redirect === 'error'
              ? 'The URL answered with a redirect, and this fetch follows none'
              : `The fetch was redirected more than ${maxRedirects} times`;
          return fail(new FetchFailure('fetch_redirect_refused', message, { details: { max_redirects: maxRedirects } }), {
            url: loggable(from),
            location: loggable(location, from),
          });
        }
        url = this.checkedUrl(location, trusted, fail, from);
        const status = response.status;
        if (((status === 301 || status === 302) && method === 'POST') || (status === 303 && method !== 'GET' && method !== 'HEAD')) {
          method = 'GET';
          body = null;
          for (const name of BODY_HEADERS) headers.delete(name);
        } else if (body !== null && body !== undefined && url.origin !== from.origin) {
          return fail(
            new FetchFailure(
              'fetch_redirect_refused',
              `The fetch was redirected with ${status} to another origin, which would need the request body sent there`,
            ),
            { url: loggable(from), location: loggable(url) },
          );
        } else if (body !== null && body !== undefined && !replayable(body)) {
          return fail(
            new FetchFailure('fetch_redirect_refused', `The fetch was redirected with ${status}, which needs the streamed body sent again`),
            { url: loggable(from), location: loggable(url) },
          );
        }
        if (url.origin !== from.origin) {
          for (const name of [...headers.keys()]) if (!CROSS_ORIGIN_HEADERS.includes(name)) headers.delete(name);
        }
      }
    } catch (err) {
      finish();
      throw err;
    }
  }

  /** Closes the connection pools. */
  async close(): Promise<void> {
    await Promise.allSettled([this.guarded.destroy(), this.trusted.destroy()]);
  }

  /** `href` (relative to `base`, for a redirect's Location) parsed and checked, or a failure. */
  private checkedUrl(
    href: string,
    trusted: ReadonlySet<string>,
    fail: (f: FetchFailure, context: Record<string, unknown>) => never,
    base?: URL,
  ): URL {
    let url: URL;
    try {
      url = new URL(href, base);
    } catch {
      return fail(new FetchFailure('fetch_invalid_url', 'The URL to fetch is not a valid absolute http(s) URL'), {
        url: loggable(href),
      });
    }
    const invalid = (message: string) => fail(new FetchFailure('fetch_invalid_url', message), { url: loggable(url) });
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return invalid('Only http and https URLs can be fetched');
    if (url.username !== '' || url.password !== '') {
      return invalid('The URL to fetch may not carry a user name or password; send credentials in a header');
    }
    if (url.href.length > FETCH_URL_MAX_LENGTH) return invalid(`The URL to fetch is longer than ${FETCH_URL_MAX_LENGTH} characters`);
    if (trusted.has(url.origin)) return url;
    // What is left to refuse without DNS: a literal forbidden address, or a loopback name.
    const refusal = this.policy.refusalForUrl(url.href, FETCH_URL_MAX_LENGTH);
    if (refusal === null) return url;
    const host = hostOf(url);
    return fail(forbidden(isIP(host) === 0 ? 'a loopback name' : (forbiddenReason(host) ?? 'a forbidden address')), {
      url: loggable(url),
      refusal,
    });
  }

  private failureOf(err: unknown, signal: AbortSignal): FetchFailure {
    if (signal.reason instanceof FetchFailure) return signal.reason;
    const refused = findCause(err, (e) => e.code === FORBIDDEN_TARGET_CODE);
    // A name that resolved to a forbidden address: which address, or what kind, is for the log only
    // (a tenant could otherwise resolve internal names through it).
    if (refused) {
      return forbidden('an address', {
        cause: err,
        refusal: refused instanceof ForbiddenTargetError ? refused.detail : refused.message,
      });
    }
    const code = findCause(err, (e) => typeof e.code === 'string')?.code;
    const shown = typeof code === 'string' ? code : 'network error';
    return new FetchFailure('fetch_unreachable', `The URL could not be fetched (${shown})`, {
      details: typeof code === 'string' ? { code } : {},
      cause: err,
    });
  }
}

/**
 * A refusal as tenants see it: for a literal address in the URL (which the
 * tenant wrote) what kind it is; for a host name only that it is not allowed.
 * The log has which address and how the name resolved.
 */
function forbidden(kind: string, log?: { cause: unknown; refusal: string }): FetchFailure {
  return new FetchFailure(
    'fetch_forbidden',
    `The URL (or a redirect) leads to ${kind} that operations may not fetch from unless fetch.allow lists it`,
    log === undefined ? {} : { cause: Object.assign(new Error(log.refusal), { cause: log.cause }) },
  );
}

/** A URL as it may be logged: without a user name or password, at most 500 characters. */
function loggable(href: string | URL, base?: URL): string {
  try {
    const url = new URL(href, base);
    url.username = '';
    url.password = '';
    return url.href.slice(0, 500);
  } catch {
    return String(href)
      .replace(/\/\/[^/@]*@/, '//')
      .slice(0, 500);
  }
}

function definedLimits(init: GuardedFetchInit): Partial<FetchLimits> {
  const out: Partial<FetchLimits> = {};
  if (init.maxRedirects !== undefined) out.maxRedirects = init.maxRedirects;
  if (init.timeoutMs !== undefined) out.timeoutMs = init.timeoutMs;
  if (init.maxResponseBytes !== undefined) out.maxResponseBytes = init.maxResponseBytes;
  return out;
}

/** A body that can be sent again after a 307/308 (not a stream). */
function replayable(body: NonNullable<Body>): boolean {
  if (typeof body === 'string' || body instanceof ArrayBuffer || ArrayBuffer.isView(body) || body instanceof URLSearchParams) return true;
  return body instanceof Blob || body instanceof FormData;
}

interface BodyLimit {
  maxResponseBytes: number;
  controller: AbortController;
  finish: () => void;
  fail: (f: FetchFailure) => never;
  redirected: boolean;
}

/** The response with its body capped at `maxResponseBytes`; the timer and listeners end with the body. */
function limitBody(response: Awaited<ReturnType<typeof undiciFetch>>, o: BodyLimit): Response {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  const tooLarge = () =>
    new FetchFailure('fetch_response_too_large', `The response is larger than ${o.maxResponseBytes} bytes`, {
      details: { limit_bytes: o.maxResponseBytes },
    });
  if (Number.isFinite(declared) && declared > o.maxResponseBytes) {
    void response.body?.cancel().catch(() => undefined);
    o.finish();
    o.fail(tooLarge());
  }
  let body: ReadableStream<Uint8Array> | null = null;
  if (response.body === null || NULL_BODY.has(response.status)) {
    void response.body?.cancel().catch(() => undefined);
    o.finish();
  } else {
    let total = 0;
    const source = response.body as ReadableStream<Uint8Array>;
    body = source.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, out) {
          total += chunk.byteLength;
          if (total > o.maxResponseBytes) {
            const failure = tooLarge();
            o.controller.abort(failure);
            o.finish();
            out.error(failure);
            return;
          }
          out.enqueue(chunk);
        },
        flush: () => o.finish(),
      }),
      { signal: o.controller.signal },
    );
  }
  const wrapped = new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers as unknown as Headers,
  });
  Object.defineProperty(wrapped, 'url', { value: response.url });
  Object.defineProperty(wrapped, 'redirected', { value: o.redirected });
  return wrapped;
}

function findCause(err: unknown, match: (e: Error & { code?: unknown }) => boolean): (Error & { code?: unknown }) | null {
  let current: unknown = err;
  for (let depth = 0; depth < 6 && current instanceof Error; depth++) {
    if (match(current as Error & { code?: unknown })) return current as Error & { code?: unknown };
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}
