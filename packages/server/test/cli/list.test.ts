/**
 * The built `errand` binary against a real server process: `list` (table,
 * filters, --limit, --json) and the API key from --api-key or ERRAND_API_KEY
 * (without one, the server's 401 exits 6).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { http, killAllServers, waitFor } from '../helpers/process.js';
import { jsonLines, runCli, startCliServer, type CliServer } from './cli.js';

let s: CliServer;
const errand = (args: string[]) => runCli(args, { env: { ERRAND_URL: s.url } });

before(async () => {
  s = await startCliServer({ auth: { keys: [{ key: 'cli_test_key_1', tenant: 'acme' }] } });
});
after(async () => {
  await s?.cleanup();
  await killAllServers();
});

const KEY = { authorization: 'Bearer cli_test_key_1' };

describe('list', () => {
  test('an aligned table, filtered by status and operation, at most --limit rows; --json one resource per line', async () => {
    const failed = await s.submitAsync('fail', {}, KEY);
    for (let i = 0; i < 3; i++) await s.submitAsync('echo', { i }, KEY);
    await waitFor(async () => (await http('GET', `${s.url}/v1/requests/${failed}`, undefined, KEY)).body.status === 'failed', {
      what: `${failed} to fail`,
    });
    const key = ['--api-key', 'cli_test_key_1'];
    const [table, json, several, none] = await Promise.all([
      errand(['list', '--status', 'failed', ...key]),
      errand(['list', '--operation', 'echo', '--limit', '2', '--json', ...key]),
      errand(['list', '--status', 'pending,processing,completed,failed', '--limit', '150', '--json', ...key]),
      errand(['list', '--operation', 'ticker', ...key]),
    ]);

    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^REQUEST\s+STATUS\s+OPERATION\s+PROGRESS\s+CREATED$/);
    assert.equal(lines.length, 2, table.stdout);
    assert.ok(lines[1]!.startsWith(`${failed}  failed `), table.stdout);
    const column = lines[0]!.indexOf('OPERATION');
    assert.ok(
      lines.slice(1).every((line) => line.slice(column).startsWith('fail ')),
      'the columns are aligned',
    );

    assert.equal(json.code, 0, json.stderr);
    const docs = jsonLines(json.stdout);
    assert.equal(docs.length, 2);
    assert.ok(docs.every((d) => d.operation === 'echo'));
    assert.ok(docs[0].created_at >= docs[1].created_at, 'newest first');

    assert.equal(several.code, 0, several.stderr);
    assert.deepEqual(new Set(jsonLines(several.stdout).map((d) => d.request_id as string)).size, 4, 'every request once');
    assert.equal(none.stdout, 'no requests\n');
  });
});

describe('API keys', () => {
  test('--api-key or ERRAND_API_KEY authenticates; without a key the server’s 401 exits 6', async () => {
    const [denied, byFlag] = await Promise.all([
      errand(['list']),
      errand(['submit', 'echo', '--input', '{"who":"flag"}', '--api-key', 'cli_test_key_1', '--json']),
    ]);
    assert.equal(denied.code, 6);
    assert.match(denied.stderr, /^errand: 401 unauthorized/);
    assert.equal(byFlag.code, 0, byFlag.stderr);
    const id = jsonLines(byFlag.stdout)[0].request_id as string;
    const byEnv = await runCli(['status', id, '--json'], { env: { ERRAND_URL: s.url, ERRAND_API_KEY: 'cli_test_key_1' } });
    assert.equal(byEnv.code, 0, byEnv.stderr);
    assert.deepEqual(jsonLines(byEnv.stdout)[0].result, { who: 'flag' });
  });
});
