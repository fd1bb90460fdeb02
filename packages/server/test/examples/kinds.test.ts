/**
 * The example config's built-in-kind operations (examples/errand.yaml:
 * `word-frequencies` = command, `analyze-via-http` = http, `ask` = llm), run
 * through a server listening on 127.0.0.1 with the example config as
 * `npm start` loads it — ERRAND_URL points the http and llm examples at it,
 * as the file's comments say to do for another address. Nothing leaves the
 * machine.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { createServer, loadConfig, type ErrandServer } from '../../src/index.js';
import type { JsonBody } from '../helpers/http.js';
import { freePort, http } from '../helpers/process.js';

const EXAMPLE_CONFIG = fileURLToPath(new URL('../../../../examples/errand.yaml', import.meta.url));

let server: ErrandServer;
let dir: string;
let base: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-example-kinds-'));
  // The config needs its own URL before the server exists, so the port is picked first; if another process
  // takes it in between, pick again (the one race a port picked in advance has).
  for (let tryNo = 0; ; tryNo++) {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const config = loadConfig({
      path: EXAMPLE_CONFIG,
      env: { ERRAND_URL: base },
      overrides: { store: { url: `sqlite:${join(dir, 'errand.db')}` }, logging: { level: 'silent' }, server: { port } },
    });
    server = await createServer({ config });
    try {
      await server.listen(port);
      break;
    } catch (err) {
      await server.close(0);
      if ((err as { code?: string }).code !== 'EADDRINUSE' || tryNo >= 4) throw err;
    }
  }
});
after(async () => {
  await server?.close(2000);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function outputs(id: string): Promise<unknown[]> {
  const events = await server.store.eventListAfter({ id, afterSeq: 0, limit: 1000 });
  return events.filter((e) => e.type === 'output').map((e) => e.data);
}

describe('examples/errand.yaml built-in kinds', () => {
  test('word-frequencies (command): progress per paragraph, output chunks, and the counts as the result', async () => {
    const text = 'The cat saw the hat.\n\nThe dog saw the cat.';
    const res = await http('POST', `${base}/v1/operations/word-frequencies?async=false`, { text, top: 2 });
    assert.equal(res.status, 200, res.text);
    const body = res.body as JsonBody;
    assert.equal(body.status, 'completed');
    assert.deepEqual(body.result, {
      paragraphs: 2,
      words: 10,
      distinct: 5,
      top: [
        { word: 'the', count: 4 },
        { word: 'cat', count: 2 },
      ],
    });
    assert.equal(body.progress, 100);
    assert.equal(body.completed_steps, 2);
    assert.deepEqual(await outputs(body.request_id as string), [{ text: 'Paragraph 1: 5 words\n' }, { text: 'Paragraph 2: 5 words\n' }]);
  });

  test('word-frequencies rejects input without text with the type the script chose', async () => {
    const res = await http('POST', `${base}/v1/operations/word-frequencies?async=false`, {});
    const body = res.body as JsonBody;
    assert.equal(body.status, 'failed');
    assert.equal(body.error.type, 'invalid_input');
  });

  test('analyze-via-http (http): forwards the input to analyze-document and returns its status resource', async () => {
    const res = await http('POST', `${base}/v1/operations/analyze-via-http?async=false`, {
      text: 'Errand is great. Errand runs work in the background.',
    });
    assert.equal(res.status, 200, res.text);
    const body = res.body as JsonBody;
    assert.equal(body.status, 'completed', res.text);
    assert.equal(body.result.status, 'completed');
    assert.equal(body.result.result.statistics.sentences, 2);
  });

  test("ask (llm): streams the assistant's answer through /v1/chat/completions as output chunks", async () => {
    const res = await http('POST', `${base}/v1/operations/ask?async=false`, { message: 'How do I cancel a request?' });
    assert.equal(res.status, 200, res.text);
    const body = res.body as JsonBody;
    assert.equal(body.status, 'completed', res.text);
    assert.equal(body.result.model, 'assistant');
    assert.match(body.result.text as string, /DELETE/);
    const chunks = (await outputs(body.request_id as string)) as { text: string }[];
    assert.ok(chunks.length > 1, 'the answer arrived in several chunks');
    assert.equal(chunks.map((c) => c.text).join(''), body.result.text);
  });
});
