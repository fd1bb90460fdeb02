/**
 * API keys. A key is sent as `Authorization: Bearer <key>`, `X-Client-Key: <key>`
 * or `X-Muxi-Client-Key: <key>` (so the seeds' clients work unchanged). Each key
 * belongs to a tenant, which sees only its own requests; an admin key sees every
 * tenant's. With no keys configured, auth is off: every caller is the tenant
 * `default` (and the server binds to loopback only; see cli/serve.ts).
 *
 * Keys are looked up by their SHA-256 digest, so the lookup time does not depend
 * on how much of a guessed key is right.
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ADMIN_TENANT, OPEN_TENANT, type ErrandConfig } from '../config/index.js';
import { ErrandError } from '../model/index.js';

/** Who is calling. `tenant` is null for an admin (sees all). */
export interface Caller {
  readonly tenant: string | null;
  readonly admin: boolean;
  /** The tenant new requests are filed under. */
  readonly submitTenant: string;
}

const KEY_HEADERS = ['x-client-key', 'x-muxi-client-key'] as const;

export class Authenticator {
  private readonly keys = new Map<string, Caller>();
  readonly enabled: boolean;

  constructor(auth: ErrandConfig['auth']) {
    for (const { key, tenant } of auth.keys) this.keys.set(digest(key), { tenant, admin: false, submitTenant: tenant });
    for (const key of auth.admin_keys) this.keys.set(digest(key), { tenant: null, admin: true, submitTenant: ADMIN_TENANT });
    this.enabled = this.keys.size > 0;
  }

  /** The caller of `request`; throws `unauthorized` for a missing or unknown key. */
  authenticate(request: FastifyRequest): Caller {
    if (!this.enabled) return { tenant: null, admin: true, submitTenant: OPEN_TENANT };
    const key = presentedKey(request);
    if (key === undefined) throw new ErrandError('unauthorized');
    const caller = this.keys.get(digest(key));
    if (!caller) throw new ErrandError('unauthorized', 'Unknown API key: check the key, or ask the server operator for one.');
    return caller;
  }
}

/**
 * Which key check `request` falls under — the one place that decides it, used
 * by the auth hook (app.ts) and the failed-key throttle (limits/): `'api'` for
 * every `/v1` path, matched by a route or not (an unknown `/v1` path still
 * needs a key, so it is a 401 first and a 404 only with a good key); `'metrics'`
 * for `/metrics` (its route checks an admin key when configured); else null.
 */
export function keyScope(request: FastifyRequest): 'api' | 'metrics' | null {
  // Decide on the matched route, not the raw URL: the router decodes %-escapes.
  const path = request.routeOptions.url ?? decodePath(request.url);
  if (path === '/v1' || path.startsWith('/v1/')) return 'api';
  if (path === '/metrics') return 'metrics';
  return null;
}

function decodePath(url: string): string {
  const path = url.split('?')[0] ?? '';
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (match?.[1]) return match[1].trim();
  }
  for (const header of KEY_HEADERS) {
    const value = request.headers[header];
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
  }
  return undefined;
}

function digest(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
