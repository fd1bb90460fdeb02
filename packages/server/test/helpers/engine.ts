/** Builds an in-process server on a temp SQLite file with a manual clock and operations written as .mjs files. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { createServer, type ErrandServer } from '../../src/server.js';
import { ManualClock } from './clock.js';
import { T0, tempDir } from './factories.js';

export interface EngineHarness {
  server: ErrandServer;
  clock: ManualClock;
  dir: string;
  close: () => Promise<void>;
}

/**
 * `operations` maps a name to the source of an .mjs module; `config` is merged
 * over test defaults (no jitter, short intervals, silent logs).
 */
export async function startEngine(operations: Record<string, string>, config: Record<string, unknown> = {}): Promise<EngineHarness> {
  const { dir, cleanup } = tempDir();
  const ops: Record<string, unknown> = {};
  for (const [name, source] of Object.entries(operations)) {
    const file = join(dir, `${name}.mjs`);
    writeFileSync(file, source);
    ops[name] = { module: file, ...(((config.operationSettings as Record<string, object> | undefined) ?? {})[name] ?? {}) };
  }
  const { operationSettings: _ignored, ...rest } = config;
  const loaded = loadConfig({
    baseDir: dir,
    env: {},
    overrides: deepMerge(
      {
        store: { url: `sqlite:${join(dir, 'errand.db')}` },
        logging: { level: 'silent' },
        workflow: { retry: { jitter: 0 } },
        engine: { poll_interval: 1, lease_duration: 30, heartbeat_interval: 10 },
        operations: ops,
      },
      rest,
    ),
  });
  const clock = new ManualClock(T0);
  const server = await createServer({ config: loaded, log: pino({ level: 'silent' }), test: { clock, random: () => 0.5 } });
  return {
    server,
    clock,
    dir,
    close: async () => {
      await server.close(0);
      cleanup();
    },
  };
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      typeof v === 'object' && v !== null && !Array.isArray(v) && typeof cur === 'object' && cur !== null && !Array.isArray(cur)
        ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
