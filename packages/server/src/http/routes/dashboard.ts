/**
 * `GET /dashboard` — the dashboard page — and `GET /dashboard/assets/{file}` —
 * its bundled script and styles. Neither needs a key: they hold no data. The
 * page asks for a key and calls the `/v1` API with it, so what it shows is
 * exactly what that key may see (tenant isolation stays the API's).
 *
 * The page runs under a strict Content-Security-Policy: scripts and styles
 * only from this origin (no inline script, no eval), fetches only to this
 * origin, no frames, no plugins. Asset names carry a content hash, so they
 * are cached for a year; the page itself is revalidated every time.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { loadDashboardAssets, type DashboardAssets } from '../../dashboard/index.js';
import { ErrandError } from '../../model/index.js';

const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export interface DashboardRouteDeps {
  /** Test seam; default: the built assets next to the dashboard module. */
  assets?: DashboardAssets | null;
}

export function dashboardRoutes(app: FastifyInstance, deps: DashboardRouteDeps = {}): void {
  const assets = deps.assets === undefined ? loadDashboardAssets() : deps.assets;

  app.get('/dashboard', async (_request, reply) => {
    if (!assets) throw notBuilt();
    securityHeaders(reply);
    return reply.header('cache-control', 'no-cache').type(assets.index.contentType).send(assets.index.body);
  });

  app.get<{ Params: { file: string } }>('/dashboard/assets/:file', async (request, reply) => {
    if (!assets) throw notBuilt();
    const file = assets.files.get(request.params.file);
    if (!file) throw new ErrandError('route_not_found', `The dashboard has no asset named "${request.params.file}".`);
    securityHeaders(reply);
    return reply.header('cache-control', 'public, max-age=31536000, immutable').type(file.contentType).send(file.body);
  });
}

function securityHeaders(reply: FastifyReply): void {
  void reply
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY');
}

function notBuilt(): ErrandError {
  return new ErrandError('route_not_found', 'The dashboard is not built into this installation: run `npm run build -w errand`.');
}
