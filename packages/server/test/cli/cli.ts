/**
 * Helpers for the CLI tests: run the BUILT `errand` binary (dist/cli/main.js)
 * as a child process against a real server process, with a bounded time, and
 * collect its stdout, stderr and exit code. `runInTerminal` runs it under a
 * pseudo-terminal (util-linux `script`) so that TTY-only output such as the
 * progress bar is drawn, and returns what the terminal received.
 *
 * The server gets these operations (files written to its temp dir):
 * - `steps`  works in steps with progress (test/helpers/process.ts);
 * - `echo`   returns its input (also the `hook` trigger's operation);
 * - `say`    the chat operation: `{ text: "You said: <message>" }`;
 * - `fail`   fails for good with `tool_error` "boom";
 * - `gated`  reports 25 % ("prepare"), then waits until the test opens its
 *            gate (`openGate(id)`, a file watched with fs.watch), then reports
 *            60 % and 90 % and returns `{ done: true, input }`;
 * - `ticker` reports progress every 25 ms (at most 2,000 times) until cancelled.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_PATH, http, makeTempDir, startServer, writeConfig, writeStepsOperation, type ServerProcess } from '../helpers/process.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Written to stdin, then closed (default: stdin closed at once). */
  stdin?: string;
  /** Killed (SIGKILL) after this long; default 20 s. */
  timeoutMs?: number;
}

/** The environment the CLI runs with: no ERRAND_* from the runner, plus `env` (undefined removes). */
function cliEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('ERRAND_')) out[name] = value;
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete out[name];
    else out[name] = value;
  }
  return out;
}

/** Runs `errand ...args` to its end (or kills it at the deadline, which fails the test). */
export function runCli(args: string[], options: RunOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { env: cliEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timeoutMs = options.timeoutMs ?? SAFETY_NET_MS;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`errand ${args.join(' ')} did not exit within ${timeoutMs} ms\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`),
      );
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? '');
  });
}

/** A CLI process left running (tail, watch): read its output as it comes, then stop it. */
export interface CliProcess {
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once `predicate(stdout, stderr)` holds; rejects at `timeoutMs` or if the process exits first. */
  waitOutput(predicate: (stdout: string, stderr: string) => boolean, timeoutMs?: number, what?: string): Promise<string>;
  /** Resolves with the run once the process exits (killed at `timeoutMs`). */
  exited(timeoutMs?: number): Promise<CliRun>;
  kill(signal?: NodeJS.Signals): void;
}

export function startCli(command: string[], options: RunOptions = {}): CliProcess {
  const [file, ...args] = command;
  const child = spawn(file!, args, { env: cliEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end(options.stdin ?? '');
  let stdout = '';
  let stderr = '';
  let exit: CliRun | undefined;
  const checks = new Set<() => void>();
  const run = () => {
    for (const check of [...checks]) check();
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    run();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    run();
  });
  child.on('close', (code, signal) => {
    exit = { code, signal, stdout, stderr };
    run();
  });
  const describe = () => `\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
  return {
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    waitOutput(predicate, timeoutMs = SAFETY_NET_MS, what = 'output') {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate(stdout, stderr)) {
            done();
            resolve(stdout);
          } else if (exit) {
            done();
            reject(new Error(`the CLI exited (code ${exit.code}) before ${what}${describe()}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe()}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          checks.delete(check);
        };
        checks.add(check);
        check();
      });
    },
    exited(timeoutMs = SAFETY_NET_MS) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!exit) return;
          done();
          resolve(exit);
        };
        const timer = setTimeout(() => {
          done();
          child.kill('SIGKILL');
          reject(new Error(`the CLI did not exit within ${timeoutMs} ms${describe()}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          checks.delete(check);
        };
        checks.add(check);
        check();
      });
    },
    kill(signal = 'SIGTERM') {
      if (!exit) child.kill(signal);
    },
  };
}

/** Starts `errand ...args` under a pseudo-terminal (`script`); stdout is what the terminal showed. */
export function startInTerminal(args: string[], options: RunOptions = {}): CliProcess {
  const quoted = [process.execPath, CLI_PATH, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  // -q quiet, -f flush at once, -e the child's exit status, -c the command; the typescript file is /dev/null.
  return startCli(['script', '-qfec', quoted, '/dev/null'], { ...options, env: { TERM: 'xterm', COLUMNS: '120', ...options.env } });
}

const GATED_SOURCE = `import { existsSync, watch } from 'node:fs';
import { join } from 'node:path';
const GATES = process.env.CLI_TEST_GATES;
function gate(id, signal) {
  return new Promise((resolve, reject) => {
    const path = join(GATES, id);
    const watcher = watch(GATES, () => { if (existsSync(path)) finish(resolve); });
    const onAbort = () => finish(() => reject(signal.reason));
    const finish = (then) => { watcher.close(); signal.removeEventListener('abort', onAbort); then(); };
    signal.addEventListener('abort', onAbort, { once: true });
    if (existsSync(path)) finish(resolve);
  });
}
export default {
  async run(input, ctx) {
    await ctx.progress({ percent: 25, current_step: 'prepare', total_steps: 3, completed_steps: 0, message: 'waiting for the gate' });
    await gate(ctx.request_id, ctx.signal);
    await ctx.progress({ percent: 60, current_step: 'work', total_steps: 3, completed_steps: 1, message: 'working' });
    await ctx.progress({ percent: 90, current_step: 'finish', total_steps: 3, completed_steps: 2, message: 'almost there' });
    return { done: true, input };
  },
};
`;

const TICKER_SOURCE = `import { setTimeout as sleep } from 'node:timers/promises';
export default {
  async run(input, ctx) {
    for (let i = 0; i < 2000; i++) {
      await ctx.progress({ percent: i % 100, message: 'tick ' + i });
      await sleep(25, undefined, { signal: ctx.signal });
    }
    return { ticks: 2000 };
  },
};
`;

export interface CliServer {
  readonly server: ServerProcess;
  readonly url: string;
  readonly dir: string;
  /** Lets the `gated` request `id` go on. */
  openGate(id: string): void;
  /** POST /v1/operations/{operation}?async=true over HTTP; the request id. */
  submitAsync(operation: string, input: unknown, headers?: Record<string, string>): Promise<string>;
  cleanup(): Promise<void>;
}

export interface CliServerOptions {
  /** auth.keys / auth.admin_keys. */
  auth?: Record<string, unknown>;
}

/** Starts the real server with the CLI test operations, chat (`say`) and a `hook` trigger (`echo`). */
export async function startCliServer(options: CliServerOptions = {}): Promise<CliServer> {
  const { dir, cleanup } = makeTempDir('errand-cli-');
  const gates = join(dir, 'gates');
  mkdirSync(gates);
  writeStepsOperation(dir, 'steps.mjs');
  writeFileSync(join(dir, 'echo.mjs'), 'export default { async run(input) { return input; } };\n');
  writeFileSync(join(dir, 'say.mjs'), "export default { async run(input) { return { text: 'You said: ' + input.message }; } };\n");
  writeFileSync(
    join(dir, 'fail.mjs'),
    "export default { async run() { throw Object.assign(new Error('boom'), { retryable: false, type: 'tool_error' }); } };\n",
  );
  writeFileSync(join(dir, 'gated.mjs'), GATED_SOURCE);
  writeFileSync(join(dir, 'ticker.mjs'), TICKER_SOURCE);
  const config = writeConfig(dir, {
    store: { url: `sqlite:${join(dir, 'errand.db')}` },
    engine: { poll_interval: 0.05, concurrency: 8 },
    operations: {
      steps: { module: './steps.mjs' },
      echo: { module: './echo.mjs' },
      fail: { module: './fail.mjs' },
      gated: { module: './gated.mjs' },
      ticker: { module: './ticker.mjs' },
      say: { module: './say.mjs' },
    },
    chat: { operation: 'say' },
    triggers: { hook: { operation: 'echo' } },
    ...(options.auth ? { auth: options.auth } : {}),
    logging: { level: 'silent' },
  });
  const server = await startServer({ config, env: { CLI_TEST_GATES: gates } });
  return {
    server,
    url: server.url,
    dir,
    openGate: (id) => writeFileSync(join(gates, id), ''),
    async submitAsync(operation, input, headers = {}) {
      const res = await http('POST', `${server.url}/v1/operations/${operation}?async=true`, input, headers);
      if (res.status !== 202) throw new Error(`submit ${operation}: ${res.status} ${res.text}`);
      return res.body.request_id as string;
    },
    async cleanup() {
      await server.dispose();
      cleanup();
    },
  };
}

/** The JSON documents of `--json` output, one per line. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function jsonLines(stdout: string): any[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as unknown);
}
