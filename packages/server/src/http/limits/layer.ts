/**
 * The limits layer: every limit of `limits` in one place (docs/config.md#limits).
 *
 * `registerLimits(app)` caps connections, throttles failed keys per address
 * (hooks that run before auth) and decorates the app; routes reach it through
 * `limitsOf(request)`:
 * - `admitSubmission` before a submission is written (token buckets, 429 `rate_limited`);
 * - `holdStream` before an event stream opens (429 `too_many_streams`);
 * - `holdWait` before a long-poll or sync wait (429 `too_many_waits`).
 * A hold lasts until its answer ends (sent, or the connection closed), and
 * lifts the connection's idle timeout meanwhile.
 *
 * Per-caller limits (submission rates, streams, waits) apply when API keys are
 * configured. With auth off the only caller is the local user (the server
 * listens on loopback only), so they do not apply; connection limits and
 * timeouts always do.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrandConfig } from '../../config/index.js';
import type { Engine } from '../../engine/index.js';
import { keyScope } from '../auth.js';
import { CallerSlots } from './callerSlots.js';
import { capConnections, liftIdleTimeout } from './connections.js';
import { FailedAuthThrottle } from './failedAuth.js';
import { SubmissionLimiter } from './submissions.js';

export interface Limits {
  /** Takes a submission's tokens (cost: 1, or a batch's items) and sets the RateLimit headers; throws `rate_limited`. */
  admitSubmission(request: FastifyRequest, reply: FastifyReply, take: { operation: string; cost: number }): Promise<void>;
  /** One open event stream of the caller, until the answer ends; throws `too_many_streams`. The result gives it back sooner. */
  holdStream(request: FastifyRequest, reply: FastifyReply): () => void;
  /** One long-poll or sync wait of the caller, until the answer ends; throws `too_many_waits`. The result gives it back sooner. */
  holdWait(request: FastifyRequest, reply: FastifyReply): () => void;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The limits layer (http/limits/). */
    errandLimits: Limits;
  }
}

/** Installs the limits on `app`. Call it before the auth hook is added, so throttled addresses never reach a key check. */
export function registerLimits(app: FastifyInstance, deps: { config: ErrandConfig; engine: Engine }): void {
  const { config, engine } = deps;
  const limits = config.limits;
  const authOn = config.auth.keys.length + config.auth.admin_keys.length > 0;
  capConnections(app, limits);

  const streams = new CallerSlots(limits.streams_per_caller, 'too_many_streams');
  const waits = new CallerSlots(limits.waits_per_caller, 'too_many_waits');
  const submissions = new SubmissionLimiter(limits.submissions, engine, engine.clock);
  const failedAuth = new FailedAuthThrottle({ max: limits.failed_auth.max, windowMs: limits.failed_auth.window, clock: engine.clock });

  /** Who the per-caller limits count: the tenant a key files under; undefined with auth off (not limited). */
  const callerKey = (request: FastifyRequest): string | undefined => (authOn ? request.caller?.submitTenant : undefined);
  const hold = (slots: CallerSlots) => (request: FastifyRequest, reply: FastifyReply) => {
    const caller = callerKey(request);
    const release = caller === undefined ? () => undefined : slots.acquire(caller);
    const restore = liftIdleTimeout(request, limits.idle_timeout);
    let done = false;
    /** `early`: given back while the answer goes on, so the idle timeout comes back; once it has ended, Node's keep-alive timer is in charge. */
    const end = (early: boolean) => {
      if (done) return;
      done = true;
      release();
      if (early) restore();
    };
    // Whichever way the answer ends: sent, streamed to its end, or cut off.
    reply.raw.once('finish', () => end(false));
    reply.raw.once('close', () => end(false));
    // A hold taken after an await may come after the client hung up: those events already fired.
    if (answerEnded(request, reply)) end(false);
    return () => end(true);
  };

  app.decorate('errandLimits', {
    async admitSubmission(request, reply, take) {
      const tenant = callerKey(request);
      if (tenant !== undefined) await submissions.admit(reply, { tenant, ...take });
    },
    holdStream: hold(streams),
    holdWait: hold(waits),
  } satisfies Limits);

  // Throttle off with auth off, or with `failed_auth.max: 0`.
  if (!authOn || limits.failed_auth.max === 0) return;
  // The same decision as the auth hook (keyScope): unknown /v1 paths are throttled too.
  app.addHook('onRequest', async (request) => {
    if (keyScope(request) !== null) failedAuth.check(request.ip);
  });
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode === 401) failedAuth.recordFailure(request.ip);
  });
}

/** True when `reply`'s answer can no longer be sent: already sent, or its connection gone (as in sse.ts). */
function answerEnded(request: FastifyRequest, reply: FastifyReply): boolean {
  const raw = reply.raw;
  const socket = request.raw.socket as { destroyed?: boolean } | null | undefined;
  return raw.writableEnded || raw.destroyed || socket?.destroyed === true;
}

/** No limits: for routes mounted on an app without `registerLimits` (route-level tests). */
const NO_LIMITS: Limits = {
  admitSubmission: async () => undefined,
  holdStream: () => () => undefined,
  holdWait: () => () => undefined,
};

/** The limits layer of the app serving `request`. */
export function limitsOf(request: FastifyRequest): Limits {
  return request.server.hasDecorator('errandLimits') ? request.server.errandLimits : NO_LIMITS;
}
