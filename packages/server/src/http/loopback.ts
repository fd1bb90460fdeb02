/**
 * Auth off means "only this machine": with no API keys, every caller is the
 * tenant `default` and sees every request, so the node must listen on loopback
 * only (enforced in `createServer().listen()`) and must not be drivable by a web
 * page the operator happens to visit. Two browser attacks reach a loopback port:
 *
 * - **CSRF**: a page on another site POSTs a form (or `fetch(…, {mode:
 *   'no-cors'})`) to `http://127.0.0.1:8001/v1/…`; every body is read as JSON
 *   (body.ts), so the form's body is a valid submission. The browser marks such
 *   requests with `Origin: https://evil.example` (and `Sec-Fetch-Site:
 *   cross-site`).
 * - **DNS rebinding**: a host name the attacker controls is made to resolve to
 *   127.0.0.1, so the page's own origin reads `/v1/requests`. Its requests carry
 *   `Host: evil.example:8001`.
 *
 * So with auth off each request must be addressed to a loopback `Host`
 * (127.0.0.0/8, `[::1]`, `localhost`, `*.localhost`, any port; a request with
 * no Host at all, as HTTP/1.0 allows, comes from no browser and passes), carry
 * no `Origin` other than a loopback one (`Origin: null`, sent by sandboxed
 * frames and `file:` pages, is refused), and not be marked `Sec-Fetch-Site:
 * cross-site` unless it is a top-level `GET` navigation (a link to the
 * dashboard; such a page cannot read what it opened). curl, the SDK and the
 * seeds' clients send no Origin and are unaffected; the dashboard is served by
 * Errand itself, so its requests are same-origin.
 *
 * Errand sends no CORS headers at all, so a browser never lets another origin
 * read an answer, nor send a preflighted request (JSON content type, an
 * `Authorization` header); a preflight `OPTIONS` gets this same 403 when auth is
 * off. With auth on the key is the protection: a browser never adds it by
 * itself.
 */
import { BlockList, isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrandError } from '../model/index.js';

const LOOPBACK_ADDRESSES = new BlockList();
LOOPBACK_ADDRESSES.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK_ADDRESSES.addAddress('::1', 'ipv6');
LOOPBACK_ADDRESSES.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** `name[:port]` or `[v6][:port]`, nothing else (no user info, path or spaces). */
const HOST_HEADER = /^(?:\[([0-9a-f:.]+)\]|([^:[\]@/\s]+))(?::\d{1,5})?$/i;

/**
 * True for a loopback host: an address in 127.0.0.0/8 or `::1` (brackets
 * allowed), `localhost` or a name under `.localhost` (RFC 6761: always
 * loopback). Used for listen addresses, `Host` headers and `Origin` hosts.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const family = isIP(bare);
  if (family === 4) return LOOPBACK_ADDRESSES.check(bare, 'ipv4');
  if (family === 6) return LOOPBACK_ADDRESSES.check(bare, 'ipv6');
  const name = bare.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/** `Host` header values already checked (clients send the same one every time); cleared when full. */
const checkedHosts = new Map<string, boolean>();
const CHECKED_HOSTS_MAX = 64;

/** True when a `Host` header names a loopback host (memoised: an address check costs more than the rest of a status read). */
function isLoopbackHostHeader(host: string): boolean {
  let loopback = checkedHosts.get(host);
  if (loopback === undefined) {
    const match = HOST_HEADER.exec(host);
    const hostname = match?.[1] ?? match?.[2];
    loopback = hostname !== undefined && isLoopbackHost(hostname);
    if (checkedHosts.size >= CHECKED_HOSTS_MAX) checkedHosts.clear();
    checkedHosts.set(host, loopback);
  }
  return loopback;
}

/** Why `request` cannot be from this machine's own clients, or null when it may be. */
function foreignCallerRefusal(request: FastifyRequest): ErrandError | null {
  const { host, origin } = request.headers;
  if (host !== undefined) {
    if (!isLoopbackHostHeader(host)) {
      return refusal('Host', `Host "${clip(host)}" is not a loopback name`);
    }
  }
  if (origin !== undefined && !isLoopbackOrigin(origin)) {
    return refusal('Origin', `a page from ${origin === 'null' ? 'an opaque origin ("null")' : `"${clip(origin)}"`} may not call it`);
  }
  const site = request.headers['sec-fetch-site'];
  const navigation = request.headers['sec-fetch-mode'] === 'navigate' && (request.method === 'GET' || request.method === 'HEAD');
  if (site === 'cross-site' && !navigation) return refusal('Sec-Fetch-Site', 'a page from another site may not call it');
  return null;
}

/** Refuses, before the body is read, every request that may come from a browser tab on another site (auth off only). */
export function registerLoopbackGuard(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    const refused = foreignCallerRefusal(request);
    if (refused) throw refused;
  });
}

function isLoopbackOrigin(origin: string): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && isLoopbackHost(url.hostname);
  } catch {
    return false;
  }
}

function refusal(field: string, why: string): ErrandError {
  return new ErrandError(
    'origin_not_allowed',
    `Auth is off (no API keys), so this server answers only clients on its own machine: ${why}. Call it as http://127.0.0.1:<port> without a browser page of another site, or configure auth.keys.`,
    { field },
  );
}

function clip(text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}
