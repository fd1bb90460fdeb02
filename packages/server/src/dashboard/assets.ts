/**
 * The dashboard's built files. `npm run build` bundles `app/` with esbuild
 * into `dist/dashboard/static/` (scripts/build-dashboard.mjs): `index.html`
 * plus content-hashed `app-<hash>.js` / `.css`. They are read into memory once
 * at start-up (a few hundred KiB), so serving them costs no disk reads.
 * Run from `src/` (tsx), there is no `static/` folder: `load` returns null
 * and the route says the dashboard is not built.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface DashboardFile {
  readonly body: Buffer;
  readonly contentType: string;
}

export interface DashboardAssets {
  readonly index: DashboardFile;
  /** By file name (no folders), e.g. `app-3fj2k1.js`. */
  readonly files: ReadonlyMap<string, DashboardFile>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json; charset=utf-8',
};

/** Where the build puts the bundle, next to this module. */
const DASHBOARD_STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

/** Reads every file of `dir`; null when it has no index.html (not built). */
export function loadDashboardAssets(dir: string = DASHBOARD_STATIC_DIR): DashboardAssets | null {
  if (!existsSync(join(dir, 'index.html'))) return null;
  const files = new Map<string, DashboardFile>();
  for (const name of readdirSync(dir)) {
    const contentType = CONTENT_TYPES[extname(name)];
    if (contentType === undefined) continue;
    files.set(name, { body: readFileSync(join(dir, name)), contentType });
  }
  const index = files.get('index.html');
  if (!index) return null;
  files.delete('index.html');
  return { index, files };
}
