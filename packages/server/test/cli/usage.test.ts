/**
 * The built `errand` binary's command line: unknown commands, bad flags,
 * missing arguments and input that is not JSON print the mistake and the usage
 * and exit 2, before any call to a server; an unreachable server is one line
 * on stderr and exit 5; --help lists the commands, environment and exit codes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { freePort } from '../helpers/process.js';
import { runCli } from './cli.js';

/** A URL nothing listens on: a usage error must be reported before anything tries it (exit 2, not 5). */
async function deadUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

describe('usage errors exit 2 with the usage', () => {
  test('no command, an unknown command, an unknown flag, a missing argument', async () => {
    const url = await deadUrl();
    const cases: { args: string[]; says: RegExp; usage: RegExp }[] = [
      { args: [], says: /Usage: errand/, usage: /Commands:/ },
      { args: ['bogus'], says: /unknown command 'bogus'/, usage: /Usage: errand/ },
      { args: ['status', 'req_x', '--bogus'], says: /unknown option '--bogus'/, usage: /Usage: errand status/ },
      { args: ['status'], says: /missing required argument 'id'/, usage: /Usage: errand status/ },
      { args: ['trigger', 'hook'], says: /required option '-d, --data <json>' not specified/, usage: /Usage: errand trigger/ },
      { args: ['list', '--limit', 'ten'], says: /--limit <n>' argument 'ten' is invalid/, usage: /Usage: errand list/ },
      { args: ['list', '--limit', '0'], says: /must be a whole number from 1/, usage: /Usage: errand list/ },
      { args: ['list', '--status', 'done'], says: /must be one or more of pending, processing/, usage: /Usage: errand list/ },
      { args: ['result', 'req_x', '--timeout', 'soon'], says: /must be a number of seconds/, usage: /Usage: errand result/ },
    ];
    for (const { args, says, usage } of cases) {
      const run = await runCli([...args, '--url', url]);
      assert.equal(run.code, 2, `errand ${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, says, `errand ${args.join(' ')}`);
      assert.match(run.stderr, usage, `errand ${args.join(' ')} prints the usage`);
      assert.equal(run.stdout, '', 'nothing on stdout');
    }
  });

  test('input that is not JSON, a missing @file and a bad --url are usage errors naming the flag', async () => {
    const url = await deadUrl();
    const badJson = await runCli(['submit', 'echo', '--input', '{oops', '--url', url]);
    assert.equal(badJson.code, 2, badJson.stderr);
    assert.match(badJson.stderr, /^errand: --input: the argument is not valid JSON/);
    const badStdin = await runCli(['trigger', 'hook', '--data', '-', '--url', url], { stdin: 'not json' });
    assert.equal(badStdin.code, 2, badStdin.stderr);
    assert.match(badStdin.stderr, /--data: stdin is not valid JSON/);
    const missing = await runCli(['submit', 'echo', '--input', '@/nonexistent/input.json', '--url', url]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /--input: cannot read \/nonexistent\/input\.json/);
    const badUrl = await runCli(['status', 'req_x', '--url', 'not a url']);
    assert.equal(badUrl.code, 2, badUrl.stderr);
    assert.match(badUrl.stderr, /--url: "not a url" is not a URL/);
    const ftp = await runCli(['status', 'req_x'], { env: { ERRAND_URL: 'ftp://127.0.0.1' } });
    assert.equal(ftp.code, 2, ftp.stderr);
    assert.match(ftp.stderr, /must start with http:\/\/ or https:\/\//);
  });

  test('--help and --version exit 0; the help names every command, the environment and the exit codes', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0, help.stderr);
    for (const command of ['submit', 'chat', 'trigger', 'status', 'watch', 'result', 'cancel', 'retry', 'list', 'tail', 'serve']) {
      assert.match(help.stdout, new RegExp(`^  ${command} `, 'm'), `help lists ${command}`);
    }
    assert.match(help.stdout, /ERRAND_URL/);
    assert.match(help.stdout, /ERRAND_API_KEY/);
    assert.match(help.stdout, /Exit codes: 0 done/);
    const sub = await runCli(['submit', '--help']);
    assert.equal(sub.code, 0);
    assert.match(sub.stdout, /--idempotency-key <key>/);
    const version = await runCli(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  });
});

describe('an unreachable server', () => {
  test('is one line on stderr naming the URL, no stack trace, exit 5 — for --url and for ERRAND_URL', async () => {
    const url = await deadUrl();
    for (const run of [
      await runCli(['status', 'req_01kf3v6q4c8x0d2m5n7p9r1s3t', '--url', url]),
      await runCli(['list', '--json'], { env: { ERRAND_URL: url } }),
      await runCli(['submit', 'echo', '--input', '{}'], { env: { ERRAND_URL: url } }),
    ]) {
      assert.equal(run.code, 5, run.stderr);
      assert.equal(run.stdout, '');
      const lines = run.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `one line: ${run.stderr}`);
      assert.match(lines[0]!, new RegExp(`^errand: cannot reach the Errand server at ${url.replace(/\./g, '\\.')}: .*ECONNREFUSED`));
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    }
  });
});
