/**
 * The `command` kind against real child processes (test/operations/fixtures/program.mjs)
 * through the HTTP app: the stdout protocol, the failures (missing program,
 * non-zero exit, garbage, a flood), and cancel, timeout and exit leaving no
 * process of the program's tree behind.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { json, startHttpServer, type JsonBody, type TestHttpServer } from '../helpers/http.js';
import { waitFor } from '../helpers/process.js';
import { HAS_PROCFS, processesOf } from '../helpers/procfs.js';
import { loadConfig } from '../../src/config/index.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const PROGRAM = join(FIXTURES, 'program.mjs');
const program = (extra: Record<string, unknown> = {}) => ({ command: { run: [process.execPath, PROGRAM], grace: 0.3, ...extra } });

const SCRATCH = mkdtempSync(join(tmpdir(), 'errand-command-'));
/** A script without any execute permission. */
const NOT_EXECUTABLE = join(SCRATCH, 'not-executable.sh');
writeFileSync(NOT_EXECUTABLE, '#!/bin/sh\necho "{}"\n');
chmodSync(NOT_EXECUTABLE, 0o644);

let t: TestHttpServer;
before(async () => {
  t = await startHttpServer({
    overrides: {
      operations: {
        prog: program({ env: { GREETING: 'hello' }, cwd: FIXTURES }),
        // One attempt, so a failure is final at once.
        once: { ...program(), retry: { max_attempts: 1 } },
        small: { ...program({ max_output: '64kb' }), retry: { max_attempts: 1 } },
        quick: { ...program(), timeout: 1, retry: { max_attempts: 1 } },
        stubborn: { ...program({ grace: 0.5 }), timeout: 1, retry: { max_attempts: 1 } },
        missing: { command: { run: ['errand-no-such-program-xyz', '--flag'] }, retry: { max_attempts: 1 } },
        tempfail: { ...program(), retry: { max_attempts: 2, initial_delay: 0.05 } },
        denied: { command: { run: [NOT_EXECUTABLE] }, retry: { max_attempts: 1 } },
        // Waits for every child it has before answering: the guard must not be one of them.
        reaper: {
          command: { run: ['perl', '-e', '1 while wait() != -1; print qq({"result": "reaped"}\\n)'], grace: 0.3 },
          retry: { max_attempts: 1 },
        },
      },
    },
  });
});
after(async () => {
  await t?.close();
  rmSync(SCRATCH, { recursive: true, force: true });
});

async function runSync(operation: string, input: unknown): Promise<JsonBody> {
  const res = await t.inject({ method: 'POST', url: `/v1/operations/${operation}?async=false`, payload: input as object });
  const body = json(res);
  assert.ok(body.request_id, res.body);
  if (body.status === 'completed' || body.status === 'failed') return body;
  return json(await t.inject({ method: 'GET', url: `/v1/requests/${(await t.waitTerminal(body.request_id as string, 10_000)).id}` }));
}

async function submitAsync(operation: string, input: unknown): Promise<string> {
  const res = await t.inject({ method: 'POST', url: `/v1/operations/${operation}?async=true`, payload: input as object });
  assert.equal(res.statusCode, 202, res.body);
  return json(res).request_id as string;
}

async function outputs(id: string): Promise<unknown[]> {
  const events = await t.server.store.eventListAfter({ id, afterSeq: 0, limit: 1000 });
  return events.filter((e) => e.type === 'output').map((e) => e.data);
}

/** The pids the `tree`/`orphan` modes report in their first output chunk. */
async function treePids(id: string): Promise<{ pid: number; grandchild: number }> {
  return waitFor(async () => (await outputs(id))[0] as { pid: number; grandchild: number } | undefined, {
    what: `pids of ${id}`,
    timeoutMs: SAFETY_NET_MS,
  });
}

/** True while `pid` runs (a zombie awaiting its reaper has stopped running). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function assertGone(pids: number[]): Promise<void> {
  await waitFor(() => pids.every((p) => !running(p)), { what: `processes ${pids.join(', ')} to end`, timeoutMs: SAFETY_NET_MS });
}

describe('command kind: the stdout protocol', () => {
  test('progress lines, output chunks and the result line; input on stdin, env and cwd applied', async () => {
    const body = await runSync('prog', { mode: 'steps', text: 'one two three' });
    assert.equal(body.status, 'completed', JSON.stringify(body));
    assert.deepEqual(body.result, { words: 3, env_request_id: body.request_id, greeting: 'hello', cwd: FIXTURES });
    assert.equal(body.progress, 100);
    assert.equal(body.total_steps, 3);
    assert.equal(body.completed_steps, 3);
    assert.deepEqual(await outputs(body.request_id as string), [{ text: 'one' }, { text: 'two' }, { text: 'three' }]);
  });

  test('without a result line, the final JSON line is the result; other lines are ignored', async () => {
    const body = await runSync('prog', { mode: 'final-line', value: 42 });
    assert.equal(body.status, 'completed');
    assert.deepEqual(body.result, { echoed: 42 });
  });

  test('stdout that is one JSON document over several lines is the result', async () => {
    const body = await runSync('prog', { mode: 'pretty' });
    assert.deepEqual(body.result, { nested: { list: [1, 2] } });
  });

  test('no stdout at all gives a null result', async () => {
    const body = await runSync('prog', { mode: 'silent' });
    assert.equal(body.status, 'completed');
    assert.equal(body.result, null);
  });

  test('an {"error": …} line fails the request with the type the program chose', async () => {
    const body = await runSync('once', { mode: 'report-error' });
    assert.equal(body.status, 'failed');
    assert.equal(body.error.type, 'quota_exceeded');
    assert.equal(body.error.message, 'quota exhausted');
    assert.equal(body.error.retryable, false);
  });
});

describe('command kind: bad programs fail clearly', () => {
  test('a missing program → command_not_found, not retried', async () => {
    const body = await runSync('missing', {});
    assert.equal(body.status, 'failed');
    assert.equal(body.error.type, 'command_not_found');
    assert.equal(body.error.retryable, false);
    assert.match(body.error.message as string, /could not be started: it was not found/);
    assert.ok(!(body.error.message as string).includes('errand-no-such-program-xyz'), 'the path is for the log, not the tenant');
    assert.equal(body.error.details.code, 'ENOENT');
  });

  test('a program without execute permission → command_not_found saying so', async () => {
    const body = await runSync('denied', {});
    assert.equal(body.status, 'failed');
    assert.equal(body.error.type, 'command_not_found');
    assert.match(body.error.message as string, /not executable/);
  });

  test('a non-zero exit → command_failed with the exit status; the tail of stderr stays out of the request', async () => {
    const body = await runSync('once', { mode: 'exit', code: 3 });
    assert.equal(body.status, 'failed');
    assert.equal(body.error.type, 'command_failed');
    assert.equal(body.error.retryable, false);
    assert.equal(body.error.message, 'The program exited with status 3');
    assert.deepEqual(body.error.details, { exit_code: 3, signal: null });
    assert.ok(!JSON.stringify(body).includes('disk on fire'));
  });

  test('exit status 75 (EX_TEMPFAIL) is retried', async () => {
    const id = await submitAsync('tempfail', { mode: 'exit', code: 75 });
    const final = await t.waitTerminal(id, 10_000);
    assert.equal(final.status, 'failed');
    assert.equal(final.attempt, 2, 'both attempts ran');
    assert.equal(final.error?.type, 'command_failed');
  });

  test('garbage on stdout → command_invalid_output (the start of stdout goes to the log)', async () => {
    const body = await runSync('once', { mode: 'garbage' });
    assert.equal(body.status, 'failed');
    assert.equal(body.error.type, 'command_invalid_output');
    assert.match(body.error.message as string, /printed no JSON result/);
  });

  test('a stdout flood is cut at max_output → command_output_too_large, and the program is stopped', async () => {
    const body = await runSync('small', { mode: 'flood' });
    assert.equal(body.status, 'failed');
    assert.equal(body.error.type, 'command_output_too_large');
    assert.equal(body.error.details.limit_bytes, 64 * 1024);
  });
});

describe('command kind: no process outlives its request', () => {
  test('cancel sends SIGTERM to the process group: the program and its grandchild end', async () => {
    const id = await submitAsync('prog', { mode: 'tree' });
    const { pid, grandchild } = await treePids(id);
    assert.ok(running(pid) && running(grandchild));
    const res = await t.inject({ method: 'DELETE', url: `/v1/requests/${id}` });
    assert.equal(res.statusCode, 200, res.body);
    await assertGone([pid, grandchild]);
  });

  test('a task timeout stops the tree; processes ignoring SIGTERM get SIGKILL after the grace period', async () => {
    const id = await submitAsync('stubborn', { mode: 'tree', stubborn: true });
    const { pid, grandchild } = await treePids(id);
    const final = await t.waitTerminal(id, 10_000);
    assert.equal(final.status, 'failed');
    assert.equal(final.error?.type, 'task_timeout');
    await assertGone([pid, grandchild]);
  });

  test('a plain task timeout fails the request and ends the tree', async () => {
    const id = await submitAsync('quick', { mode: 'tree' });
    const { pid, grandchild } = await treePids(id);
    const final = await t.waitTerminal(id, 10_000);
    assert.equal(final.error?.type, 'task_timeout');
    await assertGone([pid, grandchild]);
  });

  test('what a program leaves running when it exits is stopped; its result stands', async () => {
    const body = await runSync('prog', { mode: 'orphan' });
    assert.equal(body.status, 'completed');
    const { pid, grandchild } = (await outputs(body.request_id as string))[0] as { pid: number; grandchild: number };
    assert.equal((body.result as { left: number }).left, grandchild);
    await assertGone([pid, grandchild]);
  });
});

describe('command kind: the process group guard', () => {
  test(
    'once the program has exited and the grace period passed, nothing of the request runs, the guard included',
    { skip: HAS_PROCFS ? false : 'needs /proc' },
    async () => {
      const body = await runSync('prog', { mode: 'final-line', value: 1 });
      assert.equal(body.status, 'completed');
      await waitFor(() => processesOf(body.request_id as string).length === 0, {
        what: `the processes of ${body.request_id as string} to end`,
        timeoutMs: 10_000,
      });
    },
  );

  test('a program that waits for all of its children is not held up by the guard', { skip: perlMissing() }, async () => {
    const body = await runSync('reaper', {});
    assert.equal(body.status, 'completed', JSON.stringify(body));
    assert.equal(body.result, 'reaped');
  });
});

describe('command kind: env_passthrough is validated', () => {
  const issues = (passthrough: unknown): string[] => {
    try {
      loadConfig({
        env: {},
        baseDir: SCRATCH,
        overrides: { operations: { job: { command: { run: ['x'], env_passthrough: passthrough } } } },
      });
      return [];
    } catch (error) {
      return [...((error as { issues?: string[] }).issues ?? [String(error)])];
    }
  };

  test("names are environment variable names; ERRAND_* (Errand's own keys and settings) are refused", () => {
    assert.deepEqual(issues(['AWS_REGION', 'http_proxy']), []);
    assert.match(issues(['NOT A NAME']).join('\n'), /operations\.job\.command\.env_passthrough\[0\]: must be an environment variable name/);
    assert.match(issues(['ERRAND_ADMIN_KEYS']).join('\n'), /operations\.job\.command\.env_passthrough\[0\]: ERRAND_\* variables/);
  });

  test('the default passes nothing through', () => {
    const config = loadConfig({ env: {}, baseDir: SCRATCH, overrides: { operations: { job: { command: { run: ['x'] } } } } });
    assert.deepEqual(config.operations.job?.command?.env_passthrough, []);
  });
});

function perlMissing(): string | false {
  const path = process.env.PATH ?? '';
  return path.split(':').some((dir) => dir !== '' && existsSync(join(dir, 'perl'))) ? false : 'needs perl on PATH';
}
