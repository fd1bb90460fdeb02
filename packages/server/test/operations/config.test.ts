/** The config rules for operation kinds: exactly one of module/http/command/llm, and clear messages. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';

function issuesOf(operations: Record<string, unknown>): readonly string[] {
  try {
    loadConfig({ env: {}, baseDir: '/srv/app', overrides: { operations } });
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
}

describe('operation kinds in the config', () => {
  test('an operation with none of module, http, command or llm is refused, naming the operation', () => {
    assert.deepEqual(issuesOf({ empty: { timeout: 5 } }), [
      'operations.empty: needs one of module (a .js/.mjs/.ts file), http, command or llm',
    ]);
  });

  test('two kinds at once are refused, naming the extra field', () => {
    assert.deepEqual(issuesOf({ both: { module: './a.mjs', http: { url: 'http://127.0.0.1:9/x' } } }), [
      'operations.both.http: cannot be combined with module: an operation has exactly one of module, http, command or llm',
    ]);
  });

  test('command.run must be a list; a string says how to write it', () => {
    const [issue] = issuesOf({ sh: { command: { run: 'node script.mjs' } } });
    assert.match(issue ?? '', /^operations\.sh\.command\.run: must be a list: the program and its arguments/);
  });

  test('an http url must be http(s); a method must be known', () => {
    const issues = issuesOf({ up: { http: { url: 'ftp://example.com/x', method: 'TRACE' } } });
    assert.ok(
      issues.some((i) => i.startsWith('operations.up.http.url: must be an http(s) URL')),
      issues.join('\n'),
    );
    assert.ok(
      issues.some((i) => i.startsWith('operations.up.http.method:')),
      issues.join('\n'),
    );
  });

  test('defaults: POST, 10 MB answers, 5 s grace, 1 MB of output, cwd = the config folder', () => {
    const config = loadConfig({
      env: {},
      baseDir: '/srv/app',
      overrides: {
        operations: {
          up: { http: { url: 'http://127.0.0.1:9/x' } },
          job: { command: { run: ['./job.sh'] } },
          sub: { command: { run: ['x'], cwd: 'work' } },
        },
      },
    });
    assert.equal(config.operations.up?.http?.method, 'POST');
    assert.equal(config.operations.up?.http?.max_response, 10 * 1024 * 1024);
    assert.equal(config.operations.job?.command?.grace, 5000);
    assert.equal(config.operations.job?.command?.max_output, 1024 * 1024);
    assert.equal(config.operations.job?.command?.cwd, '/srv/app');
    assert.equal(config.operations.sub?.command?.cwd, '/srv/app/work');
  });
});
