/**
 * Issue 11, item 5: a `command` program must not see the server's secrets.
 * The server's process environment holds admin and tenant keys, a provider
 * key and a database URL; a program that prints its environment must show
 * none of them — only the fixed base (PATH, HOME, LANG, LC_*, TZ, TMPDIR),
 * the operation's `env`, the names listed in `env_passthrough`, and Errand's
 * ERRAND_REQUEST_ID / ERRAND_OPERATION / ERRAND_ATTEMPT.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { json, startHttpServer, type TestHttpServer } from '../helpers/http.js';
import { SERVER_PACKAGE_DIR } from '../helpers/process.js';

const PROGRAM = join(SERVER_PACKAGE_DIR, 'test', 'operations', 'fixtures', 'program.mjs');

/** What the server process holds and no program may see. */
const SECRETS: Record<string, string> = {
  ERRAND_ADMIN_KEYS: 'adm_secret_do_not_leak',
  ERRAND_API_KEYS: 'key_secret_do_not_leak:alpha',
  ERRAND_STORE_URL: 'postgres://errand:hunter2@db.internal/errand',
  OPENAI_API_KEY: 'sk-secret-do-not-leak',
  DATABASE_URL: 'postgres://app:hunter2@db.internal/app',
};
const SHARED = { TOOL_REGION: 'eu-west-1', TZ: 'Europe/Paris', LANG: 'C.UTF-8', LC_TIME: 'C' };

const saved = new Map<string, string | undefined>();
function setEnv(vars: Record<string, string>): void {
  for (const [name, value] of Object.entries(vars)) {
    if (!saved.has(name)) saved.set(name, process.env[name]);
    process.env[name] = value;
  }
}
function restoreEnv(): void {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
}

let t: TestHttpServer;
before(async () => {
  setEnv({ ...SECRETS, ...SHARED });
  t = await startHttpServer({
    overrides: {
      operations: {
        plain: { command: { run: [process.execPath, PROGRAM], env: { GREETING: 'hello' } }, retry: { max_attempts: 1 } },
        passing: {
          command: { run: [process.execPath, PROGRAM], env_passthrough: ['TOOL_REGION', 'OPENAI_API_KEY', 'NOT_SET_ANYWHERE'] },
          retry: { max_attempts: 1 },
        },
      },
    },
  });
});
after(async () => {
  await t?.close();
  restoreEnv();
});

async function environmentOf(operation: string): Promise<Record<string, string>> {
  const res = await t.inject({ method: 'POST', url: `/v1/operations/${operation}?async=false`, payload: { mode: 'env' } });
  let body = json(res);
  if (body.status !== 'completed' && body.status !== 'failed') {
    await t.waitTerminal(body.request_id as string, 10_000);
    body = json(await t.inject({ method: 'GET', url: `/v1/requests/${body.request_id as string}` }));
  }
  assert.equal(body.status, 'completed', JSON.stringify(body));
  return body.result as Record<string, string>;
}

/** Names the program may see without asking: the base, Errand's own, and PWD (which sh exports). */
const BASE = /^(PATH|HOME|LANG|LANGUAGE|LC_[A-Z_]+|TZ|TMPDIR|PWD|ERRAND_(REQUEST_ID|OPERATION|ATTEMPT))$/;

describe('command programs get a minimal environment', () => {
  test('no secret of the server reaches the program; the base and the operation env do', async () => {
    const env = await environmentOf('plain');
    for (const [name, value] of Object.entries(SECRETS)) {
      assert.equal(env[name], undefined, `${name} leaked into the program's environment`);
      assert.ok(!Object.values(env).includes(value), `the value of ${name} leaked under another name`);
    }
    const unexpected = Object.keys(env).filter((name) => !BASE.test(name) && name !== 'GREETING');
    assert.deepEqual(unexpected, [], 'only the base, env and ERRAND_* variables are set');
    assert.equal(env.GREETING, 'hello');
    assert.equal(env.PATH, process.env.PATH);
    assert.equal(env.TZ, 'Europe/Paris');
    assert.equal(env.LANG, 'C.UTF-8');
    assert.equal(env.LC_TIME, 'C');
    assert.equal(env.ERRAND_OPERATION, 'plain');
    assert.equal(env.ERRAND_ATTEMPT, '1');
    assert.equal(env.TOOL_REGION, undefined, 'not passed through unless listed');
  });

  test('env_passthrough copies exactly the listed variables (those that are set)', async () => {
    const env = await environmentOf('passing');
    assert.equal(env.TOOL_REGION, 'eu-west-1');
    assert.equal(env.OPENAI_API_KEY, SECRETS.OPENAI_API_KEY, 'listed explicitly, so passed');
    assert.equal('NOT_SET_ANYWHERE' in env, false);
    for (const name of ['ERRAND_ADMIN_KEYS', 'ERRAND_API_KEYS', 'ERRAND_STORE_URL', 'DATABASE_URL'])
      assert.equal(env[name], undefined, name);
  });
});
