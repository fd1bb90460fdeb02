/**
 * Drives Debian's Chromium with playwright-core for the dashboard tests. The
 * browser runs headless with a fresh profile in a temp dir and no background
 * traffic (no updates, sync, QUIC or first-run pages): it talks only to the
 * test server on 127.0.0.1.
 *
 * Chromium missing: under CI=true the tests fail (CI installs it, see
 * .ci/run); elsewhere they are skipped with the reason.
 *
 * Screenshots go to $ERRAND_SCREENSHOTS_DIR (default: a fresh temp dir, named
 * in the test output); with ERRAND_UPDATE_DOCS_IMAGES=1 they are also copied to
 * docs/images/ as the images docs/dashboard.md shows.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REPO_DIR } from '../helpers/process.js';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** Why the browser tests cannot run here, or undefined when they can. Throws under CI instead of skipping. */
export function browserSkipReason(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  const reason = `Chromium is not installed at ${CHROMIUM_PATH} (apt-get install -y chromium, or set CHROMIUM_PATH)`;
  if (process.env.CI === 'true') throw new Error(`${reason}: the dashboard browser tests must run in CI`);
  return reason;
}

export interface Browser {
  readonly context: BrowserContext;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'errand-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 860 },
    timeout: 60_000,
  });
  context.setDefaultTimeout(15_000);
  return {
    context,
    newPage: () => context.newPage(),
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Where screenshots of this run go. */
export const SCREENSHOTS_DIR = (() => {
  const dir = process.env.ERRAND_SCREENSHOTS_DIR ?? mkdtempSync(join(tmpdir(), 'errand-dashboard-shots-'));
  mkdirSync(dir, { recursive: true });
  return dir;
})();

export const DOCS_IMAGES_DIR = join(REPO_DIR, 'docs', 'images');

/** Saves a full-page screenshot as `dashboard-<name>.png`; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const file = `dashboard-${name}.png`;
  const path = join(SCREENSHOTS_DIR, file);
  await page.screenshot({ path, fullPage: true });
  if (process.env.ERRAND_UPDATE_DOCS_IMAGES === '1') {
    mkdirSync(DOCS_IMAGES_DIR, { recursive: true });
    copyFileSync(path, join(DOCS_IMAGES_DIR, file));
  }
  return path;
}
