/**
 * Issue 11, item 9: what tenants and the terminal see must not carry the
 * server's internals.
 *
 * - A handler that throws something not written for tenants (a TypeError, an
 *   Error naming a file or an upstream URL with its token, a string) records a
 *   failure with its type and a plain message only; the full error, stack
 *   included, is in the server log under the request id. A failure written for
 *   tenants (boolean `retryable`) keeps its message and details.
 * - A `command` program that fails (a traceback naming files on stderr, a
 *   missing program at a path) gives the tenant the type, "The program exited
 *   with status 1" and `{exit_code, signal}`; the program, its folder and the
 *   stderr tail are in the log under the request id.
 * - A 5xx caused by another error answers the catalog message, not the cause's.
 * - The start-up banner masks the database password.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { toErrandError } from '../../src/http/errors.js';
import { ErrandError } from '../../src/model/index.js';
import { createServer, type ErrandServer } from '../../src/server.js';
import { dropSchema, freshSchema, pgSkipReason, schemaUrl } from '../helpers/pg.js';
import { killAllServers, makeTempDir, startServer, waitFor, writeConfig } from '../helpers/process.js';

const SECRET_PATH = '/home/operator/secret-project/handlers/leaky.ts';
const UPSTREAM = 'https://internal-billing.corp.example/v2/charge?api_key=sk_live_51Hleak';

const OPERATIONS: Record<string, string> = {
  // A bug: a TypeError whose message and stack name the operator's files.
  'bug.mjs': `export default { async run() {
    const err = new TypeError("Cannot read properties of undefined (reading 'total') in ${SECRET_PATH}");
    err.stack = 'TypeError: ' + err.message + '\\n    at charge (${SECRET_PATH}:42:17)';
    throw err;
  } };\n`,
  // A library error naming an upstream URL with a token, with details of its own.
  'upstream.mjs': `export default { async run() {
    throw Object.assign(new Error('request to ${UPSTREAM} failed, reason: connect ECONNREFUSED 10.20.30.40:443'), { details: { url: '${UPSTREAM}' } });
  } };\n`,
  'string.mjs': `export default { async run() { throw 'could not open ${SECRET_PATH}'; } };\n`,
  // Written for the tenant: kept as it is.
  'deliberate.mjs': `export default { async run() {
    throw Object.assign(new Error('The invoice has no lines'), { retryable: false, type: 'empty_invoice', details: { field: 'lines' } });
  } };\n`,
};

describe('failures the tenant reads', () => {
  let dir: string;
  let server: ErrandServer;
  const logLines: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'errand-leaks-'));
    const operations: Record<string, unknown> = {};
    for (const [file, source] of Object.entries(OPERATIONS)) {
      writeFileSync(join(dir, file), source);
      operations[file.replace('.mjs', '')] = { module: `./${file}` };
    }
    // A command program that dies with a Python-style traceback naming the operator's files on stderr.
    const scripts = join(dir, 'secret-project', 'bin');
    mkdirSync(scripts, { recursive: true });
    const traceback = [
      'Traceback (most recent call last):',
      `  File "${SECRET_PATH}.py", line 12, in <module>`,
      "    conn = connect('postgres://billing:pw-9x2@db.corp:5432/billing')",
      'ConnectionRefusedError: [Errno 111] Connection refused',
    ].join('\n');
    operations['crashes'] = { command: { run: ['/bin/sh', '-c', `printf '%s\\n' "$0" >&2; exit 1`, traceback], cwd: scripts } };
    operations['vanished'] = { command: { run: [join(scripts, 'no-such-tool')], cwd: scripts } };
    const config = loadConfig({
      baseDir: dir,
      env: {},
      overrides: { store: { url: `sqlite:${join(dir, 'errand.db')}` }, operations, workflow: { retry: { max_attempts: 1 } } },
    });
    const log = pino({ level: 'warn' }, { write: (line: string) => void logLines.push(line) });
    server = await createServer({ config, log });
  });
  after(async () => {
    await server?.close(0);
    rmSync(dir, { recursive: true, force: true });
  });

  async function failWith(operation: string): Promise<{ id: string; error: Record<string, unknown>; body: string }> {
    const res = await server.app.inject({ method: 'POST', url: `/v1/operations/${operation}?async=true`, payload: {} });
    assert.equal(res.statusCode, 202, res.body);
    const id = (JSON.parse(res.body) as { request_id: string }).request_id;
    const done = await server.engine.waitForTerminal(id, 10_000);
    assert.equal(done?.status, 'failed', JSON.stringify(done));
    const status = await server.app.inject({ method: 'GET', url: `/v1/requests/${id}` });
    const body = status.body;
    return { id, error: (JSON.parse(body) as { error: Record<string, unknown> }).error, body };
  }

  test('a TypeError naming files: type and a plain message for the tenant, message and stack in the log', async () => {
    const { id, error, body } = await failWith('bug');
    assert.equal(error.type, 'handler_error');
    assert.equal(error.retryable, false);
    assert.doesNotMatch(body, /secret-project|\/home\/|reading 'total'|at charge/);
    assert.match(error.message as string, /TypeError/);
    const logged = logLines.filter((line) => line.includes(id)).join('\n');
    assert.match(logged, /secret-project\/handlers\/leaky\.ts:42:17/, 'the stack is logged under the request id');
  });

  test('an upstream URL with its token and the error’s own details stay out of the request', async () => {
    const { id, error, body } = await failWith('upstream');
    assert.equal(error.type, 'handler_error');
    assert.doesNotMatch(body, /internal-billing|sk_live|10\.20\.30\.40/);
    assert.equal(error.details, undefined);
    assert.ok(logLines.some((line) => line.includes(id) && line.includes('sk_live_51Hleak')));
  });

  test('a thrown string is not repeated either', async () => {
    const { body } = await failWith('string');
    assert.doesNotMatch(body, /secret-project/);
  });

  test('a command program printing a traceback: the exit status for the tenant; traceback, program and folder in the log', async () => {
    const { id, error, body } = await failWith('crashes');
    assert.deepEqual(error, {
      type: 'command_failed',
      message: 'The program exited with status 1',
      retryable: false,
      details: { exit_code: 1, signal: null },
    });
    assert.doesNotMatch(body, /Traceback|secret-project|\/home\/|pw-9x2|db\.corp|\/bin\/sh|ConnectionRefused/);
    const logged = logLines.filter((line) => line.includes(id)).join('\n');
    assert.match(logged, /Traceback.*secret-project\/handlers\/leaky\.ts\.py/, 'stderr is logged under the request id');
    assert.match(logged, /secret-project\/bin/, 'so is the working folder');
  });

  test('a command program that cannot be started: neither its path nor the folder reach the tenant', async () => {
    const { id, error, body } = await failWith('vanished');
    assert.equal(error.type, 'command_not_found');
    assert.deepEqual(error.details, { code: 'ENOENT' });
    assert.doesNotMatch(body, /secret-project|no-such-tool|errand-leaks/);
    assert.ok(logLines.some((line) => line.includes(id) && line.includes('no-such-tool')));
  });

  test('a failure written for the tenant keeps its type, message and details', async () => {
    const { error } = await failWith('deliberate');
    assert.deepEqual(error, { type: 'empty_invoice', message: 'The invoice has no lines', retryable: false, details: { field: 'lines' } });
  });
});

test('a 5xx caused by another error answers the catalog message; the cause is for the log', () => {
  const cause = Object.assign(new Error('connect ECONNREFUSED 10.9.8.7:5432'), { code: 'ECONNREFUSED' });
  const thrown = new ErrandError(
    'store_unavailable',
    'The PostgreSQL store is unavailable (connect ECONNREFUSED 10.9.8.7:5432); retry shortly.',
    { cause },
  );
  const answered = toErrandError(thrown);
  assert.equal(answered.type, 'store_unavailable');
  assert.doesNotMatch(JSON.stringify(answered.toEnvelope()), /10\.9\.8\.7/);
  assert.equal(answered.retryAfterSeconds, 1);
  // A 4xx written for the caller is answered as it is.
  const mine = new ErrandError('validation_error', 'message must be a string', { field: 'message', cause: new Error('zod') });
  assert.equal(toErrandError(mine).message, 'message must be a string');
  // Every 503 says when to come back.
  assert.equal(toErrandError(new ErrandError('shutting_down')).retryAfterSeconds, 1);
});

describe('the start-up banner', { timeout: 60_000 }, () => {
  after(killAllServers);

  test('masks the database password', async (t) => {
    const skip = await pgSkipReason();
    if (skip) return t.skip(skip);
    const schema = freshSchema();
    const { dir, cleanup } = makeTempDir('errand-banner-');
    t.after(async () => {
      cleanup();
      await dropSchema(schema);
    });
    // Trust auth ignores a password it never asks for; a database that asks gets its own.
    const url = new URL(schemaUrl(schema));
    if (url.password === '') url.password = 'banner-s3cret-pw';
    const password = decodeURIComponent(url.password);
    const config = writeConfig(dir, { store: { url: url.toString() }, logging: { level: 'silent' } });
    const node = await startServer({ config });
    try {
      // The banner and the readiness answer travel on different pipes: wait for the banner itself.
      await waitFor(() => /\n {2}try /.test(node.stderr), { timeoutMs: 10_000, what: 'the banner on stderr' });
      assert.match(node.stderr, /store\s+postgres/, node.diagnostics());
      assert.ok(!node.stderr.includes(password), `the banner shows the password:\n${node.stderr}`);
      assert.match(node.stderr, /:\*\*\*@/);
    } finally {
      node.kill('SIGTERM');
      await node.waitExit();
    }
  });
});
