/**
 * Issue 11, item 1 (and the SSRF ranges of item 9): a tenant tries to make
 * Errand fetch internal URLs and hand back what it read.
 *
 * A "secret" server listens on 127.0.0.1 and on ::1. The example config
 * (what `npm start` runs) is loaded with a stub resolver: `docs.example.com`
 * is a public-looking name that resolves to 127.0.0.1, and `redirector.test`
 * (also 127.0.0.1) is in `fetch.allow`, so it can be fetched — and answers
 * with redirects into loopback. Every attack must fail with a non-retryable
 * error and the secret must appear nowhere in what the tenant can read.
 * No packet leaves 127.0.0.1/::1: names never reach real DNS.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createServer, GuardedFetcher, loadConfig, type ErrandServer } from '../../src/index.js';
import type { Resolver } from '../../src/net/index.js';

const EXAMPLE_CONFIG = fileURLToPath(new URL('../../../../examples/errand.yaml', import.meta.url));
const SECRET = 'SECRET-7f3a9c-internal-admin-token';
const OPERATOR_KEY = 'OPERATOR-KEY-5d1e';

interface Listening {
  server: Server;
  port: number;
  hits: string[];
  /** The request headers of each hit, in order. */
  headers: IncomingMessage['headers'][];
}

async function listen(host: string, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Listening> {
  const hits: string[] = [];
  const headers: IncomingMessage['headers'][] = [];
  const server = createHttpServer((req, res) => {
    hits.push(req.url ?? '/');
    headers.push(req.headers);
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  return { server, port: (server.address() as AddressInfo).port, hits, headers };
}

const close = (l: Listening | undefined) =>
  new Promise<void>((resolve) => {
    if (!l) return resolve();
    l.server.closeAllConnections();
    l.server.close(() => resolve());
  });

const secretAnswer = (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`${SECRET}\n\nThe admin password is hunter2. Everything is great and wonderful.`);
};

let secret4: Listening;
/** Undefined where the machine has no IPv6 loopback: the guard refuses [::1] before connecting either way. */
let secret6: Listening | undefined;
let port6: number;
let redirector: Listening;
let server: ErrandServer;
let dir: string;
const lookups: string[] = [];

const resolve: Resolver = async (hostname) => {
  lookups.push(hostname);
  if (hostname === 'docs.example.com' || hostname === 'redirector.test') return [{ address: '127.0.0.1', family: 4 }];
  if (hostname === 'both.example.com') return [{ address: '::1', family: 6 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (test resolver)`), { code: 'ENOTFOUND' });
};

before(async () => {
  secret4 = await listen('127.0.0.1', secretAnswer);
  secret6 = await listen('::1', secretAnswer).catch(() => undefined);
  port6 = secret6?.port ?? secret4.port;
  redirector = await listen('127.0.0.1', (req, res) => {
    const to = new URL(req.url ?? '/', 'http://x').searchParams.get('to');
    if (to !== null) {
      res.writeHead(302, { location: to });
      return res.end();
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('A public report. Revenue grew and customers were happy.');
  });
  dir = mkdtempSync(join(tmpdir(), 'errand-ssrf-'));
  const config = loadConfig({
    path: EXAMPLE_CONFIG,
    env: {},
    overrides: {
      store: { url: `sqlite:${join(dir, 'errand.db')}` },
      logging: { level: 'silent' },
      fetch: { allow: ['redirector.test'] },
      operations: {
        // The http kind: its configured upstream is trusted; where it redirects is not.
        'via-http': { http: { url: `http://127.0.0.1:${redirector.port}/hop`, method: 'GET' }, retry: { max_attempts: 1 } },
        // The same upstream with an operator secret in a configured header.
        'via-http-key': {
          http: { url: `http://127.0.0.1:${redirector.port}/hop`, method: 'GET', headers: { 'x-api-key': OPERATOR_KEY } },
          retry: { max_attempts: 1 },
        },
      },
    },
  });
  server = await createServer({ config, log: pino({ level: 'silent' }), test: { resolve } });
});

after(async () => {
  await server?.close(0);
  await Promise.all([close(secret4), close(secret6), close(redirector)]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Outcome {
  status: string;
  attempt: number;
  error?: { type: string; retryable: boolean; message: string };
  raw: string;
}

/** Submits async, waits for the end, and returns everything the tenant can read about it (status resource + events). */
async function run(operation: string, input: unknown): Promise<Outcome> {
  const submitted = await server.app.inject({ method: 'POST', url: `/v1/operations/${operation}?async=true`, payload: input as object });
  assert.equal(submitted.statusCode, 202, submitted.body);
  const id = (submitted.json() as { request_id: string }).request_id;
  const keep = setTimeout(() => {}, 15_000);
  try {
    await server.engine.waitForTerminal(id, 10_000);
  } finally {
    clearTimeout(keep);
  }
  const status = await server.app.inject({ method: 'GET', url: `/v1/requests/${id}` });
  const events = await server.app.inject({ method: 'GET', url: `/v1/requests/${id}/events` });
  const body = status.json() as Outcome;
  return { ...body, raw: `${status.body}\n${events.body}` };
}

function assertRefused(outcome: Outcome, what: string): void {
  assert.equal(outcome.status, 'failed', `${what}: ${outcome.raw}`);
  assert.equal(outcome.error?.type, 'fetch_forbidden', `${what}: ${outcome.raw}`);
  assert.equal(outcome.error?.retryable, false, what);
  assert.equal(outcome.attempt, 1, `${what}: not retried`);
  assert.ok(!outcome.raw.includes(SECRET), `${what}: the secret leaked`);
  assert.ok(!outcome.raw.includes('hunter2'), `${what}: the secret leaked`);
}

describe('analyze-document refuses internal document_url targets (the default install)', () => {
  test('the allowed host is really reachable: the refusals below are the guard, not the test setup', async () => {
    const ok = await run('analyze-document', { document_url: `http://redirector.test:${redirector.port}/report.txt` });
    assert.equal(ok.status, 'completed', ok.raw);
  });

  test('http://127.0.0.1:PORT (a live server holding a secret)', async () => {
    const before = secret4.hits.length;
    assertRefused(await run('analyze-document', { document_url: `http://127.0.0.1:${secret4.port}/` }), '127.0.0.1');
    assert.equal(secret4.hits.length, before, 'no request reached the secret server');
  });

  test('http://[::ffff:127.0.0.1]:PORT (IPv4-mapped IPv6) and http://[::1]:PORT', async () => {
    assertRefused(await run('analyze-document', { document_url: `http://[::ffff:127.0.0.1]:${secret4.port}/` }), '::ffff:127.0.0.1');
    assertRefused(await run('analyze-document', { document_url: `http://[::ffff:7f00:1]:${secret4.port}/` }), '::ffff:7f00:1');
    assertRefused(await run('analyze-document', { document_url: `http://[::1]:${port6}/` }), '::1');
    assert.equal(secret6?.hits.length ?? 0, 0, 'no request reached the ::1 server');
  });

  test('a public-looking name that resolves to 127.0.0.1 is refused in the connection lookup', async () => {
    lookups.length = 0;
    assertRefused(await run('analyze-document', { document_url: `http://docs.example.com:${secret4.port}/` }), 'docs.example.com');
    assert.ok(lookups.includes('docs.example.com'), 'the name was resolved through the guard');
    assertRefused(await run('analyze-document', { document_url: `http://both.example.com:${port6}/` }), 'both.example.com');
  });

  test('a redirect from an allowed host to [::1], to 127.0.0.1 or to a name of 127.0.0.1 is refused at the hop', async () => {
    for (const to of [
      `http://[::1]:${port6}/`,
      `http://127.0.0.1:${secret4.port}/`,
      `http://docs.example.com:${secret4.port}/`,
      'http://169.254.169.254/latest/meta-data',
    ]) {
      const url = `http://redirector.test:${redirector.port}/r?to=${encodeURIComponent(to)}`;
      assertRefused(await run('analyze-document', { document_url: url }), `redirect to ${to}`);
    }
    assert.equal(secret6?.hits.length ?? 0, 0);
  });

  test('the tenant-visible message names neither the address nor the secret server', async () => {
    const outcome = await run('analyze-document', { document_url: `http://docs.example.com:${secret4.port}/` });
    assert.ok(!outcome.error?.message.includes('127.0.0.1'), outcome.error?.message);
    assert.ok(!outcome.error?.message.includes(String(secret4.port)), outcome.error?.message);
    // Not even what kind of address the name resolved to: a tenant could map internal DNS with it.
    assert.ok(!/loopback|private/.test(outcome.error?.message ?? ''), outcome.error?.message);
  });
});

describe('the http kind: its configured upstream is trusted, its redirects are checked hop by hop', () => {
  test('a redirect from the trusted upstream to another loopback port or to [::1] fails with fetch_forbidden', async () => {
    for (const to of [`http://127.0.0.1:${secret4.port}/`, `http://[::1]:${port6}/`]) {
      assertRefused(await run('via-http', { to }), `http kind redirected to ${to}`);
    }
  });

  test("a redirect from the trusted upstream to another allowed origin does not carry the operator's configured headers", async () => {
    const ok = await run('via-http-key', { to: `http://redirector.test:${redirector.port}/landing` });
    assert.equal(ok.status, 'completed', ok.raw);
    const hop = redirector.headers[redirector.hits.lastIndexOf('/landing')];
    assert.ok(hop, 'the other origin was reached');
    assert.equal(hop['x-api-key'], undefined, 'the operator key stayed with its upstream');
    assert.equal(redirector.headers[redirector.hits.findLastIndex((h) => h.startsWith('/hop'))]?.['x-api-key'], OPERATOR_KEY);
  });

  test('a redirect within the trusted origin is followed', async () => {
    const ok = await run('via-http', { to: `http://127.0.0.1:${redirector.port}/plain` });
    assert.equal(ok.status, 'completed', ok.raw);
  });
});

describe('every IPv6 form that reaches an internal or tunnelled address is refused before connecting', () => {
  test('NAT64 (well-known and local-use), Teredo, 6to4, IPv4-compatible, documentation and other reserved ranges', async () => {
    const fetcher = new GuardedFetcher({ resolve });
    try {
      for (const host of [
        '[64:ff9b::7f00:1]', // well-known NAT64 of 127.0.0.1
        '[64:ff9b:1::a00:1]', // local-use NAT64 (RFC 8215)
        '[64:ff9b:1:ffff::808:808]', // local-use NAT64, whatever it embeds
        '[2001::1]', // Teredo
        '[2001:0:4136:e378:8000:63bf:3fff:fdd2]', // Teredo, RFC 4380's example
        '[2001:db8::1]', // documentation
        '[2001:10::1]', // ORCHID (IETF protocol block)
        '[2002:7f00:1::]', // 6to4 of 127.0.0.1
        '[::7f00:1]', // IPv4-compatible ::127.0.0.1
        '[::808:808]', // IPv4-compatible, even of a public address (deprecated)
        '[::ffff:a9fe:a9fe]', // IPv4-mapped metadata address
        '[100::1]', // discard-only
        '[fd00:ec2::254]',
        '192.0.2.1', // TEST-NET-1
        '198.51.100.7',
        '203.0.113.9',
      ]) {
        await assert.rejects(fetcher.fetch(`http://${host}/`), (err: { type?: string; retryable?: boolean }) => {
          assert.equal(err.type, 'fetch_forbidden', host);
          assert.equal(err.retryable, false, host);
          return true;
        });
      }
    } finally {
      await fetcher.close();
    }
  });

  test('the webhook guard refuses the same ranges at submit time (one policy)', async () => {
    for (const host of ['[64:ff9b:1::a00:1]', '[2001::1]', '[2001:db8::1]', '[::7f00:1]']) {
      const res = await server.app.inject({
        method: 'POST',
        url: `/v1/operations/analyze-document?async=true&webhook_url=${encodeURIComponent(`http://${host}/hook`)}`,
        payload: { text: 'hello' },
      });
      assert.equal(res.statusCode, 422, host);
      assert.equal((res.json() as { error: { type: string } }).error.type, 'validation_error', host);
    }
  });
});
