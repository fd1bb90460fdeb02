/**
 * The examples in docs/client.md are tests: every block fenced as
 * ```ts test (or ```python test) is extracted and run against a real server
 * whose config declares the operations the docs use; it must exit 0 and print
 * its `expect="..."` text. The TypeScript ones import `@errand/client` as a user
 * would (the workspace link, so the package must be built) and are also
 * type-checked. ```python file=NAME blocks are written next to the Python
 * examples as modules they import.
 *
 * The examples are transpiled here (TypeScript's transpileModule) and run with
 * plain `node`: one loader start-up per example would cost more than the
 * examples themselves.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { KEYS, killAllServers, startErrand, type TestErrand } from './helpers/errand.js';

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = resolve(here, '..');
const repoDir = resolve(packageDir, '..', '..');
const DOC = join(repoDir, 'docs', 'client.md');
/** Inside the package, so that `@errand/client` resolves through the workspace link (gitignored, lint-ignored). */
const work = join(here, '.tmp', 'docs');
const fixtures = join(here, 'fixtures');

interface Block {
  lang: 'ts' | 'python';
  kind: 'test' | 'file';
  file?: string;
  expect?: string;
  code: string;
  line: number;
}

/** The fenced blocks whose info string marks them as tests or files. */
export function extractBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(ts|python) (test|file=(\S+))(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    const expect = /expect="([^"]*)"/.exec(open[4] ?? '')?.[1];
    blocks.push({
      lang: open[1] as Block['lang'],
      kind: open[2] === 'test' ? 'test' : 'file',
      file: open[3],
      expect,
      code: `${body.join('\n')}\n`,
      line: start + 1,
    });
  }
  return blocks;
}

const blocks = extractBlocks(readFileSync(DOC, 'utf8'));
const pythonAvailable = await new Promise<boolean>((r) => execFile('python3', ['--version'], (err) => r(!err)));

let errand: TestErrand;
let receiver: Server;
let env: NodeJS.ProcessEnv;

before(async () => {
  errand = await startErrand({
    chat: { operation: 'assistant' },
    triggers: { 'github-issue-created': { operation: 'triage' } },
    operations: {
      assistant: { module: join(fixtures, 'chat.mjs') },
      triage: { module: join(fixtures, 'echo.mjs') },
      'generate-document': { module: join(fixtures, 'slow.mjs') },
      'analyze-document': { module: join(fixtures, 'slow.mjs') },
      'validate-document': { module: join(fixtures, 'fail.mjs'), retry: { max_attempts: 1 } },
    },
  });
  receiver = createServer((req, res) => {
    req.resume().on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const port = (receiver.address() as { port: number }).port;
  env = { ...process.env, ERRAND_URL: errand.url, ERRAND_API_KEY: KEYS.alpha, CALLBACK_URL: `http://127.0.0.1:${port}/callback` };
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  for (const block of blocks) if (block.kind === 'file' && block.file) writeFileSync(join(work, block.file), block.code);
});
after(async () => {
  receiver?.close();
  await errand?.stop();
  await killAllServers();
  rmSync(work, { recursive: true, force: true });
});

function run(command: string, args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    execFile(command, args, { cwd: work, env, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolveRun({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('docs/client.md has tested examples in both languages', () => {
  assert.ok(blocks.filter((b) => b.lang === 'ts' && b.kind === 'test').length >= 10);
  assert.ok(blocks.filter((b) => b.lang === 'python' && b.kind === 'test').length >= 10);
  assert.ok(
    blocks.every((b) => b.kind === 'file' || b.expect),
    'every tested example says what it prints (expect="...")',
  );
  assert.ok(existsSync(join(packageDir, 'dist', 'index.js')), 'build the package first: npm run build -w @errand/client');
});

// One suite, run 4 at a time: the examples mostly wait on the server.
describe('docs/client.md examples', { concurrency: 4 }, () => {
  for (const [n, block] of blocks.entries()) {
    if (block.lang !== 'ts' || block.kind !== 'test') continue;
    test(`docs/client.md:${block.line} runs and prints ${JSON.stringify(block.expect)}`, async () => {
      const file = join(work, `example-${n}.mjs`);
      const js = ts.transpileModule(block.code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
      writeFileSync(file, js.outputText);
      const { code, stdout, stderr } = await run(process.execPath, [file]);
      assert.equal(code, 0, `exit ${code}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`);
      assert.ok(stdout.includes(block.expect!), `stdout lacks ${JSON.stringify(block.expect)}:\n${stdout}`);
    });
  }

  test('they type-check against the built package', async () => {
    const files = blocks.flatMap((b, n) => (b.lang === 'ts' && b.kind === 'test' ? [`example-${n}-typed.ts`] : []));
    for (const [n, block] of blocks.entries()) {
      if (block.lang === 'ts' && block.kind === 'test') writeFileSync(join(work, `example-${n}-typed.ts`), `export {};\n${block.code}`);
    }
    writeFileSync(
      join(work, 'tsconfig.json'),
      JSON.stringify({
        extends: '../../../../../tsconfig.base.json',
        compilerOptions: { noEmit: true, lib: ['ES2023', 'DOM'], types: ['node'], module: 'NodeNext', target: 'ES2022' },
        files,
      }),
    );
    const { code, stdout, stderr } = await run(
      process.execPath,
      [join(repoDir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(work, 'tsconfig.json')],
      60_000,
    );
    assert.equal(code, 0, `${stdout}${stderr}`);
  });

  for (const [n, block] of blocks.entries()) {
    if (block.lang !== 'python' || block.kind !== 'test') continue;
    test(
      `docs/client.md:${block.line} (Python) runs and prints ${JSON.stringify(block.expect)}`,
      { skip: pythonAvailable ? false : 'python3 is not installed' },
      async () => {
        const file = join(work, `example_${n}.py`);
        writeFileSync(file, block.code);
        const { code, stdout, stderr } = await run('python3', [file]);
        assert.equal(code, 0, `exit ${code}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`);
        assert.ok(stdout.includes(block.expect!), `stdout lacks ${JSON.stringify(block.expect)}:\n${stdout}`);
      },
    );
  }
});
