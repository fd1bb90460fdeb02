/** `errand migrate`: applies pending migrations and says what it did; clear failures otherwise. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import { migrateCommand } from '../../src/cli/migrate.js';
import { PG_MIGRATIONS } from '../../src/store/postgres/migrations/index.js';
import { dropSchema, freshSchema, pgExec, pgSkipReason, schemaUrl } from '../helpers/pg.js';
import { freePort, SERVER_PACKAGE_DIR } from '../helpers/process.js';

const skip = await pgSkipReason();
const run = promisify(execFile);

async function migrate(options: { url?: string; config?: string }): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await migrateCommand(options, (l) => lines.push(l));
  return { code, lines };
}

describe('errand migrate', () => {
  test('applies the migrations of a fresh schema once, then reports it up to date', { skip }, async () => {
    const schema = freshSchema();
    after(() => dropSchema(schema));
    const url = schemaUrl(schema);
    const first = await migrate({ url });
    assert.equal(first.code, 0);
    const latest = Math.max(...PG_MIGRATIONS.map((m) => m.version));
    assert.deepEqual(
      first.lines.slice(0, -1),
      PG_MIGRATIONS.map((m) => `applied ${String(m.version).padStart(4, '0')}_${m.name}`),
    );
    assert.equal(first.lines[0], 'applied 0001_init');
    assert.match(first.lines.at(-1)!, new RegExp(`schema ${schema} at version ${latest}$`));
    const again = await migrate({ url });
    assert.equal(again.code, 0);
    assert.equal(again.lines.length, 1);
    assert.match(again.lines[0]!, new RegExp(`at version ${latest}, already up to date`));
    const { rows } = await pgExec(`SELECT count(*)::int AS n FROM ${schema}.errand_migrations`);
    assert.equal(rows[0].n, PG_MIGRATIONS.length);
  });

  test('the errand command runs it (exit 0) and fails clearly on an unreachable database (exit 1)', { skip }, async () => {
    const schema = freshSchema();
    after(() => dropSchema(schema));
    const cli = ['--import', 'tsx', join(SERVER_PACKAGE_DIR, 'src', 'cli', 'main.ts'), 'migrate'];
    const ok = await run(process.execPath, [...cli, '--store-url', schemaUrl(schema)], { cwd: SERVER_PACKAGE_DIR, timeout: 60_000 });
    assert.match(ok.stdout, /applied 0001_init/);
    const port = await freePort();
    await assert.rejects(
      run(process.execPath, [...cli, '--store-url', `postgres://postgres@127.0.0.1:${port}/test`], {
        cwd: SERVER_PACKAGE_DIR,
        timeout: 60_000,
      }),
      (err: { code?: number; stderr?: string }) =>
        err.code === 1 && /errand migrate: The PostgreSQL store is unavailable .*\(store_unavailable\)/.test(err.stderr ?? ''),
    );
  });

  test('a URL that is not a store URL exits 2', async () => {
    const result = await migrate({ url: 'mysql://x' });
    assert.equal(result.code, 2);
  });
});
