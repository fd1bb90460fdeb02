/**
 * Config loading: defaults, the documented contract file, validation (all
 * problems at once, each with its path), interpolation, environment overrides,
 * the seeds' alias spellings and duration strings. Files are written to a fresh
 * temp dir per test; the environment is always passed explicitly.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { ConfigError, loadConfig, type ErrandConfig } from '../../src/config/index.js';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length > 0) rmSync(dirs.pop() as string, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'errand-config-'));
  dirs.push(dir);
  return dir;
}

/** Writes `yaml` as errand.yaml in a fresh dir and loads it. */
function load(yaml: string, env: Record<string, string> = {}, file = 'errand.yaml'): ErrandConfig {
  const dir = tempDir();
  const path = join(dir, file);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, yaml);
  return loadConfig({ path, env });
}

/** The ConfigError thrown by loading `yaml`. */
function loadError(yaml: string, env: Record<string, string> = {}): ConfigError {
  try {
    load(yaml, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the config to be rejected');
}

/** The issue whose path is `path` (issues read `path: message`). */
function issueAt(error: ConfigError, path: string): string {
  const found = error.issues.find((i) => i.startsWith(`${path}:`));
  assert.ok(found, `no issue at ${path}; issues:\n${error.issues.join('\n')}`);
  return found;
}

const CONTRACT_YAML = `
server:   { host: 127.0.0.1, port: 8001 }
store:    { url: "sqlite:./data/errand.db" }
auth:
  keys:       [ { key: "fmc_alpha", tenant: alpha }, { key: "fmc_beta", tenant: beta } ]
  admin_keys: [ "adm_secret" ]
chat:     { operation: assistant }
triggers: { github-issue: { operation: triage } }
operations:
  assistant: { module: ./operations/assistant.ts }
  triage:    { module: ./operations/triage.mjs, timeout: 120, retry: { max_attempts: 5 }, concurrency: 4 }
`;

describe('defaults', () => {
  test('no file: documented defaults, store under <baseDir>/data/', () => {
    const dir = tempDir();
    const config = loadConfig({ baseDir: dir, env: {} });
    assert.equal(config.source, null);
    assert.equal(config.baseDir, dir);
    assert.equal(config.server.port, 8001);
    assert.equal(config.server.host, '127.0.0.1');
    assert.equal(config.workflow.timeouts.task_timeout, 300_000);
    assert.equal(config.workflow.timeouts.workflow_timeout, 3_600_000);
    assert.equal(config.workflow.retry.max_attempts, 3);
    assert.equal(config.workflow.retry.initial_delay, 1000);
    assert.equal(config.workflow.retry.max_delay, 60_000);
    assert.equal(config.workflow.retry.backoff_factor, 2.0);
    assert.equal(config.async.mode, 'auto');
    assert.equal(config.async.webhook_retries, 3);
    assert.equal(config.async.webhook_timeout, 10_000);
    assert.equal(config.store.url, `sqlite:${join(dir, 'data', 'errand.db')}`);
    assert.deepEqual(config.auth.keys, []);
    assert.deepEqual(config.auth.admin_keys, []);
    assert.deepEqual(config.operations, {});
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.server), 'frozen');
  });

  test('empty file: same defaults, store resolved against the config file folder', () => {
    const config = load('', {}, 'conf/errand.yaml');
    const folder = join(config.source as string, '..');
    assert.equal(config.baseDir, folder);
    assert.equal(config.server.port, 8001);
    assert.equal(config.workflow.timeouts.task_timeout, 300_000);
    assert.match(config.store.url, /^sqlite:\//);
    assert.equal(config.store.url, `sqlite:${join(folder, 'data', 'errand.db')}`);
  });

  test('sqlite::memory: and absolute sqlite paths are left as they are', () => {
    assert.equal(load('store: { url: "sqlite::memory:" }').store.url, 'sqlite::memory:');
    assert.equal(load('store: { url: "sqlite:/var/lib/errand/e.db" }').store.url, 'sqlite:/var/lib/errand/e.db');
  });
});

describe('the contract file', () => {
  test('loads, with module paths resolved relative to the config file', () => {
    const config = load(CONTRACT_YAML, {}, 'deploy/errand.yaml');
    const folder = config.baseDir;
    assert.equal(folder, join(config.source as string, '..'));
    assert.equal(config.server.host, '127.0.0.1');
    assert.equal(config.server.port, 8001);
    assert.equal(config.store.url, `sqlite:${join(folder, 'data', 'errand.db')}`);
    assert.deepEqual(config.auth.keys, [
      { key: 'fmc_alpha', tenant: 'alpha' },
      { key: 'fmc_beta', tenant: 'beta' },
    ]);
    assert.deepEqual(config.auth.admin_keys, ['adm_secret']);
    assert.equal(config.chat.operation, 'assistant');
    assert.deepEqual(config.triggers['github-issue'], { operation: 'triage' });
    assert.equal(config.operations.assistant?.module, join(folder, 'operations', 'assistant.ts'));
    const triage = config.operations.triage;
    assert.ok(triage);
    assert.equal(triage.module, join(folder, 'operations', 'triage.mjs'));
    assert.equal(triage.timeout, 120_000);
    assert.equal(triage.retry?.max_attempts, 5);
    assert.equal(triage.concurrency, 4);
  });
});

describe('validation', () => {
  test('unknown keys are rejected with their path', () => {
    const error = loadError(`
server:
  prot: 9000
operations:
  echo: { module: ./echo.mjs, modul: x }
retention: { ttl: 7d }
colour: blue
`);
    assert.match(issueAt(error, 'server.prot'), /unknown key/);
    assert.match(issueAt(error, 'operations.echo.modul'), /unknown key/);
    assert.match(issueAt(error, 'colour'), /unknown key/);
  });

  test('several invalid values are reported together, each with its path', () => {
    const error = loadError(`
server: { port: 70000 }
workflow:
  timeouts: { task_timeout: soon }
  retry: { max_attempts: 0, backoff_factor: 0.5 }
logging: { level: loud }
async: { mode: sometimes, webhook_url: "ftp://example.com" }
auth:
  keys: [ { key: short, tenant: alpha } ]
`);
    for (const path of [
      'server.port',
      'workflow.timeouts.task_timeout',
      'workflow.retry.max_attempts',
      'workflow.retry.backoff_factor',
      'logging.level',
      'async.mode',
      'async.webhook_url',
      'auth.keys[0].key',
    ]) {
      issueAt(error, path);
    }
    assert.ok(error.issues.length >= 8, error.issues.join('\n'));
    for (const path of ['server.port', 'logging.level']) assert.ok(error.message.includes(path), 'message lists every issue');
  });

  test('chat.operation naming an undeclared operation is reported', () => {
    const error = loadError(`
chat: { operation: assistant }
operations:
  other: { module: ./other.mjs }
`);
    assert.match(issueAt(error, 'chat.operation'), /assistant/);
  });

  test('a trigger naming an undeclared operation is reported', () => {
    const error = loadError('triggers: { gh: { operation: triage } }');
    assert.match(issueAt(error, 'triggers.gh.operation'), /triage/);
  });

  test('limits: headers_timeout above request_timeout, and a rate limit on an undeclared operation, are reported', () => {
    const error = loadError(`
limits:
  headers_timeout: 2m
  request_timeout: 1m
  submissions: { operations: { missing: { rate: 1, burst: 1 } } }
`);
    assert.match(issueAt(error, 'limits.headers_timeout'), /request_timeout/);
    assert.match(issueAt(error, 'limits.submissions.operations.missing'), /missing/);
  });

  test('a duplicated API key is reported', () => {
    const error = loadError(`
auth:
  keys: [ { key: same_key_1, tenant: a }, { key: same_key_1, tenant: b } ]
  admin_keys: [ same_key_1 ]
`);
    issueAt(error, 'auth.keys[1].key');
    issueAt(error, 'auth.admin_keys[0]');
  });

  test('a YAML syntax error is reported with its line', () => {
    const error = loadError('server:\n  port: 8001\n  host: [unclosed\nstore: {}\n');
    assert.equal(error.issues.length, 1);
    assert.match(error.issues[0] as string, /YAML syntax error/);
    assert.match(error.issues[0] as string, /line \d+/);
    const line = Number(/line (\d+)/.exec(error.issues[0] as string)?.[1]);
    assert.ok(line >= 3 && line <= 5, `line ${line}`);
  });

  test('a YAML syntax error on a known line', () => {
    const error = loadError('server:\n  port: 8001\nstore:\n\turl: x\n');
    const line = Number(/line (\d+)/.exec(error.issues[0] as string)?.[1]);
    assert.equal(line, 4, error.issues.join('\n'));
  });

  test('a top level that is not a mapping is rejected', () => {
    const error = loadError('- just\n- a list\n');
    assert.match(error.issues[0] as string, /top level/);
  });

  test('a missing file is a ConfigError', () => {
    assert.throws(() => loadConfig({ path: join(tempDir(), 'nope.yaml'), env: {} }), ConfigError);
  });
});

describe('interpolation', () => {
  test('${VAR} and ${VAR:-default} inside strings', () => {
    const config = load(
      `
store: { url: "sqlite:\${DATA_DIR}/errand.db" }
async: { webhook_url: "\${HOOK_URL:-https://hooks.example.com/errand}" }
auth:
  keys: [ { key: "\${ALPHA_KEY}", tenant: alpha } ]
`,
      { DATA_DIR: '/srv/errand', ALPHA_KEY: 'fmc_from_env' },
    );
    assert.equal(config.store.url, 'sqlite:/srv/errand/errand.db');
    assert.equal(config.async.webhook_url, 'https://hooks.example.com/errand');
    assert.deepEqual(config.auth.keys, [{ key: 'fmc_from_env', tenant: 'alpha' }]);
  });

  test('a set variable wins over the default', () => {
    const config = load('async: { webhook_url: "${HOOK_URL:-https://a.example.com}" }', { HOOK_URL: 'https://b.example.com/x' });
    assert.equal(config.async.webhook_url, 'https://b.example.com/x');
  });

  test('a missing variable is reported with its path and name', () => {
    const error = loadError(`
auth:
  keys: [ { key: "\${MISSING_KEY}", tenant: alpha } ]
store: { url: "\${ALSO_MISSING}" }
`);
    assert.match(issueAt(error, 'auth.keys[0].key'), /MISSING_KEY/);
    assert.match(issueAt(error, 'store.url'), /ALSO_MISSING/);
  });

  test('a whole-value ${VAR} in a numeric field is read as a number', () => {
    // `port: ${PORT:-8001}` is the natural way to write a port that the platform may set.
    const dflt = load('server:\n  port: ${PORT:-8001}\n');
    assert.equal(dflt.server.port, 8001);
    const set = load('server:\n  port: ${PORT:-8001}\n', { PORT: '9123' });
    assert.equal(set.server.port, 9123);
  });
});

describe('environment overrides', () => {
  test('ERRAND_SERVER__PORT=9000 is read as a number and wins over the file', () => {
    const config = load('server: { port: 8001 }', { ERRAND_SERVER__PORT: '9000' });
    assert.equal(config.server.port, 9000);
  });

  test('nested overrides (ERRAND_WORKFLOW__TIMEOUTS__TASK_TIMEOUT=5m)', () => {
    const config = load('', { ERRAND_WORKFLOW__TIMEOUTS__TASK_TIMEOUT: '5m', ERRAND_LOGGING__LEVEL: 'warn' });
    assert.equal(config.workflow.timeouts.task_timeout, 300_000);
    assert.equal(config.logging.level, 'warn');
  });

  test('an override that names an unknown key is rejected like one in the file', () => {
    const error = loadError('', { ERRAND_SERVER__PROT: '9000' });
    assert.match(issueAt(error, 'server.prot'), /unknown key/);
  });

  test('an override with a bad value is reported at its path', () => {
    const error = loadError('', { ERRAND_SERVER__PORT: 'eighty' });
    issueAt(error, 'server.port');
  });

  test('ERRAND_API_KEYS and ERRAND_ADMIN_KEYS append to the file’s keys', () => {
    const config = load(
      `
auth:
  keys: [ { key: file_key_1, tenant: gamma } ]
  admin_keys: [ file_admin_1 ]
`,
      { ERRAND_API_KEYS: 'k1key123:alpha,k2key123:beta', ERRAND_ADMIN_KEYS: 'adm_env_1, adm_env_2' },
    );
    assert.deepEqual(config.auth.keys, [
      { key: 'file_key_1', tenant: 'gamma' },
      { key: 'k1key123', tenant: 'alpha' },
      { key: 'k2key123', tenant: 'beta' },
    ]);
    assert.deepEqual(config.auth.admin_keys, ['file_admin_1', 'adm_env_1', 'adm_env_2']);
  });

  test('ERRAND_API_KEYS with no file', () => {
    const config = loadConfig({ baseDir: tempDir(), env: { ERRAND_API_KEYS: 'k1key123:alpha,k2key123:beta' } });
    assert.deepEqual(config.auth.keys, [
      { key: 'k1key123', tenant: 'alpha' },
      { key: 'k2key123', tenant: 'beta' },
    ]);
  });

  test('a malformed ERRAND_API_KEYS entry is reported', () => {
    const error = loadError('', { ERRAND_API_KEYS: 'k1key123:alpha,notenant' });
    assert.ok(
      error.issues.some((i) => i.startsWith('ERRAND_API_KEYS:')),
      error.issues.join('\n'),
    );
  });

  test('overrides passed in code win over the environment', () => {
    const dir = tempDir();
    const config = loadConfig({ baseDir: dir, env: { ERRAND_SERVER__PORT: '9000' }, overrides: { server: { port: 9001 } } });
    assert.equal(config.server.port, 9001);
  });
});

describe('seed aliases', () => {
  test('overlord.workflow.timeouts.task_timeout: 600', () => {
    const config = load('overlord:\n  workflow:\n    timeouts:\n      task_timeout: 600\n');
    assert.equal(config.workflow.timeouts.task_timeout, 600_000);
    assert.equal(config.workflow.timeouts.workflow_timeout, 3_600_000);
  });

  test('workflow.task_timeout: 300 and workflow.workflow_timeout', () => {
    const config = load('workflow:\n  task_timeout: 45\n  workflow_timeout: 900\n');
    assert.equal(config.workflow.timeouts.task_timeout, 45_000);
    assert.equal(config.workflow.timeouts.workflow_timeout, 900_000);
    const seed = load('workflow:\n  task_timeout: 300\n');
    assert.equal(seed.workflow.timeouts.task_timeout, 300_000);
  });

  test('overlord.workflow with the flat task_timeout spelling', () => {
    const config = load('overlord:\n  workflow:\n    task_timeout: 120\n    retry: { max_attempts: 4 }\n');
    assert.equal(config.workflow.timeouts.task_timeout, 120_000);
    assert.equal(config.workflow.retry.max_attempts, 4);
  });

  test('giving both spellings is reported', () => {
    const both = loadError('workflow: { task_timeout: 10 }\noverlord: { workflow: { task_timeout: 20 } }\n');
    assert.ok(
      both.issues.some((i) => i.startsWith('overlord.workflow:')),
      both.issues.join('\n'),
    );
    const twice = loadError('workflow: { task_timeout: 10, timeouts: { task_timeout: 20 } }\n');
    issueAt(twice, 'workflow.task_timeout');
    const other = loadError('overlord: { agents: 3 }\n');
    issueAt(other, 'overlord.agents');
  });
});

describe('durations', () => {
  test('strings with units and plain seconds', () => {
    const config = load(`
workflow:
  timeouts: { task_timeout: "5m", workflow_timeout: 2h }
  retry: { initial_delay: "500ms", max_delay: 30s }
engine: { lease_duration: 45, heartbeat_interval: "1.5s" }
retention: { ttl: 7d, sweep_interval: "90" }
operations:
  op: { module: ./op.mjs, timeout: "500ms", workflow_timeout: 1.5 }
`);
    assert.equal(config.workflow.timeouts.task_timeout, 300_000);
    assert.equal(config.workflow.timeouts.workflow_timeout, 7_200_000);
    assert.equal(config.workflow.retry.initial_delay, 500);
    assert.equal(config.workflow.retry.max_delay, 30_000);
    assert.equal(config.engine.lease_duration, 45_000);
    assert.equal(config.engine.heartbeat_interval, 1500);
    assert.equal(config.retention.ttl, 7 * 86_400_000);
    assert.equal(config.retention.sweep_interval, 90_000);
    assert.equal(config.operations.op?.timeout, 500);
    assert.equal(config.operations.op?.workflow_timeout, 1500);
  });

  test('bad durations are reported at their path', () => {
    const error = loadError(`
workflow:
  timeouts: { task_timeout: "5 minutes", workflow_timeout: 0 }
operations:
  op: { module: ./op.mjs, timeout: -1 }
`);
    issueAt(error, 'workflow.timeouts.task_timeout');
    issueAt(error, 'workflow.timeouts.workflow_timeout');
    issueAt(error, 'operations.op.timeout');
  });

  test('async.threshold_seconds and async.webhook_timeout: written as seconds, parsed to milliseconds, units refused', () => {
    const config = load('async: { threshold_seconds: 2.5, webhook_timeout: 0.25 }');
    assert.equal(config.async.threshold_seconds, 2500);
    assert.equal(config.async.webhook_timeout, 250);
    assert.equal(load('').async.threshold_seconds, 30_000);
    // The file format is unchanged: a plain number of seconds, no unit strings, the same bounds.
    const error = loadError('async: { threshold_seconds: "30s", webhook_timeout: 301 }');
    issueAt(error, 'async.threshold_seconds');
    issueAt(error, 'async.webhook_timeout');
    // webhooks.lease is compared with the timeout in the same unit.
    issueAt(loadError('async: { webhook_timeout: 10 }\nwebhooks: { lease: 10s }'), 'webhooks.lease');
    assert.equal(load('async: { webhook_timeout: 10 }\nwebhooks: { lease: 11s }').webhooks.lease, 11_000);
  });

  test('engine.dead_node_timeout: 2 s by default, 0 turns it off, negative refused', () => {
    assert.equal(load('').engine.dead_node_timeout, 2000);
    assert.equal(load('engine: { dead_node_timeout: 500ms }').engine.dead_node_timeout, 500);
    assert.equal(load('engine: { dead_node_timeout: 0 }').engine.dead_node_timeout, 0);
    issueAt(loadError('engine: { dead_node_timeout: -1 }'), 'engine.dead_node_timeout');
    issueAt(loadError('engine: { dead_node_timeout: soon }'), 'engine.dead_node_timeout');
  });

  test('body_limit sizes', () => {
    assert.equal(load('server: { body_limit: 1kb }').server.body_limit, 1024);
    assert.equal(load('').server.body_limit, 1024 * 1024);
    issueAt(loadError('server: { body_limit: lots }'), 'server.body_limit');
  });
});

test('durations longer than a timer can wait are refused with the limit', async () => {
  assert.throws(
    () => loadConfig({ env: {}, overrides: { workflow: { timeouts: { workflow_timeout: '30d' } } } }),
    (err: unknown) =>
      err instanceof ConfigError && err.issues.some((i) => i.startsWith('workflow.timeouts.workflow_timeout:') && /24 days/.test(i)),
  );
});

test('server.trust_proxy: false by default; true, a hop count or a list of addresses and CIDRs; anything else is refused', async () => {
  const load = (trust_proxy: unknown) => loadConfig({ env: {}, overrides: { server: { trust_proxy } } }).server.trust_proxy;
  assert.equal(loadConfig({ env: {} }).server.trust_proxy, false);
  assert.equal(load(true), true);
  assert.equal(load(2), 2);
  assert.deepEqual(load(['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']), ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']);
  for (const bad of [['proxy.example'], ['10.0.0.0/33'], [], 0, 'yes']) {
    assert.throws(
      () => load(bad),
      (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.startsWith('server.trust_proxy')),
      JSON.stringify(bad),
    );
  }
  assert.equal(
    loadConfig({ env: {}, overrides: { limits: { failed_auth: { max: 0 } } } }).limits.failed_auth.max,
    0,
    'max 0: throttle off',
  );
});
