/**
 * Server-Sent Events in tests: a tiny client over node:http that parses the
 * stream itself (`openSse`), and a `streamer` test operation that emits output
 * chunks on command.
 *
 * `streamerOperation()` writes `streamer.mjs` into a temp dir; pass
 * `streamer.override` to `startHttpServer({ overrides })`. Its input (the chat
 * body's extra fields, or an operation body):
 * - `chunks` (3): how many `ctx.emit("chunk <i>")` calls; `size` makes each a
 *   string of that many "x" instead;
 * - `progress`: report `{ percent: 10 }` before the chunks and `{ percent: 90 }` after;
 * - `gateAt`: before chunk `gateAt` (and with `gateEvery`, every that many
 *   chunks after it), wait until the test calls `streamer.open(id)`;
 * - `fail`: throw a non-retryable `tool_error` after the chunks;
 * - `failFirst`: on attempt 1 only, throw a retryable `flaky` error after the chunks.
 * It returns `{ chunks }`. Gates abort with the handler's signal.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SAFETY_NET_MS } from './timing.js';

/** One parsed event. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

const REGISTRY_KEY = '__errandTestStreamer';

interface GateRegistry {
  gates: Map<string, () => void>;
  waiters: Set<() => void>;
}

function registry(): GateRegistry {
  const g = globalThis as unknown as Record<string, GateRegistry | undefined>;
  g[REGISTRY_KEY] ??= { gates: new Map(), waiters: new Set() };
  return g[REGISTRY_KEY];
}

const STREAMER_SOURCE = `
function registry() {
  globalThis.${REGISTRY_KEY} ??= { gates: new Map(), waiters: new Set() };
  return globalThis.${REGISTRY_KEY};
}
function gate(ctx) {
  const reg = registry();
  return new Promise((resolve, reject) => {
    const onAbort = () => { reg.gates.delete(ctx.request_id); reject(ctx.signal.reason); };
    if (ctx.signal.aborted) return onAbort();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    reg.gates.set(ctx.request_id, () => { ctx.signal.removeEventListener('abort', onAbort); resolve(); });
    for (const w of [...reg.waiters]) w();
  });
}
export default {
  async run(input, ctx) {
    const n = input.chunks ?? 3;
    if (input.progress) await ctx.progress({ percent: 10, message: 'starting' });
    for (let i = 0; i < n; i++) {
      const gated = input.gateAt !== undefined && i >= input.gateAt &&
        (i === input.gateAt || (input.gateEvery !== undefined && (i - input.gateAt) % input.gateEvery === 0));
      if (gated) await gate(ctx);
      await ctx.emit(input.size ? 'x'.repeat(input.size) : 'chunk ' + i);
    }
    if (input.progress) await ctx.progress({ percent: 90, message: 'finishing' });
    if (input.failFirst && ctx.attempt === 1) throw Object.assign(new Error('try again'), { retryable: true, type: 'flaky' });
    if (input.fail) throw Object.assign(new Error('the stream broke'), { retryable: false, type: 'tool_error' });
    return { chunks: n };
  },
};
`;

export interface Streamer {
  /** Config overrides declaring the `streamer` operation. */
  readonly override: { operations: { streamer: { module: string } } };
  /** Resolves once the handler of `id` waits at a gate. */
  waitGate(id: string, timeoutMs?: number): Promise<void>;
  /** Lets the handler of `id` past its gate. */
  open(id: string): void;
  /** Removes the temp dir. */
  cleanup(): void;
}

export function streamerOperation(): Streamer {
  const dir = mkdtempSync(join(tmpdir(), 'errand-sse-ops-'));
  const module = join(dir, 'streamer.mjs');
  writeFileSync(module, STREAMER_SOURCE);
  const reg = registry();
  return {
    override: { operations: { streamer: { module } } },
    waitGate(id, timeoutMs = SAFETY_NET_MS) {
      if (reg.gates.has(id)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const waiter = () => {
          if (!reg.gates.has(id)) return;
          clearTimeout(timer);
          reg.waiters.delete(waiter);
          resolve();
        };
        const timer = setTimeout(() => {
          reg.waiters.delete(waiter);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for the streamer of ${id} to reach a gate`));
        }, timeoutMs);
        reg.waiters.add(waiter);
      });
    },
    open(id) {
      const release = reg.gates.get(id);
      if (!release) throw new Error(`the streamer of ${id} is not at a gate`);
      reg.gates.delete(id);
      release();
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Incremental SSE parser (the WHATWG rules that matter here): feed text, get whole events. */
export class SseParser {
  private buffer = '';
  private id: string | undefined;
  private event = '';
  private data: string[] = [];
  /** Comment lines seen (`: keep-alive`). */
  comments = 0;

  feed(text: string): SseMessage[] {
    this.buffer += text;
    const out: SseMessage[] = [];
    for (let i = 0; i < 1_000_000; i++) {
      const newline = this.buffer.indexOf('\n');
      if (newline < 0) break;
      const line = this.buffer.slice(0, newline).replace(/\r$/, '');
      this.buffer = this.buffer.slice(newline + 1);
      if (line === '') {
        if (this.data.length > 0 || this.event !== '')
          out.push({ id: this.id, event: this.event || 'message', data: this.data.join('\n') });
        this.id = undefined;
        this.event = '';
        this.data = [];
      } else if (line.startsWith(':')) {
        this.comments++;
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') this.id = value;
        else if (field === 'event') this.event = value;
        else if (field === 'data') this.data.push(value);
      }
    }
    return out;
  }
}

export interface SseClientOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: unknown;
  agent?: http.Agent;
}

/** An open event stream (or a non-SSE answer, whose body is in `body`). */
export interface SseClient {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Every event received so far, in order. */
  readonly events: SseMessage[];
  readonly parser: SseParser;
  /** True once the server ended the stream. */
  readonly ended: boolean;
  /** The whole body, once ended (for error answers). */
  body(): Promise<string>;
  /** Resolves once `predicate` holds over the events received (checked on each event and at the end). */
  waitFor(predicate: (events: SseMessage[]) => boolean, timeoutMs?: number, what?: string): Promise<SseMessage[]>;
  /** Resolves with every event once the server ends the stream. */
  untilEnd(timeoutMs?: number): Promise<SseMessage[]>;
  /** Drops the connection (as a client that goes away). */
  destroy(): void;
}

/** Opens `url` and parses the answer as it arrives. */
export function connectSse(url: string, options: SseClientOptions = {}): Promise<SseClient> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers, agent: options.agent }, (res) => {
      res.setEncoding('utf8');
      const parser = new SseParser();
      const events: SseMessage[] = [];
      let raw = '';
      let ended = false;
      const checks = new Set<() => void>();
      const run = () => {
        for (const check of [...checks]) check();
      };
      res.on('data', (chunk: string) => {
        if (raw.length < 1_000_000) raw += chunk;
        events.push(...parser.feed(chunk));
        run();
      });
      const end = () => {
        if (ended) return;
        ended = true;
        run();
      };
      res.on('end', end);
      res.on('close', end);
      res.on('error', end);
      const waitFor: SseClient['waitFor'] = (predicate, timeoutMs = SAFETY_NET_MS, what = 'events') =>
        new Promise((done, fail) => {
          const check = () => {
            if (predicate(events)) {
              finish();
              done(events);
            } else if (ended) {
              finish();
              fail(new Error(`stream ended before ${what}; got ${JSON.stringify(events.map((e) => `${e.id}:${e.event}`))}`));
            }
          };
          const timer = setTimeout(() => {
            finish();
            fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${events.length} events`));
          }, timeoutMs);
          const finish = () => {
            clearTimeout(timer);
            checks.delete(check);
          };
          checks.add(check);
          check();
        });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        parser,
        get ended() {
          return ended;
        },
        body: async () => {
          await waitFor(() => ended, 5000, 'the end of the body').catch(() => undefined);
          return raw;
        },
        waitFor,
        untilEnd: async (timeoutMs = SAFETY_NET_MS) => {
          if (ended) return events;
          return new Promise((done, fail) => {
            const timer = setTimeout(() => {
              checks.delete(check);
              fail(new Error(`timed out after ${timeoutMs} ms waiting for the stream to end; got ${events.length} events`));
            }, timeoutMs);
            const check = () => {
              if (!ended) return;
              clearTimeout(timer);
              checks.delete(check);
              done(events);
            };
            checks.add(check);
          });
        },
        destroy: () => {
          req.destroy();
          res.destroy();
        },
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** The JSON data of an event. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function dataOf(message: SseMessage | undefined): any {
  if (!message) throw new Error('no such event');
  return JSON.parse(message.data);
}
