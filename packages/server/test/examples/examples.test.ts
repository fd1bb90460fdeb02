/**
 * The example config and operations, end to end in process: examples/errand.yaml
 * is loaded as `npm start` loads it (only the store moved to a temp file and
 * logging silenced), the server is built with createServer() and driven with
 * app.inject(). Documents for analyze-document's `document_url` come from a
 * local HTTP server on 127.0.0.1 (allowed with `fetch.allow`; the default
 * refusal is test/abuse/ssrf.test.ts's).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions } from 'fastify';
import { createServer, loadConfig, type ErrandServer } from '../../src/index.js';

const EXAMPLE_CONFIG = fileURLToPath(new URL('../../../../examples/errand.yaml', import.meta.url));
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
/** Served at /report.txt by the local document server. */
const REPORT =
  'Quarterly report\n\nRevenue grew strongly this quarter. Customers were happy with the new service.\n\nGrowth should continue next year.';

/** The status resource, as much of it as these tests read. */
interface Status {
  request_id: string;
  task_id?: string;
  status: string;
  progress: number | null;
  current_step: string | null;
  total_steps: number | null;
  completed_steps: number | null;
  result?: Record<string, unknown> & { text?: string };
  error?: { type: string; retryable: boolean; details?: Record<string, unknown> };
  last_error?: { type: string; retryable: boolean };
}

function exampleConfig(dir: string) {
  return loadConfig({
    path: EXAMPLE_CONFIG,
    env: {}, // the machine's ERRAND_* variables must not change what is tested
    // The local document server is on 127.0.0.1, which ctx.fetch refuses unless fetch.allow lists it.
    overrides: { store: { url: `sqlite:${join(dir, 'errand.db')}` }, logging: { level: 'silent' }, fetch: { allow: ['127.0.0.1'] } },
  });
}

describe('examples/errand.yaml', () => {
  test('declares the operations (three modules, one of each built-in kind), the chat operation and the github-issue trigger, with auth off', () => {
    const config = loadConfig({ path: EXAMPLE_CONFIG, env: {} });
    assert.deepEqual(Object.keys(config.operations).sort(), [
      'analyze-document',
      'analyze-via-http',
      'ask',
      'assistant',
      'triage',
      'word-frequencies',
    ]);
    assert.equal(config.chat.operation, 'assistant');
    assert.equal(config.triggers['github-issue']?.operation, 'triage');
    assert.deepEqual(config.auth.keys, []);
    assert.equal(config.server.host, '127.0.0.1');
    assert.equal(config.store.url, `sqlite:${join(config.baseDir, 'data', 'errand.db')}`);
    assert.equal(config.operations.triage?.timeout, 120_000);
    assert.equal(config.operations.triage?.retry?.max_attempts, 5);
    assert.equal(config.operations.triage?.concurrency, 4);
    assert.equal(config.operations['analyze-document']?.timeout, 300_000);
    assert.equal(config.workflow.timeouts.task_timeout, 300_000);
    assert.equal(config.workflow.retry.max_attempts, 3);
    assert.equal(config.retention.ttl, 7 * 24 * 3600 * 1000);
  });

  test('keys from ERRAND_API_KEYS switch auth on without editing the file', () => {
    const config = loadConfig({ path: EXAMPLE_CONFIG, env: { ERRAND_API_KEYS: 'fmc_alpha_example_key:alpha,fmc_beta_example_key:beta' } });
    assert.deepEqual(
      config.auth.keys.map((k) => k.tenant),
      ['alpha', 'beta'],
    );
  });
});

describe('example operations over HTTP', () => {
  let server: ErrandServer;
  let dir: string;
  let docs: Server;
  let docsBase: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'errand-examples-'));
    // No real DNS: every name is unknown (the README's cancel walk-through uses a .invalid host).
    const resolve = (hostname: string) =>
      Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (test resolver)`), { code: 'ENOTFOUND' }));
    server = await createServer({ config: exampleConfig(dir), test: { resolve } });
    docs = createHttpServer((req, res) => {
      if (req.url === '/report.txt') {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(REPORT);
      } else if (req.url === '/page.html') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body><h1>Notes</h1><p>The release went well &amp; users liked it.</p></body></html>');
      } else if (req.url === '/logo.png') {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.end(Buffer.from([0x89, 0x50, 0x4e, 0x47]));
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      }
    });
    await new Promise<void>((resolve) => docs.listen(0, '127.0.0.1', resolve));
    docsBase = `http://127.0.0.1:${(docs.address() as AddressInfo).port}`;
  });

  after(async () => {
    await server?.close(2000);
    await new Promise<void>((resolve) => (docs ? docs.close(() => resolve()) : resolve()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function call(method: InjectOptions['method'], url: string, payload?: unknown) {
    const res = await server.app.inject({
      method,
      url,
      ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }),
    });
    return { status: res.statusCode, headers: res.headers, body: res.json() as Status & Record<string, unknown> };
  }

  /** Polls the status resource until terminal: at most 200 polls within 10 s, each wait ending early on the terminal event. */
  async function pollUntilTerminal(id: string): Promise<Status> {
    const deadline = Date.now() + 10_000;
    for (let i = 0; i < 200 && Date.now() < deadline; i++) {
      const { status, body } = await call('GET', `/v1/requests/${id}`);
      assert.equal(status, 200);
      if (TERMINAL.has(body.status)) return body;
      await server.engine.waitForTerminal(id, 50);
    }
    throw new Error(`request ${id} did not finish within 10 s`);
  }

  /** The text of every output chunk the request emitted, joined. */
  async function streamedText(id: string): Promise<string> {
    const events = await server.store.eventListAfter({ id, afterSeq: 0, limit: 10_000 });
    return events
      .filter((e) => e.type === 'output')
      .map((e) => (e.data as { text: string }).text)
      .join('');
  }

  describe('assistant (POST /v1/chat)', () => {
    test('a sync chat answers 200 completed with text and sources, streamed sentence by sentence', async () => {
      const { status, body } = await call('POST', '/v1/chat', { message: 'How do I cancel a request?' });
      assert.equal(status, 200);
      assert.equal(body.status, 'completed');
      const result = body.result as { text: string; agent: string; sources: { file: string; heading: string; score: number }[] };
      assert.equal(result.agent, 'errand-docs');
      assert.ok(result.text.length > 0);
      assert.ok(result.sources.length > 0, 'examples/README.md documents cancelling, so something is always found');
      assert.ok(result.sources.every((s) => typeof s.file === 'string' && typeof s.heading === 'string' && s.score > 0));
      assert.ok(result.sources.some((s) => /cancel/i.test(s.heading)));
      assert.match(result.text, /DELETE/);
      assert.equal(body.total_steps, 4);
      assert.equal(body.completed_steps, 4);
      assert.equal(await streamedText(body.request_id), result.text);
    });

    test('an async chat answers 202 with a Location, then completes', async () => {
      const { status, headers, body } = await call('POST', '/v1/chat', { message: 'What happens when a task times out?', async: true });
      assert.equal(status, 202);
      assert.equal(headers.location, `/v1/requests/${body.request_id}`);
      const final = await pollUntilTerminal(body.request_id);
      assert.equal(final.status, 'completed');
      assert.equal(typeof final.result?.text, 'string');
      assert.ok((final.result?.text ?? '').length > 0);
    });

    test('a question the documentation does not cover gets a graceful answer', async () => {
      const { body } = await call('POST', '/v1/chat', { message: 'zxqv blorptang?' });
      assert.equal(body.status, 'completed');
      assert.match(String(body.result?.text), /^I could not find anything about “zxqv blorptang”/);
      assert.deepEqual(body.result?.sources, []);
    });

    test('a message that is not a string fails without retry as invalid_input', async () => {
      const { body } = await call('POST', '/v1/operations/assistant?async=false', { message: 42 });
      assert.equal(body.status, 'failed');
      assert.equal(body.error?.type, 'invalid_input');
      assert.equal(body.error?.retryable, false);
    });
  });

  describe('analyze-document', () => {
    const TEXT = [
      'Errand accepts work and answers at once. It runs the work in the background, reports progress, and retries failures.',
      'A client can poll, wait or cancel. Nothing is lost when the server restarts!',
    ].join('\n\n');

    test('{ text } gives statistics that match the text and a summary made of its sentences', async () => {
      const { status, body } = await call('POST', '/v1/operations/analyze-document?async=false', { text: TEXT, summary_sentences: 2 });
      assert.equal(status, 200);
      assert.equal(body.status, 'completed');
      const result = body.result as {
        summary: string;
        summary_sentences: string[];
        sentiment: string;
        entities: string[];
        keywords: { term: string; count: number }[];
        statistics: Record<string, number>;
        document: { kind: string };
      };
      assert.equal(result.statistics.words, 33);
      assert.equal(result.statistics.sentences, 4);
      assert.equal(result.statistics.paragraphs, 2);
      assert.equal(result.statistics.characters, TEXT.length);
      assert.equal(result.statistics.average_sentence_length, 8.3);
      assert.equal(typeof result.statistics.flesch_reading_ease, 'number');
      assert.equal(result.summary_sentences.length, 2);
      for (const sentence of result.summary_sentences) assert.ok(TEXT.includes(sentence), sentence);
      assert.equal(result.summary, result.summary_sentences.join(' '));
      assert.ok(result.entities.includes('work'), 'the only content word used twice');
      assert.ok(['POSITIVE', 'NEGATIVE', 'NEUTRAL'].includes(result.sentiment));
      assert.equal(result.document.kind, 'text');
      assert.equal(body.total_steps, 4);
      assert.equal(body.completed_steps, 4);
    });

    test('a bundled sample through the /v1/bots alias: sentiment and entities as in the seed', async () => {
      const { status, body } = await call('POST', '/v1/bots/bot-abc-123/actions/analyze-document?async=false', {
        document: 'market-trends',
      });
      assert.equal(status, 200);
      assert.equal(body.task_id, body.request_id);
      assert.equal(body.status, 'completed');
      assert.equal(body.result?.sentiment, 'POSITIVE');
      assert.ok((body.result?.entities as string[]).includes('revenue'));
      assert.match(String(body.result?.summary), /\w/);

      const incident = await call('POST', '/v1/operations/analyze-document?async=false', { document: 'incident-review' });
      assert.equal(incident.body.result?.sentiment, 'NEGATIVE');
    });

    test('an unknown sample fails at once as document_not_found, listing the samples', async () => {
      const { body } = await call('POST', '/v1/operations/analyze-document?async=false', { document: 'unknown' });
      assert.equal(body.status, 'failed');
      assert.equal(body.error?.type, 'document_not_found');
      assert.equal(body.error?.retryable, false);
      assert.ok((body.error?.details?.available as string[]).includes('market-trends'));
    });

    test('input that names no document fails as invalid_input', async () => {
      for (const input of [{}, { text: '' }, { text: 'a', document: 'b' }, { text: 'ok', summary_sentences: 0 }]) {
        const { body } = await call('POST', '/v1/operations/analyze-document?async=false', input);
        assert.equal(body.status, 'failed', JSON.stringify(input));
        assert.equal(body.error?.type, 'invalid_input', JSON.stringify(input));
      }
    });

    test('{ document_url } fetches text and HTML over http', async () => {
      const text = await call('POST', '/v1/operations/analyze-document?async=false', { document_url: `${docsBase}/report.txt` });
      assert.equal(text.body.status, 'completed');
      assert.equal(text.body.result?.sentiment, 'POSITIVE');
      assert.deepEqual(text.body.result?.document, {
        kind: 'url',
        url: `${docsBase}/report.txt`,
        content_type: 'text/plain; charset=utf-8',
        bytes: Buffer.byteLength(REPORT),
      });

      const html = await call('POST', '/v1/operations/analyze-document?async=false', { document_url: `${docsBase}/page.html` });
      assert.equal(html.body.status, 'completed');
      assert.equal((html.body.result?.statistics as Record<string, number>).paragraphs, 2);
    });

    test('a 404 or a non-text document fails without retry', async () => {
      const missing = await call('POST', '/v1/operations/analyze-document?async=false', { document_url: `${docsBase}/missing.txt` });
      assert.equal(missing.body.error?.type, 'document_not_found');
      assert.equal(missing.body.error?.retryable, false);
      assert.equal(missing.body.attempt, 1);

      const image = await call('POST', '/v1/operations/analyze-document?async=false', { document_url: `${docsBase}/logo.png` });
      assert.equal(image.body.error?.type, 'unsupported_document');
    });

    test("an unreachable URL is retryable (the README's cancel walk-through): back to pending with document_unreachable", async () => {
      let unsubscribe = () => {};
      const retrying = new Promise<string>((resolve) => {
        unsubscribe = server.engine.events.on('request:retrying', ({ request }) => {
          if (request.operation === 'analyze-document') resolve(request.id);
        });
      });
      const { status, body } = await call('POST', '/v1/operations/analyze-document?async=true', {
        document_url: 'http://reports.invalid/report.txt',
      });
      assert.equal(status, 202);
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no retry within 30 s')), 30_000).unref());
      const id = await Promise.race([retrying, timeout]).finally(unsubscribe);
      assert.equal(id, body.request_id);

      const pending = await call('GET', `/v1/requests/${id}`);
      assert.equal(pending.body.status, 'pending');
      assert.equal(pending.body.last_error?.type, 'document_unreachable');
      assert.equal(pending.body.last_error?.retryable, true);
      assert.equal((await call('DELETE', `/v1/requests/${id}`)).status, 200);
    });
  });

  describe('triage (POST /v1/triggers/github-issue)', () => {
    const crashReport = {
      action: 'opened',
      issue: {
        number: 1347,
        title: 'Server crashes with TypeError when a webhook URL has no path',
        body: [
          '### Describe the bug',
          'After upgrading to 0.4.2 the server crashes as soon as a request with a webhook_url completes.',
          '',
          '### Steps to reproduce',
          '1. Start `errand serve`',
          '2. POST /v1/chat with {"message": "hi", "async": true, "webhook_url": "https://example.com"}',
          '3. Wait for the request to complete',
          '',
          '```',
          "TypeError: Cannot read properties of undefined (reading 'length')",
          '    at deliver (/app/dist/webhooks/deliver.js:42:17)',
          '```',
          '',
          'Expected: the callback is delivered.',
        ].join('\n'),
        labels: [],
        state: 'open',
        user: { login: 'octocat' },
        html_url: 'https://github.com/acme/errand/issues/1347',
      },
      repository: { full_name: 'acme/errand' },
      sender: { login: 'octocat' },
    };

    test('a crash report is labelled bug with priority p1, a summary and a reply', async () => {
      const { status, body } = await call('POST', '/v1/triggers/github-issue', { data: crashReport, use_async: false });
      assert.equal(status, 200);
      assert.equal(body.status, 'completed');
      const result = body.result as Record<string, unknown> & { labels: string[]; hints: Record<string, boolean> };
      assert.equal(result.triaged, true);
      assert.equal(result.labels[0], 'bug');
      assert.equal(result.priority, 'p1');
      assert.equal(result.hints.has_stack_trace, true);
      assert.equal(result.hints.has_reproduction_steps, true);
      assert.match(String(result.summary), /^Issue #1347 “Server crashes/);
      assert.match(String(result.suggested_reply), /@octocat/);
      assert.equal(body.completed_steps, 4);
    });

    test('a raw GitHub payload is accepted as the data, async by default', async () => {
      const duplicate = {
        ...crashReport,
        issue: { ...crashReport.issue, number: 1350, title: 'Server crashed with TypeError when webhook URL has no path' },
      };
      const { status, body } = await call('POST', '/v1/triggers/github-issue', duplicate);
      assert.equal(status, 202);
      const final = await pollUntilTerminal(body.request_id);
      assert.equal(final.status, 'completed');
      assert.equal((final.result?.labels as string[])[0], 'bug');
      assert.deepEqual(
        (final.result?.possible_duplicates as { number: number }[]).map((d) => d.number),
        [1347],
      );
    });

    test('{"data": {}} completes with nothing to triage', async () => {
      const { status, body } = await call('POST', '/v1/triggers/github-issue', { data: {} });
      assert.equal(status, 202);
      const final = await pollUntilTerminal(body.request_id);
      assert.equal(final.status, 'completed');
      assert.equal(final.result?.triaged, false);
      assert.match(String(final.result?.reason), /Nothing to triage/);
    });

    test('a malformed issue fails at once as invalid_payload', async () => {
      const { body } = await call('POST', '/v1/triggers/github-issue?use_async=false', { action: 'opened', issue: 'oops' });
      assert.equal(body.status, 'failed');
      assert.equal(body.error?.type, 'invalid_payload');
      assert.equal(body.error?.retryable, false);
      assert.equal(body.attempt, 1);
    });
  });
});
