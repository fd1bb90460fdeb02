/**
 * Local proxies in front of the real server, on 127.0.0.1:
 * - `tcpProxy`: forwards bytes; `sever()` destroys every open connection (a dropped stream, from the
 *   client's point of view) while new connections keep working.
 * - `httpProxy`: forwards HTTP requests after `rewrite` changes their URL (e.g. drops `?wait=`), and
 *   records each URL, so a test can see how the client polled.
 */
import { request as httpRequest, createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  sever(): void;
  close(): Promise<void>;
}

export async function tcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target);
  const open = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((client) => {
    connections++;
    const upstream = connect(Number(port), hostname);
    open.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const address = await listen(server);
  return {
    url: `http://127.0.0.1:${address}`,
    get connections() {
      return connections;
    },
    sever() {
      for (const socket of open) socket.destroy();
      open.clear();
    },
    close: () => closeServer(server, () => [...open].forEach((s) => s.destroy())),
  };
}

export interface HttpProxy {
  url: string;
  /** Method, path and query of every request as the client sent it (before `rewrite`), in order. */
  readonly seen: string[];
  close(): Promise<void>;
}

export async function httpProxy(target: string, rewrite: (url: URL) => void): Promise<HttpProxy> {
  const base = new URL(target);
  const seen: string[] = [];
  const server: HttpServer = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', base);
    seen.push(`${req.method} ${url.pathname}${url.search}`);
    rewrite(url);
    const upstream = httpRequest(url, { method: req.method, headers: { ...req.headers, host: base.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, seen, close: () => closeServer(server, () => server.closeAllConnections()) };
}

/** A scripted HTTP server: `handler` answers each request (method, URL, headers, body) in turn. */
export interface FakeServer {
  url: string;
  readonly requests: { method: string; url: string; headers: Record<string, string | string[] | undefined>; body: string }[];
  close(): Promise<void>;
}

export type FakeAnswer = { status: number; headers?: Record<string, string>; body?: string } | 'hang-up';

export async function fakeServer(handler: (index: number, method: string, url: string) => FakeAnswer): Promise<FakeServer> {
  const requests: FakeServer['requests'] = [];
  const server: HttpServer = createHttpServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const answer = handler(requests.length - 1, req.method ?? '', req.url ?? '');
      if (answer === 'hang-up') {
        req.socket.destroy();
        return;
      }
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? '');
    });
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, requests, close: () => closeServer(server, () => server.closeAllConnections()) };
}

function listen(server: Server | HttpServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

function closeServer(server: Server | HttpServer, destroyOpen: () => void): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    destroyOpen();
  });
}
