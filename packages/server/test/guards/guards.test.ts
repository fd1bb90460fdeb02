/**
 * The mechanical guards `npm test` runs first (`npm run check`): prettier
 * --check, dependency-cruiser's no-circular and no-cross-backend rules, and
 * knip's unused exports.
 * Each guard runs for real (the repository's own binaries and config files)
 * on fixtures written to a fresh directory under os.tmpdir(), so the
 * repository-wide prettier, eslint and tsc runs never see them: a deliberate
 * violation must fail with a message naming the file, a clean fixture must pass.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, test, type TestContext } from 'node:test';

const ROOT = resolve(import.meta.dirname, '../../../..');
const PRETTIER = join(ROOT, 'node_modules/prettier/bin/prettier.cjs');
const DEPCRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const KNIP = join(ROOT, 'node_modules/knip/bin/knip.js');

/** A fresh fixture directory under os.tmpdir() holding `files` (path → content), removed after test `t`. */
function fixture(t: TestContext, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'errand-guards-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

interface Run {
  code: number | null;
  output: string;
}

/** Runs a node script in `cwd`, collecting stdout and stderr together. */
function run(script: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

/** `prettier --check .` in `dir` with the repository's .prettierrc.json. */
const prettierCheck = (dir: string) => run(PRETTIER, ['--check', '--config', join(ROOT, '.prettierrc.json'), '.'], dir);

/** dependency-cruiser on `dir` with the repository's .dependency-cruiser.mjs. */
const depcruise = (dir: string) => run(DEPCRUISE, ['--config', join(ROOT, '.dependency-cruiser.mjs'), '--output-type', 'err', '.'], dir);

describe('npm test runs the guards first', () => {
  test('the root test script starts with npm run check, which runs prettier --check and dependency-cruiser on both packages', () => {
    const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(scripts.test ?? '', /^npm run check && /);
    assert.equal(scripts.check, 'npm run check:format && npm run check:deps && npm run check:unused');
    assert.equal(scripts['check:unused'], 'knip --exports');
    assert.equal(scripts['check:format'], 'prettier --check .');
    assert.equal(scripts['check:deps'], 'depcruise --config .dependency-cruiser.mjs packages/server/src packages/client/src');
  });
});

describe('prettier --check', { concurrency: true }, () => {
  test('a file formatted to the repository config passes', async (t) => {
    // Single quotes: this passes with .prettierrc.json, and would fail with prettier's defaults.
    const result = await prettierCheck(fixture(t, { 'src/clean.ts': "export const greeting = 'hello';\n" }));
    assert.equal(result.code, 0, result.output);
  });

  test('an unformatted file fails, named', async (t) => {
    const dir = fixture(t, {
      'src/clean.ts': "export const greeting = 'hello';\n",
      'src/messy.ts': 'export const greeting = "hello"\n',
    });
    const result = await prettierCheck(dir);
    assert.notEqual(result.code, 0, result.output);
    assert.match(result.output, /src\/messy\.ts/);
    assert.doesNotMatch(result.output, /src\/clean\.ts/);
  });
});

/** A layout that keeps every rule: both backends share store/rows.ts; one cycle is type-only. */
const CLEAN: Record<string, string> = {
  'store/rows.ts': 'export const toRequest = (row: unknown) => row;\n',
  'store/sqlite/store.ts': "import { toRequest } from '../rows.js';\nexport const sqliteRead = toRequest;\n",
  'store/postgres/store.ts': "import { toRequest } from '../rows.js';\nexport const postgresRead = toRequest;\n",
  // engine.ts needs Service at run time; service.ts only names the Engine type: allowed (see .dependency-cruiser.mjs).
  'engine/engine.ts': "import { Service } from './service.js';\nexport class Engine {\n  service = new Service();\n}\n",
  'engine/service.ts': "import type { Engine } from './engine.js';\nexport class Service {\n  engine: Engine | null = null;\n}\n",
};

describe('dependency-cruiser', { concurrency: true }, () => {
  test('the clean layout passes (a type-only cycle included)', async (t) => {
    const result = await depcruise(fixture(t, CLEAN));
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /no dependency violations/);
  });

  test('two modules importing each other at run time fail no-circular, both named', async (t) => {
    const result = await depcruise(
      fixture(t, {
        ...CLEAN,
        'engine/clock.ts': "import { DEFAULT_TICK_MS } from './timer.js';\nexport const tick = () => DEFAULT_TICK_MS;\n",
        'engine/timer.ts': "import { tick } from './clock.js';\nexport const DEFAULT_TICK_MS = 10;\nexport const next = tick;\n",
      }),
    );
    assert.notEqual(result.code, 0, result.output);
    assert.match(result.output, /error no-circular: engine\/(clock|timer)\.ts/);
    assert.match(result.output, /engine\/clock\.ts/);
    assert.match(result.output, /engine\/timer\.ts/);
    assert.doesNotMatch(result.output, /engine\/service\.ts/, 'the type-only cycle is not reported');
  });

  test('a cycle through an index.ts fails too', async (t) => {
    const result = await depcruise(
      fixture(t, {
        ...CLEAN,
        'webhooks/index.ts': "export { Deliverer } from './deliverer.js';\n",
        'webhooks/deliverer.ts': "import { systemClock } from '../engine/index.js';\nexport class Deliverer {\n  clock = systemClock;\n}\n",
        'engine/index.ts': "export { systemClock } from './wiring.js';\n",
        'engine/wiring.ts':
          "import { Deliverer } from '../webhooks/index.js';\nexport const systemClock = { now: () => 0 };\nexport const make = () => new Deliverer();\n",
      }),
    );
    assert.notEqual(result.code, 0, result.output);
    assert.match(result.output, /error no-circular/);
    assert.match(result.output, /webhooks\/deliverer\.ts/);
    assert.match(result.output, /engine\/wiring\.ts/);
  });

  test('store/sqlite importing from store/postgres fails no-cross-backend, naming the importer', async (t) => {
    const result = await depcruise(
      fixture(t, {
        ...CLEAN,
        'store/sqlite/leases.ts': "import { postgresRead } from '../postgres/store.js';\nexport const read = postgresRead;\n",
      }),
    );
    assert.notEqual(result.code, 0, result.output);
    assert.match(result.output, /error no-cross-backend: store\/sqlite\/leases\.ts → store\/postgres\/store\.ts/);
  });

  test('store/postgres importing from store/sqlite fails no-cross-backend, even a type-only import', async (t) => {
    const result = await depcruise(
      fixture(t, {
        ...CLEAN,
        'store/postgres/leases.ts': "import type { sqliteRead } from '../sqlite/store.js';\nexport type Read = typeof sqliteRead;\n",
      }),
    );
    assert.notEqual(result.code, 0, result.output);
    assert.match(result.output, /error no-cross-backend: store\/postgres\/leases\.ts → store\/sqlite\/store\.ts/);
  });
});

/** `knip --exports` on the package in `dir` (its package.json's `main` is the entry, as for our packages). */
const knipExports = (dir: string) => run(KNIP, ['--exports', '--no-progress'], dir);

/** A package whose entry uses `used` from lib.ts; `extra` is added to lib.ts. */
function knipFixture(t: TestContext, extra: string): string {
  return fixture(t, {
    'package.json': JSON.stringify({ name: 'fixture', version: '0.0.0', type: 'module', main: 'src/index.ts' }),
    'src/index.ts': "import { used } from './lib.js';\nexport const answer = used + 1;\n",
    'src/lib.ts': `export const used = 41;\n${extra}`,
  });
}

describe('knip --exports', { concurrency: true }, () => {
  test('a package whose exports are all used passes', async (t) => {
    const result = await knipExports(knipFixture(t, ''));
    assert.equal(result.code, 0, result.output);
  });

  test('an export nothing imports fails, naming it and its file', async (t) => {
    const result = await knipExports(knipFixture(t, 'export const forgotten = 1;\n'));
    assert.notEqual(result.code, 0, result.output);
    assert.match(result.output, /forgotten/);
    assert.match(result.output, /src\/lib\.ts/);
  });

  test('an exported type nothing imports fails too', async (t) => {
    const result = await knipExports(knipFixture(t, 'export interface Orphan {\n  id: string;\n}\n'));
    assert.notEqual(result.code, 0, result.output);
    assert.match(result.output, /Orphan/);
  });
});
