/**
 * The guarded fetch behind `ctx.fetch` (exported as `GuardedFetcher`): redirect
 * rules, credentials across origins, size and time limits, abort. The target
 * checks themselves are test/abuse/ssrf.test.ts's; here 127.0.0.1 is allowed
 * (`allow`) so local servers stand in for the internet, and every name
 * resolves through a stub.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GuardedFetcher } from '../../src/index.js';
import type { Resolver } from '../../src/net/index.js';
import { startKindServer } from './harness.js';

const FETCHER = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'fetcher.mjs');

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse, base: string) => void,
): Promise<{ server: Server; base: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  let base = '';
  const server = createHttpServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, base);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, base, seen };
}

const stop = (server: Server | undefined) =>
  new Promise<void>((resolve) => {
    if (!server) return resolve();
    server.closeAllConnections();
    server.close(() => resolve());
  });

const resolve: Resolver = (hostname) =>
  Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));

let a: Awaited<ReturnType<typeof serve>>;
let b: Awaited<ReturnType<typeof serve>>;
let fetcher: GuardedFetcher;

before(async () => {
  b = await serve((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`b saw ${req.method}`);
  });
  a = await serve((req, res, base) => {
    const url = new URL(req.url ?? '/', base);
    const to = url.searchParams.get('to');
    const code = Number(url.searchParams.get('code') ?? 302);
    if (url.pathname === '/redirect' && to !== null) {
      res.writeHead(code, { location: to });
      return res.end();
    }
    if (url.pathname === '/loop') {
      res.writeHead(302, { location: '/loop' });
      return res.end();
    }
    if (url.pathname === '/declared-big') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5000' });
      return res.end('x'.repeat(5000));
    }
    if (url.pathname === '/chunked-big') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      for (let i = 0; i < 10; i++) res.write('y'.repeat(1000));
      return res.end();
    }
    if (url.pathname === '/hang') return; // never answers
    if (url.pathname === '/trickle') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.write('first bytes, then nothing');
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`a saw ${req.method} ${url.pathname}`);
  });
  fetcher = new GuardedFetcher({ allow: ['127.0.0.1'], resolve, maxResponseBytes: 4096 });
});

after(async () => {
  await fetcher?.close();
  await Promise.all([stop(a?.server), stop(b?.server)]);
});

const typeOf = (type: string) => (err: { type?: string }) => {
  assert.equal(err.type, type);
  return true;
};

describe('redirects', () => {
  test('303 turns a POST into a GET without body or content headers; 307 keeps both', async () => {
    const to = encodeURIComponent('/target');
    const see = await fetcher.fetch(`${a.base}/redirect?code=303&to=${to}`, {
      method: 'POST',
      body: '{"x":1}',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(await see.text(), 'a saw GET /target');
    assert.equal(see.redirected, true);
    const last = a.seen.at(-1);
    assert.equal(last?.body, '');
    assert.equal(last?.headers['content-type'], undefined);

    const keep = await fetcher.fetch(`${a.base}/redirect?code=307&to=${to}`, {
      method: 'POST',
      body: '{"x":1}',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(await keep.text(), 'a saw POST /target');
    assert.equal(a.seen.at(-1)?.body, '{"x":1}');
  });

  test('headers go to the same origin; another origin gets only the safe ones (no operator secret follows a redirect)', async () => {
    const headers = {
      authorization: 'Bearer secret-token',
      cookie: 'session=1',
      'x-api-key': 'operator-key',
      'api-key': 'azure-key',
      'x-other': 'custom',
      accept: 'application/json',
      'accept-language': 'de',
      'user-agent': 'errand-test',
    };
    await (await fetcher.fetch(`${a.base}/redirect?to=${encodeURIComponent('/same')}`, { headers })).text();
    const atA = a.seen.at(-1);
    assert.equal(atA?.headers.authorization, 'Bearer secret-token');
    assert.equal(atA?.headers['x-api-key'], 'operator-key');
    await (await fetcher.fetch(`${a.base}/redirect?to=${encodeURIComponent(`${b.base}/other`)}`, { headers })).text();
    const atB = b.seen.at(-1);
    assert.equal(atB?.url, '/other');
    for (const name of ['authorization', 'cookie', 'x-api-key', 'api-key', 'x-other']) assert.equal(atB?.headers[name], undefined, name);
    assert.deepEqual(
      [atB?.headers.accept, atB?.headers['accept-language'], atB?.headers['user-agent']],
      ['application/json', 'de', 'errand-test'],
    );
  });

  test('a 307/308 to another origin with a body → fetch_redirect_refused (the body and headers stay home); without a body it is followed', async () => {
    for (const code of [307, 308]) {
      const before = b.seen.length;
      await assert.rejects(
        fetcher.fetch(`${a.base}/redirect?code=${code}&to=${encodeURIComponent(`${b.base}/post`)}`, {
          method: 'POST',
          body: '{"tenant":"input"}',
          headers: { 'content-type': 'application/json', 'x-api-key': 'operator-key' },
        }),
        typeOf('fetch_redirect_refused'),
      );
      assert.equal(b.seen.length, before, `${code}: the other origin was not contacted`);
      const res = await fetcher.fetch(`${a.base}/redirect?code=${code}&to=${encodeURIComponent(`${b.base}/get`)}`, {
        headers: { 'x-api-key': 'operator-key' },
      });
      assert.equal(await res.text(), 'b saw GET');
      assert.equal(b.seen.at(-1)?.headers['x-api-key'], undefined);
    }
    const same = await fetcher.fetch(`${a.base}/redirect?code=307&to=%2Fecho-post`, { method: 'POST', body: 'same origin' });
    await same.text();
    assert.deepEqual([a.seen.at(-1)?.method, a.seen.at(-1)?.body], ['POST', 'same origin'], 'within the origin a 307 keeps the body');
  });

  test('a URL with a user name or password → fetch_invalid_url, not retried, and the password is not logged', async () => {
    const lines: unknown[] = [];
    const log = { warn: (obj: unknown) => void lines.push(obj) };
    const port = new URL(a.base).port;
    for (const url of [`http://user:hunter2@127.0.0.1:${port}/`, `http://hunter2@127.0.0.1:${port}/`]) {
      const before = a.seen.length;
      await assert.rejects(fetcher.fetch(url, {}, log as never), (err: { type?: string; retryable?: boolean; message: string }) => {
        assert.equal(err.type, 'fetch_invalid_url');
        assert.equal(err.retryable, false);
        assert.ok(!err.message.includes('hunter2'), err.message);
        return true;
      });
      assert.equal(a.seen.length, before, 'nothing was sent');
    }
    const redirected = `${a.base}/redirect?to=${encodeURIComponent(`http://u:hunter2@127.0.0.1:${port}/x`)}`;
    await assert.rejects(fetcher.fetch(redirected, {}, log as never), typeOf('fetch_invalid_url'));
    assert.equal(lines.length, 3);
    assert.ok(!JSON.stringify(lines).includes('hunter2'), JSON.stringify(lines));
  });

  test('more than maxRedirects hops, redirect: "error", or a streamed body to resend → fetch_redirect_refused', async () => {
    const before = a.seen.filter((s) => s.url === '/loop').length;
    await assert.rejects(fetcher.fetch(`${a.base}/loop`), typeOf('fetch_redirect_refused'));
    assert.equal(a.seen.filter((s) => s.url === '/loop').length - before, 6, 'the first call and 5 redirects, no more');
    await assert.rejects(fetcher.fetch(`${a.base}/loop`, { maxRedirects: 0 }), typeOf('fetch_redirect_refused'));
    await assert.rejects(fetcher.fetch(`${a.base}/loop`, { redirect: 'error' }), typeOf('fetch_redirect_refused'));
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('streamed'));
        c.close();
      },
    });
    await assert.rejects(
      fetcher.fetch(`${a.base}/redirect?code=307&to=%2Ftarget`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit),
      typeOf('fetch_redirect_refused'),
    );
  });

  test('redirect: "manual" answers the 3xx itself', async () => {
    const res = await fetcher.fetch(`${a.base}/redirect?to=%2Fx`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/x');
  });

  test('a redirect to a non-http(s) URL → fetch_invalid_url', async () => {
    await assert.rejects(fetcher.fetch(`${a.base}/redirect?to=${encodeURIComponent('file:///etc/passwd')}`), typeOf('fetch_invalid_url'));
    await assert.rejects(fetcher.fetch('ftp://127.0.0.1/'), typeOf('fetch_invalid_url'));
    await assert.rejects(fetcher.fetch('not a url'), typeOf('fetch_invalid_url'));
    await assert.rejects(fetcher.fetch(`${a.base}/redirect?to=${encodeURIComponent('http://[::1')}`), typeOf('fetch_invalid_url'));
  });
});

describe('limits', () => {
  test('a declared content-length over the limit fails at once; a chunked body fails when read past it', async () => {
    await assert.rejects(fetcher.fetch(`${a.base}/declared-big`), typeOf('fetch_response_too_large'));
    const res = await fetcher.fetch(`${a.base}/chunked-big`);
    assert.equal(res.status, 200);
    await assert.rejects(res.text(), typeOf('fetch_response_too_large'));
    const raised = await fetcher.fetch(`${a.base}/chunked-big`, { maxResponseBytes: 20_000 });
    assert.equal((await raised.text()).length, 10_000);
  });

  test('timeoutMs covers waiting for headers and for the rest of the body → fetch_timeout (retryable)', async () => {
    await assert.rejects(fetcher.fetch(`${a.base}/hang`, { timeoutMs: 150 }), (err: { type?: string; retryable?: boolean }) => {
      assert.equal(err.type, 'fetch_timeout');
      assert.equal(err.retryable, true);
      return true;
    });
    const res = await fetcher.fetch(`${a.base}/trickle`, { timeoutMs: 300 });
    await assert.rejects(res.text(), typeOf('fetch_timeout'));
  });

  test("the caller's signal aborts with its own reason", async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled by the test');
    const pending = fetcher.fetch(`${a.base}/hang`, { signal: controller.signal });
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (a.seen.some((s) => s.url === '/hang')) {
          clearInterval(poll);
          resolve();
        }
      }, 10);
    });
    controller.abort(reason);
    await assert.rejects(pending, (err) => err === reason);
  });

  test('a name that does not resolve → fetch_unreachable (retryable) with the code, not the name', async () => {
    await assert.rejects(
      fetcher.fetch('http://nowhere.invalid/'),
      (err: { type?: string; retryable?: boolean; message: string; details?: { code?: string } }) => {
        assert.equal(err.type, 'fetch_unreachable');
        assert.equal(err.retryable, true);
        assert.equal(err.details?.code, 'ENOTFOUND');
        assert.ok(!err.message.includes('nowhere.invalid'), err.message);
        return true;
      },
    );
  });
});

describe('ctx.fetch in a handler follows the fetch section of the config', () => {
  test('by default 127.0.0.1 is refused; fetch.allow lets it through with fetch.max_response_bytes and fetch.max_redirects applied', async (t) => {
    const strict = await startKindServer({ operations: { get: { module: FETCHER, retry: { max_attempts: 1 } } } });
    t.after(() => strict.close());
    const refused = await strict.call('POST', '/v1/operations/get?async=false', { url: `${a.base}/page` });
    assert.equal(refused.body.status, 'failed', refused.raw);
    assert.equal(refused.body.error.type, 'fetch_forbidden');

    const open = await startKindServer({
      fetch: { allow: ['127.0.0.1'], max_response_bytes: '8kb', max_redirects: 1 },
      operations: { get: { module: FETCHER, retry: { max_attempts: 1 } } },
    });
    t.after(() => open.close());
    const read = await open.call('POST', '/v1/operations/get?async=false', { url: `${a.base}/page` });
    assert.deepEqual(read.body.result, { status: 200, text: 'a saw GET /page' });
    const big = await open.call('POST', '/v1/operations/get?async=false', { url: `${a.base}/chunked-big` });
    assert.equal(big.body.error.type, 'fetch_response_too_large', big.raw);
    const twice = `${a.base}/redirect?to=${encodeURIComponent(`/redirect?to=${encodeURIComponent('/page')}`)}`;
    const hops = await open.call('POST', '/v1/operations/get?async=false', { url: twice });
    assert.equal(hops.body.error.type, 'fetch_redirect_refused', hops.raw);
    assert.equal(hops.body.error.retryable, false);
  });
});
