/**
 * Connection limits, applied to Node's HTTP server through Fastify's options:
 *
 * - `headers_timeout`: a client must send its headers within this (slow-loris
 *   headers); `request_timeout`: the whole request, body included. Both only
 *   cover *receiving* the request, so they never cut an answer that takes long
 *   (a sync wait, a long-poll, an event stream). Node checks them every
 *   `connectionsCheckingInterval`, set here to a quarter of the headers
 *   timeout (at most 1 s) so a slow client is cut close to its deadline.
 * - `keep_alive_timeout`: idle time between requests on one connection.
 * - `idle_timeout`: socket inactivity while the server answers. Streams and
 *   waits lift it for their duration (`liftIdleTimeout`): an event stream
 *   guards itself (keep-alives, the slow-consumer cut-off) and a wait is
 *   bounded by its own limit.
 * - `max_connections`: connections past it are closed as they arrive.
 */
import type { ServerOptions } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { LimitsConfig } from '../../config/index.js';

/** Fastify options carrying the timeouts of `limits`. */
export function connectionOptions(limits: LimitsConfig): {
  connectionTimeout: number;
  keepAliveTimeout: number;
  requestTimeout: number;
  http: ServerOptions;
} {
  return {
    connectionTimeout: limits.idle_timeout,
    keepAliveTimeout: limits.keep_alive_timeout,
    requestTimeout: limits.request_timeout,
    http: {
      headersTimeout: limits.headers_timeout,
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(limits.headers_timeout / 4))),
    },
  };
}

/** Caps the connections of the app's server (`limits.max_connections`). */
export function capConnections(app: FastifyInstance, limits: LimitsConfig): void {
  app.server.maxConnections = limits.max_connections;
}

/**
 * Lifts the idle timeout of `request`'s connection while it streams or waits;
 * the returned function puts it back. No-op for injected requests (no socket).
 */
export function liftIdleTimeout(request: FastifyRequest, idleTimeoutMs: number): () => void {
  const socket = request.raw.socket as { setTimeout?: (ms: number) => unknown; destroyed?: boolean } | null | undefined;
  if (typeof socket?.setTimeout !== 'function') return () => undefined;
  socket.setTimeout(0);
  return () => {
    if (!socket.destroyed) socket.setTimeout?.(idleTimeoutMs);
  };
}
