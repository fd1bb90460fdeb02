/**
 * Starts the real Errand server (packages/server/dist/cli/main.js) with the
 * client test fixtures as operations, auth on (two tenants and an admin), and
 * a webhook secret, on a free port on 127.0.0.1. Reuses the server package's
 * process helpers (spawn, /ready wait, cleanup).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAllServers, makeTempDir, startServer, writeConfig, type ServerProcess } from '../../../server/test/helpers/process.js';

export { killAllServers };

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

export const KEYS = {
  alpha: 'test_key_alpha_0001',
  beta: 'test_key_beta_0001',
  admin: 'test_admin_key_0001',
} as const;

/** A Standard Webhooks secret (`whsec_` + base64 of 24 bytes). */
export const WEBHOOK_SECRET = 'whsec_' + Buffer.from('errand-client-test-secret-key!!!').toString('base64');

export interface TestErrand {
  server: ServerProcess;
  url: string;
  dir: string;
  /** A path for a gate file (see fixtures/gate.mjs); `open(path)` creates it. */
  gatePath(name: string): string;
  open(path: string): void;
  stop(): Promise<void>;
}

/** The server config used by the client tests; `overrides` are merged at the top level. */
export function testConfig(dir: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', long_poll_max: 10, sse_keep_alive: 1 },
    store: { url: `sqlite:${join(dir, 'errand.db')}`, synchronous: 'normal' },
    auth: {
      keys: [
        { key: KEYS.alpha, tenant: 'alpha' },
        { key: KEYS.beta, tenant: 'beta' },
      ],
      admin_keys: [KEYS.admin],
    },
    engine: { poll_interval: 0.2 },
    webhooks: { secret: WEBHOOK_SECRET, allow: ['127.0.0.1'] },
    async: { webhook_retries: 0, webhook_timeout: 5 },
    chat: { operation: 'chat' },
    triggers: { hook: { operation: 'echo' } },
    operations: {
      echo: { module: join(fixtures, 'echo.mjs') },
      slow: { module: join(fixtures, 'slow.mjs') },
      fail: { module: join(fixtures, 'fail.mjs'), retry: { max_attempts: 1 } },
      gate: { module: join(fixtures, 'gate.mjs'), retry: { max_attempts: 1 } },
      chat: { module: join(fixtures, 'chat.mjs') },
    },
    ...overrides,
  };
}

export async function startErrand(overrides: Record<string, unknown> = {}): Promise<TestErrand> {
  const { dir, cleanup } = makeTempDir('errand-client-');
  // Generous: on a loaded machine the server's start (module loading, migrations) can take many seconds.
  const server = await startServer({ config: writeConfig(dir, testConfig(dir, overrides)), readyTimeoutMs: 60_000 });
  return {
    server,
    url: server.url,
    dir,
    gatePath: (name) => join(dir, `${name}.gate`),
    open: (path) => {
      if (!existsSync(path)) writeFileSync(path, '');
    },
    stop: async () => {
      await server.dispose();
      cleanup();
    },
  };
}
