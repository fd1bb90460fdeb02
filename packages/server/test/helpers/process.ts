/**
 * Process-level test helpers: start the real `errand serve` (the built
 * dist/cli/main.js) as a child process on a port it picks itself (`--port 0`,
 * read back from its banner, so no other process on the machine can take the
 * port between a check and the bind), wait until `/ready` answers 200, talk
 * to it over HTTP on 127.0.0.1, and make sure every child is killed when the
 * test file ends (call `after(killAllServers)`; a process 'exit' hook is the
 * last resort). stdout and stderr are collected for failure messages.
 *
 * Every wait here is a bounded poll with a deadline; nothing sleeps blindly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SAFETY_NET_MS } from './timing.js';

const here = dirname(fileURLToPath(import.meta.url));
/** packages/server */
export const SERVER_PACKAGE_DIR = resolve(here, '..', '..');
/** The built CLI; `npm run build -w errand` makes it. */
export const CLI_PATH = join(SERVER_PACKAGE_DIR, 'dist', 'cli', 'main.js');
/** The repository root. */
export const REPO_DIR = resolve(SERVER_PACKAGE_DIR, '..', '..');

const MAX_OUTPUT_CHARS = 64_000;

// ---------------------------------------------------------------------------
// Waiting

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Shown in the timeout error. */
  what?: string;
}

/**
 * Polls `probe` every `intervalMs` (default 20) until it returns a value that
 * is not undefined/false, or throws when `timeoutMs` (default 10 s) passes.
 * Errors thrown by the probe count as "not yet" (the last one is reported).
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? SAFETY_NET_MS;
  const intervalMs = options.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  const maxRounds = Math.ceil(timeoutMs / Math.max(1, intervalMs)) + 2;
  let lastError: unknown;
  for (let round = 0; round < maxRounds; round++) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await delay(Math.min(intervalMs, Math.max(1, deadline - Date.now())));
  }
  const suffix = lastError ? ` (last error: ${(lastError as Error).message ?? String(lastError)})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what ?? 'a condition'}${suffix}`);
}

/** The poll interval itself: a short timer, used only between polls. */
function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------
// Files and ports

/** A fresh temp dir; `cleanup()` removes it. */
export function makeTempDir(prefix = 'errand-proc-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes `config` as the YAML config file (JSON is valid YAML) and returns its path. */
export function writeConfig(dir: string, config: Record<string, unknown>, name = 'errand.yaml'): string {
  const path = join(dir, name);
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`);
  return path;
}

/** A port that was free a moment ago (listen on 0 and close). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** True when nothing listens on 127.0.0.1:`port` and we could bind it. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolveFree(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolveFree(true)));
  });
}

// ---------------------------------------------------------------------------
// HTTP

export interface HttpAnswer {
  status: number;
  headers: Headers;
  /** Parsed JSON, or the text when it is not JSON. */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

/** One HTTP call (JSON body); rejects only on network errors. */
export async function http(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = SAFETY_NET_MS,
): Promise<HttpAnswer> {
  const init: RequestInit = { method, headers: { ...headers }, signal: AbortSignal.timeout(timeoutMs) };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** True when `err` is a failed connection (nothing listening, or the socket was closed on us). */
export function isConnectionError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e && !seen.has(e); depth++) {
    seen.add(e);
    const code = (e as { code?: string }).code;
    if (code && ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'].includes(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Server processes

export interface StartOptions {
  /** Config file passed as --config (omit to pass none). */
  config?: string;
  /** Port passed as --port; default 0: the server binds a free port itself and prints it in its banner. */
  port?: number;
  /** Extra environment variables (merged over process.env, from which every ERRAND_* variable is dropped). */
  env?: Record<string, string>;
  cwd?: string;
  /** How long to wait for the banner and /ready (default 60 s: a node starting on a loaded machine is slow, not broken). */
  readyTimeoutMs?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The banner line `errand serve` prints once it listens (cli/serve.ts). */
const LISTENING = /Errand is listening on (https?:\/\/\S+)/;

export class ServerProcess {
  readonly child: ChildProcess;
  private listenPort: number;
  private out = '';
  private err = '';
  private exitInfo: ExitInfo | undefined;
  private readonly exited: Promise<ExitInfo>;

  private readonly listening: Promise<number>;

  /** `port` 0: the child picks one; it is known once its banner is out (`waitReady` waits for it). */
  constructor(child: ChildProcess, port: number) {
    this.child = child;
    this.listenPort = port;
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.out = keepTail(this.out + chunk)));
    let banner: string | null = '';
    this.listening = new Promise<number>((resolvePort, reject) => {
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
        this.err = keepTail(this.err + chunk);
        if (banner === null) return;
        banner = (banner + chunk).slice(-4096);
        const match = LISTENING.exec(banner);
        if (match) {
          banner = null;
          resolvePort(Number(new URL(match[1]!).port));
        }
      });
      child.once('exit', () => reject(new Error('exited before it printed its banner')));
    });
    this.listening.catch(() => {});
    this.exited = new Promise<ExitInfo>((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolveExit(this.exitInfo);
      });
    });
  }

  /** The port it listens on (0 until its banner is out). */
  get port(): number {
    return this.listenPort;
  }

  get url(): string {
    return `http://127.0.0.1:${this.listenPort}`;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get stderr(): string {
    return this.err;
  }

  get stdout(): string {
    return this.out;
  }

  /** stdout + stderr, for assertion messages. */
  diagnostics(): string {
    const exit = this.exitInfo ? `exited code=${this.exitInfo.code} signal=${this.exitInfo.signal}` : 'still running';
    return `[errand pid ${this.pid} on ${this.url}, ${exit}]\n--- stderr ---\n${this.err}\n--- stdout ---\n${this.out}`;
  }

  /**
   * Waits for the banner (the port it listens on: checking it, not just any
   * answer on the port, makes sure we talk to this process), then polls
   * GET /ready until 200; throws (with diagnostics) on timeout or if the
   * process exits first.
   */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no "Errand is listening" banner within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        const port = await Promise.race([this.listening, timeout]);
        if (this.listenPort !== 0 && port !== this.listenPort)
          throw new Error(`listens on ${port}, not on the requested ${this.listenPort}`);
        this.listenPort = port;
      } finally {
        clearTimeout(timer);
      }
      await waitFor(
        async () => {
          if (!this.running) return 'exited'; // stop polling; reported below
          try {
            const res = await http('GET', `${this.url}/ready`, undefined, {}, 2_000);
            return res.status === 200 && 'ready';
          } catch (err) {
            if (isConnectionError(err)) return false;
            throw err;
          }
        },
        { timeoutMs: Math.max(1000, deadline - Date.now()), what: `GET ${this.url}/ready to answer 200` },
      );
      if (!this.running) throw new ExitedEarly(this.exitInfo!, this.diagnostics());
    } catch (err) {
      if (err instanceof ExitedEarly) throw err;
      if (!this.running) throw new ExitedEarly(this.exitInfo!, this.diagnostics(), err);
      throw new Error(`${(err as Error).message}\n${this.diagnostics()}`, { cause: err });
    }
  }

  /** Sends a signal (no-op once exited). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child.kill(signal);
  }

  /** Resolves when the process has exited; throws with diagnostics after `timeoutMs`. */
  async waitExit(timeoutMs = SAFETY_NET_MS): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`errand did not exit within ${timeoutMs} ms\n${this.diagnostics()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL and wait for the exit. */
  async crash(): Promise<ExitInfo> {
    this.kill('SIGKILL');
    return this.waitExit(10_000);
  }

  /** Makes sure the process is gone (SIGKILL if needed). Safe to call twice. */
  async dispose(): Promise<void> {
    if (!this.running) return;
    this.kill('SIGKILL');
    await this.waitExit(10_000).catch(() => {});
  }
}

class ExitedEarly extends Error {
  constructor(
    readonly exit: ExitInfo,
    diagnostics = '',
    cause?: unknown,
  ) {
    super(`errand exited before it was ready (code=${exit.code} signal=${exit.signal})${diagnostics ? `\n${diagnostics}` : ''}`, { cause });
  }
}

function keepTail(text: string): string {
  return text.length > MAX_OUTPUT_CHARS ? text.slice(text.length - MAX_OUTPUT_CHARS) : text;
}

/** process.env without ERRAND_* variables, so the runner's environment cannot change a test's config (auth, store, ...). */
function inheritedEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('ERRAND_')) env[name] = value;
  return env;
}

const live = new Set<ServerProcess>();
let exitHookInstalled = false;

function track(server: ServerProcess): void {
  live.add(server);
  void server.waitExit(24 * 3600 * 1000).then(
    () => live.delete(server),
    () => {},
  );
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const s of live) s.kill('SIGKILL');
    });
  }
}

/**
 * Starts `node dist/cli/main.js serve` and waits until /ready answers 200. By
 * default it passes `--port 0` and learns the port from the banner, so there
 * is no window in which another process can take a port picked here.
 */
export async function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run \`npm run build -w errand\` first`);
  const port = options.port ?? 0;
  const args = [CLI_PATH, 'serve'];
  if (options.config !== undefined) args.push('--config', options.config);
  args.push('--port', String(port));
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? SERVER_PACKAGE_DIR,
    env: { ...inheritedEnv(), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server = new ServerProcess(child, port);
  track(server);
  try {
    await server.waitReady(options.readyTimeoutMs ?? 60_000);
    return server;
  } catch (err) {
    await server.dispose();
    throw err;
  }
}

/** SIGKILLs every server this file started that is still running; use as `after(killAllServers)`. */
export async function killAllServers(): Promise<void> {
  await Promise.all([...live].map((s) => s.dispose()));
}

// ---------------------------------------------------------------------------
// Operation modules

/**
 * An operation that works in steps: for `input.steps` steps (default 5) it
 * reports progress, then waits `input.step_ms` ms (default 50) on a timer that
 * honours ctx.signal. When `markers` is given, each attempt that reaches the
 * end first writes the empty file `<markers>/<request_id>.<attempt>`, so a
 * test can tell which attempts ran to completion. Resolves with
 * `{ steps, attempt, request_id, echo }` (`echo` is `input.echo`).
 */
export function stepsOperationSource(markers?: string): string {
  return `import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const MARKERS = ${JSON.stringify(markers ?? null)};

export default {
  description: 'works in steps (test fixture)',
  async run(input, ctx) {
    const steps = Number.isInteger(input?.steps) ? input.steps : 5;
    const stepMs = typeof input?.step_ms === 'number' ? input.step_ms : 50;
    for (let i = 0; i < steps; i++) {
      await ctx.progress({ percent: Math.floor((i / steps) * 100), current_step: 'step ' + (i + 1), total_steps: steps, completed_steps: i });
      await sleep(stepMs, undefined, { signal: ctx.signal });
    }
    if (MARKERS !== null) writeFileSync(join(MARKERS, ctx.request_id + '.' + ctx.attempt), '');
    return { steps, attempt: ctx.attempt, request_id: ctx.request_id, echo: input?.echo ?? null };
  },
};
`;
}

/** Writes {@link stepsOperationSource} to `<dir>/<name>` and returns the path. */
export function writeStepsOperation(dir: string, name = 'steps.mjs', markers?: string): string {
  const path = join(dir, name);
  writeFileSync(path, stepsOperationSource(markers));
  return path;
}
