/**
 * `errand migrate`: applies the store's pending migrations and says what it
 * did, without starting a node. Servers migrate at start-up too (safely when
 * several start at once); this is for deploy pipelines that migrate first,
 * and for checking a database's schema version.
 */
import { existsSync } from 'node:fs';
import { maskUrl } from '../cluster/index.js';
import { ConfigError, loadConfig } from '../config/index.js';
import { ErrandError } from '../model/index.js';
import { PostgresStore, SqliteStore } from '../store/index.js';

export interface MigrateOptions {
  config?: string | undefined;
  /** Overrides `store.url`. */
  url?: string | undefined;
}

export async function migrateCommand(
  options: MigrateOptions,
  out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Promise<number> {
  const configPath = options.config ?? process.env.ERRAND_CONFIG ?? (existsSync('errand.yaml') ? 'errand.yaml' : undefined);
  let url: string;
  let config;
  try {
    config = loadConfig({ path: configPath, overrides: options.url === undefined ? {} : { store: { url: options.url } } });
    url = config.store.url;
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message, 2);
    throw err;
  }
  try {
    if (/^postgres(ql)?:\/\//.test(url)) {
      const store = new PostgresStore({ url, poolSize: 1, connectTimeoutMs: config.store.connect_timeout });
      try {
        const report = await store.applyMigrations();
        for (const m of report.applied) out(`applied ${String(m.version).padStart(4, '0')}_${m.name}`);
        out(
          `${maskUrl(url)}: schema ${store.settings.schema ?? '(search_path)'} at version ${report.version}${report.applied.length === 0 ? ', already up to date' : ''}`,
        );
      } finally {
        await store.close();
      }
      return 0;
    }
    if (url.startsWith('sqlite:')) {
      const store = new SqliteStore({ path: url.slice('sqlite:'.length) });
      try {
        await store.migrate();
      } finally {
        await store.close();
      }
      out(`${url}: up to date (SQLite also migrates whenever the server starts)`);
      return 0;
    }
    return fail(`store.url: "${url}" is not a store URL; write sqlite:PATH or postgres://user@host:5432/db`, 2);
  } catch (err) {
    if (err instanceof ErrandError) return fail(`${err.message} (${err.type})`, 1);
    return fail(`migration failed: ${(err as Error).message}`, 1);
  }
}

function fail(message: string, code: number): number {
  process.stderr.write(`errand migrate: ${message}\n`);
  return code;
}
