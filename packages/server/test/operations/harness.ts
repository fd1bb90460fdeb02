/**
 * An in-process server built from a real YAML file (so `${VAR}` interpolation
 * and `api_key_env` are exercised) with the given environment, plus small
 * local upstreams on 127.0.0.1 for the http and llm kinds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { isTerminal, type Request } from '../../src/model/index.js';
import { createServer, type ErrandServer } from '../../src/server.js';
import type { JsonBody } from '../helpers/http.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

export interface KindServer {
  server: ErrandServer;
  call(method: InjectOptions['method'], url: string, payload?: unknown): Promise<{ status: number; body: JsonBody; raw: string }>;
  waitTerminal(id: string, timeoutMs?: number): Promise<Request>;
  outputs(id: string): Promise<unknown[]>;
  close(): Promise<void>;
}

export async function startKindServer(config: Record<string, unknown>, env: Record<string, string> = {}): Promise<KindServer> {
  const dir = mkdtempSync(join(tmpdir(), 'errand-kinds-'));
  const file = join(dir, 'errand.yaml');
  writeFileSync(
    file,
    stringify({ store: { url: 'sqlite:./errand.db' }, logging: { level: 'silent' }, workflow: { retry: { jitter: 0 } }, ...config }),
  );
  let server: ErrandServer;
  try {
    server = await createServer({ config: loadConfig({ path: file, env }) });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    server,
    async call(method, url, payload) {
      const res = await server.app.inject({
        method,
        url,
        ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }),
      });
      return {
        status: res.statusCode,
        body: (String(res.headers['content-type'] ?? '').includes('json') ? res.json() : {}) as JsonBody,
        raw: res.body,
      };
    },
    async waitTerminal(id, timeoutMs = SAFETY_NET_MS) {
      // A timer holds the loop open: engine timers are unref'd.
      const keep = setTimeout(() => {}, timeoutMs + 1000);
      try {
        const found = await server.engine.waitForTerminal(id, timeoutMs);
        if (!found || !isTerminal(found.status)) throw new Error(`request ${id} is not terminal after ${timeoutMs} ms`);
        return found;
      } finally {
        clearTimeout(keep);
      }
    },
    async outputs(id) {
      const events = await server.store.eventListAfter({ id, afterSeq: 0, limit: 1000 });
      return events.filter((e) => e.type === 'output').map((e) => e.data);
    },
    async close() {
      await server.close(0);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A local upstream: `handler` answers; every request's method, url, headers and body are recorded. */
export interface Upstream {
  url: string;
  calls: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
  /** Resolves when a request's connection closes before its answer ended (the caller aborted). */
  aborted(): Promise<void>;
  close(): Promise<void>;
}

export async function startUpstream(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<Upstream> {
  const calls: Upstream['calls'] = [];
  const abortWaiters: (() => void)[] = [];
  let abortCount = 0;
  const server: Server = createHttpServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      calls.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.on('close', () => {
        if (res.writableFinished) return;
        abortCount++;
        for (const w of abortWaiters.splice(0)) w();
      });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    aborted: () =>
      new Promise((resolve, reject) => {
        if (abortCount > 0) return resolve();
        const timer = setTimeout(() => reject(new Error(`the upstream call was not aborted within ${SAFETY_NET_MS} ms`)), SAFETY_NET_MS);
        abortWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
