/**
 * A webhook receiver on 127.0.0.1 that a test controls: each path answers as
 * the test says (`status`, `hang`, `reset`, `slow`, `huge`, `redirect`), and
 * every request is recorded with its raw body and headers. `next()` awaits the
 * next request (event-driven, bounded). `close()` destroys open sockets, so a
 * hanging answer never keeps the test alive.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { SAFETY_NET_MS } from './timing.js';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export type Behaviour =
  | { kind: 'status'; code: number; body?: string; close?: boolean }
  | { kind: 'hang' }
  | { kind: 'reset' }
  | { kind: 'redirect'; code: number; location: string }
  /** Answers 200 with `bytes` of body, forever-ish: the sender must cut it off. */
  | { kind: 'huge'; bytes: number };

export interface Receiver {
  readonly url: string;
  readonly received: Received[];
  /** How `path` answers from now on; a list answers in turn (the last repeats). Default 200. */
  on(path: string, ...behaviours: Behaviour[]): void;
  /** Resolves with the next request to `path` (or any path) received from now on. */
  next(path?: string, timeoutMs?: number): Promise<Received>;
  /** Requests received on `path`. */
  count(path: string): number;
  close(): Promise<void>;
}

export const ok: Behaviour = { kind: 'status', code: 200, body: 'ok' };
export const status = (code: number, close = false): Behaviour => ({ kind: 'status', code, body: `answer ${code}`, close });

export async function startReceiver(): Promise<Receiver> {
  const plans = new Map<string, Behaviour[]>();
  const received: Received[] = [];
  const waiters = new Set<{ path: string | undefined; resolve: (r: Received) => void }>();
  const sockets = new Set<Socket>();

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const path = req.url ?? '/';
    const entry = { path, headers: req.headers, body };
    received.push(entry);
    for (const w of [...waiters]) {
      if (w.path === undefined || w.path === path) {
        waiters.delete(w);
        w.resolve(entry);
      }
    }
    const plan = plans.get(path) ?? [];
    const behaviour = (plan.length > 1 ? plan.shift() : plan[0]) ?? ok;
    switch (behaviour.kind) {
      case 'status':
        res.writeHead(behaviour.code, behaviour.close ? { connection: 'close' } : {});
        res.end(behaviour.body ?? '');
        return;
      case 'hang':
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'redirect':
        res.writeHead(behaviour.code, { location: behaviour.location });
        res.end();
        return;
      case 'huge': {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const chunk = Buffer.alloc(64 * 1024, 'x');
        let sent = 0;
        const pump = () => {
          while (sent < behaviour.bytes) {
            sent += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        res.on('error', () => undefined);
        pump();
        return;
      }
    }
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    received,
    on(path, ...behaviours) {
      plans.set(path, behaviours);
    },
    next(path, timeoutMs = SAFETY_NET_MS) {
      return new Promise((resolve, reject) => {
        const waiter = {
          path,
          resolve: (r: Received) => {
            clearTimeout(timer);
            resolve(r);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for a webhook on ${path ?? 'any path'}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    count: (path) => received.filter((r) => r.path === path).length,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
