/**
 * In-process Errand servers for HTTP-level tests. `startHttpServer()` writes a
 * handful of test operations (.mjs) into a fresh temp dir, builds the config
 * with `loadConfig({ overrides, baseDir })` (temp SQLite file, silent logs, no
 * environment), starts `createServer()` and hands back helpers around
 * `app.inject()`. Nothing listens on a port.
 *
 * Test operations (all plain `{ run }` objects):
 * - `echo`     returns its input.
 * - `slow`     waits until its signal aborts (cancel, timeout, shutdown) or the
 *              test releases it with `slow.release(id, value)`.
 * - `fail`     throws `{ retryable: false, type: 'tool_error' }` ("boom").
 * - `progress` reports progress, then returns; with `{ hold: true }` it waits
 *              like `slow` after reporting.
 * - `bigint`   returns a BigInt (not JSON-serialisable).
 * - `cycle`    returns an object that contains itself.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { loadConfig } from '../../src/config/index.js';
import type { Clock } from '../../src/clock/index.js';
import { isTerminal, type Request } from '../../src/model/index.js';
import { createServer, type CreateServerOptions, type ErrandServer } from '../../src/server.js';
import { SAFETY_NET_MS } from './timing.js';

/** Shared with the .mjs operations through globalThis (same process). */
interface SlowRegistry {
  started: Map<string, number>;
  aborted: Map<string, unknown>;
  releases: Map<string, (value: unknown) => void>;
  waiters: Set<() => void>;
}

const REGISTRY_KEY = '__errandTestSlow';

function registry(): SlowRegistry {
  const g = globalThis as unknown as Record<string, SlowRegistry | undefined>;
  g[REGISTRY_KEY] ??= { started: new Map(), aborted: new Map(), releases: new Map(), waiters: new Set() };
  return g[REGISTRY_KEY];
}

/** The shared prelude of the waiting operations: registers, then waits for abort or release. */
const HOLD_SOURCE = `
function registry() {
  globalThis.${REGISTRY_KEY} ??= { started: new Map(), aborted: new Map(), releases: new Map(), waiters: new Set() };
  return globalThis.${REGISTRY_KEY};
}
function notify(reg) { for (const w of [...reg.waiters]) w(); }
export function hold(ctx) {
  const reg = registry();
  return new Promise((resolve, reject) => {
    reg.releases.set(ctx.request_id, resolve);
    const onAbort = () => {
      reg.aborted.set(ctx.request_id, ctx.signal.reason);
      reg.releases.delete(ctx.request_id);
      notify(reg);
      reject(ctx.signal.reason);
    };
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });
    reg.started.set(ctx.request_id, (reg.started.get(ctx.request_id) ?? 0) + 1);
    notify(reg);
  });
}
`;

const OPERATIONS: Record<string, string> = {
  '_hold.mjs': HOLD_SOURCE,
  'echo.mjs': `export default { async run(input) { return input; } };\n`,
  'slow.mjs': `import { hold } from './_hold.mjs';\nexport default { async run(input, ctx) { const released = await hold(ctx); return released ?? { released: true }; } };\n`,
  'fail.mjs': `export default { async run() { throw Object.assign(new Error('boom'), { retryable: false, type: 'tool_error' }); } };\n`,
  'progress.mjs': `import { hold } from './_hold.mjs';
export default {
  async run(input, ctx) {
    await ctx.progress({ percent: 50, message: 'Halfway there', current_step: 'analyse', total_steps: 4, completed_steps: 2 });
    if (input && input.hold) await hold(ctx);
    return { done: true };
  },
};
`,
  'bigint.mjs': `export default { async run() { return { n: 10n }; } };\n`,
  'cycle.mjs': `export default { async run() { const a = { name: 'loop' }; a.self = a; return a; } };\n`,
};

export const TEST_OPERATIONS = ['echo', 'slow', 'fail', 'progress', 'bigint', 'cycle'] as const;

export interface HttpServerOptions {
  /** Merged over the base config (after the test operations and store are set). */
  overrides?: Record<string, unknown>;
  /** chat.operation; `null` leaves chat unconfigured. Default `echo`. */
  chatOperation?: string | null;
  /** The engine's clock (e.g. a ManualClock); default the system clock. */
  clock?: Clock;
  /** `createServer`'s test knobs (clock, resolver, …). */
  test?: CreateServerOptions['test'];
}

export interface TestHttpServer {
  readonly server: ErrandServer;
  readonly dir: string;
  /** `app.inject()` shortcut. */
  inject(options: InjectOptions): Promise<LightMyRequestResponse>;
  /** Waits (event-driven, bounded) until the request is terminal; throws if it is not by `timeoutMs`. */
  waitTerminal(id: string, timeoutMs?: number): Promise<Request>;
  /** Controls the `slow` / `progress {hold}` handlers of this process. */
  readonly slow: {
    /** Resolves once the handler for `id` is running (and holding). */
    started(id: string, timeoutMs?: number): Promise<void>;
    /** Resolves with the abort reason once the handler's signal for `id` aborted. */
    aborted(id: string, timeoutMs?: number): Promise<unknown>;
    /** True when the handler's signal for `id` aborted. */
    wasAborted(id: string): boolean;
    /** Lets the holding handler of `id` return `value`. */
    release(id: string, value?: unknown): void;
  };
  /** Stops the server (no grace: holding handlers are aborted) and removes the temp dir. */
  close(): Promise<void>;
}

/**
 * Holds the event loop open while `promise` is pending (at most `ms`). The
 * engine's timers are unref'd by design, and `inject()` has no socket, so
 * without this a test awaiting a sync answer could see the loop drain.
 */
function keepAlive<T>(promise: Promise<T>, ms: number): Promise<T> {
  const timer = setTimeout(() => {}, ms);
  return promise.finally(() => clearTimeout(timer));
}

function waitRegistry(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const reg = registry();
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const waiter = () => {
      if (!check()) return;
      clearTimeout(timer);
      reg.waiters.delete(waiter);
      resolve();
    };
    const timer = setTimeout(() => {
      reg.waiters.delete(waiter);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    reg.waiters.add(waiter);
  });
}

/** Starts an in-process server on a fresh temp dir. */
export async function startHttpServer(options: HttpServerOptions = {}): Promise<TestHttpServer> {
  const dir = mkdtempSync(join(tmpdir(), 'errand-http-'));
  const opsDir = join(dir, 'ops');
  mkdirSync(opsDir);
  for (const [file, source] of Object.entries(OPERATIONS)) writeFileSync(join(opsDir, file), source);

  const operations: Record<string, unknown> = {};
  for (const name of TEST_OPERATIONS) operations[name] = { module: `./ops/${name}.mjs` };
  const chatOperation = options.chatOperation === undefined ? 'echo' : options.chatOperation;

  const base: Record<string, unknown> = {
    store: { url: `sqlite:${join(dir, 'errand.db')}` },
    logging: { level: 'silent' },
    operations,
    chat: chatOperation === null ? {} : { operation: chatOperation },
    triggers: { 'echo-trigger': { operation: 'echo' }, 'slow-trigger': { operation: 'slow' } },
    workflow: { retry: { jitter: 0 } },
  };
  deepMerge(base, options.overrides ?? {});
  const config = loadConfig({ overrides: base, baseDir: dir, env: {} });

  let server: ErrandServer;
  try {
    server = await createServer({ config, test: options.clock ? { ...options.test, clock: options.clock } : options.test });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const reg = registry();

  return {
    server,
    dir,
    inject: (injectOptions) => keepAlive(server.app.inject(injectOptions), 30_000),
    async waitTerminal(id, timeoutMs = SAFETY_NET_MS) {
      const found = await keepAlive(server.engine.waitForTerminal(id, timeoutMs), timeoutMs + 1000);
      if (!found) throw new Error(`request ${id} does not exist`);
      if (!isTerminal(found.status)) throw new Error(`request ${id} is still ${found.status} after ${timeoutMs} ms`);
      return found;
    },
    slow: {
      started: (id, timeoutMs = SAFETY_NET_MS) =>
        waitRegistry(() => reg.started.has(id) && reg.releases.has(id), timeoutMs, `handler of ${id} to start`),
      async aborted(id, timeoutMs = SAFETY_NET_MS) {
        await waitRegistry(() => reg.aborted.has(id), timeoutMs, `signal of ${id} to abort`);
        return reg.aborted.get(id);
      },
      wasAborted: (id) => reg.aborted.has(id),
      release(id, value) {
        const release = reg.releases.get(id);
        if (!release) throw new Error(`no handler of ${id} is holding`);
        reg.releases.delete(id);
        release(value);
      },
    },
    async close() {
      await server.close(0);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(source)) {
    const existing = target[k];
    if (isPlainObject(v) && isPlainObject(existing)) deepMerge(existing, v);
    else target[k] = v;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A parsed response body, loosely typed for assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type JsonBody = Record<string, any>;

/** Parsed JSON body of an injected response. */
export function json<T = JsonBody>(res: LightMyRequestResponse): T {
  return JSON.parse(res.body) as T;
}

/** Asserts the error envelope shape and returns the error object. */
export function errorOf(res: LightMyRequestResponse): {
  type: string;
  message: string;
  retryable: boolean;
  field?: string;
  [k: string]: unknown;
} {
  const body = json(res);
  if (typeof body !== 'object' || body === null || typeof body.error !== 'object' || body.error === null) {
    throw new Error(`expected an error envelope, got ${res.statusCode} ${res.body}`);
  }
  const error = body.error as Record<string, unknown>;
  if (typeof error.type !== 'string' || typeof error.message !== 'string' || typeof error.retryable !== 'boolean') {
    throw new Error(`error envelope lacks type/message/retryable: ${res.body}`);
  }
  if ('field' in error && typeof error.field !== 'string') throw new Error(`error.field is not a string: ${res.body}`);
  return error as ReturnType<typeof errorOf>;
}

/** Every request id the listing shows (walks all pages; bounded). */
export async function listAllIds(t: TestHttpServer, headers: Record<string, string> = {}, query = ''): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const qs = [query, 'limit=100', cursor ? `cursor=${encodeURIComponent(cursor)}` : ''].filter(Boolean).join('&');
    const res = await t.inject({ method: 'GET', url: `/v1/requests?${qs}`, headers });
    if (res.statusCode !== 200) throw new Error(`list failed: ${res.statusCode} ${res.body}`);
    const body = json(res);
    for (const r of body.data as { request_id: string }[]) ids.push(r.request_id);
    if (!body.has_more) return ids;
    cursor = body.next_cursor as string;
  }
  throw new Error('listing did not end within 100 pages');
}
