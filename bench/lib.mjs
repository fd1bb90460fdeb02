/**
 * What the benchmark suites share (bench/run.mjs, polling.mjs, notify.mjs,
 * pg.mjs, peers.mjs): a group of child processes that is always stopped
 * (SIGTERM, then SIGKILL), the machine description written into RESULTS.md,
 * a node:http request helper, a process's CPU time, RSS, descriptors and
 * bytes written from /proc (Linux), bounded producers and waits, autocannon
 * loads, the comparison queues' import, and number formatting.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');
export const CLI = path.join(ROOT, 'packages/server/dist/cli/main.js');
export const BASELINE = path.join(BENCH_DIR, 'baseline-server.mjs');
export const RESULTS = path.join(BENCH_DIR, 'RESULTS.md');
/** The line both servers print once they accept connections; group 1 is the URL. */
export const LISTENING = /listening on (http:\/\/127\.0\.0\.1:\d+)/;

/**
 * Starts `errand serve --config <dir>/errand.yaml` in `dir` as a child of
 * `group`, optionally under `--cpu-prof` (profiles kept in `<dir>/profiles`).
 * Resolves with the child once it is listening.
 */
export async function spawnErrand(group, { label, dir, cpuProf = false }) {
  const args = [];
  if (cpuProf) {
    const profDir = path.join(dir, 'profiles');
    mkdirSync(profDir, { recursive: true });
    args.push('--cpu-prof', `--cpu-prof-dir=${profDir}`);
    process.stderr.write(`bench: CPU profiles of errand (${label}) go to ${profDir}\n`);
  }
  args.push(CLI, 'serve', '--config', path.join(dir, 'errand.yaml'));
  return group.startChild(`errand (${label})`, args, { cwd: dir });
}

export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** This environment without ERRAND_* (config overrides such as ERRAND_API_KEYS would change what is measured) and NODE_OPTIONS. */
export function childEnv() {
  const env = { NODE_ENV: 'production' };
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('ERRAND_') && key !== 'NODE_OPTIONS') env[key] = value;
  return env;
}

/**
 * Child processes, load generators and temp dirs of one run. Everything
 * started through it is stopped by `cleanup()` (idempotent), and killed by
 * `killAll()` (synchronous, for `process.on('exit')` and the time budget).
 *
 * @param {{ keepTempDirs?: boolean }} [options]
 */
export function createProcessGroup({ keepTempDirs = false } = {}) {
  /** @type {Set<{name: string, proc: import('node:child_process').ChildProcess, exited: Promise<void>, output: () => string, logLines: () => number}>} */
  const children = new Set();
  /** @type {Set<{stop: () => void}>} things to stop first (load generators) */
  const stoppables = new Set();
  const tempDirs = [];
  let aborting = false;
  let cleaningUp;

  /**
   * Starts `node <args>` and resolves once its output matches `ready` (whose
   * first group is the URL), or rejects if it exits or does not get there in time.
   * `env` adds variables to `childEnv()` (e.g. a probe's output path).
   */
  function startChild(name, args, { cwd, ready = LISTENING, timeoutMs = 15_000, env = {} }) {
    if (aborting) return Promise.reject(new Error(`not starting ${name}: the run is being stopped`));
    const proc = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...childEnv(), ...env } });
    let output = '';
    let logLines = 0;
    const keep = (chunk) => {
      const text = chunk.toString('utf8');
      // pino lines (JSON) at warn or above that the server logged while under load
      for (const line of text.split('\n')) if (line.startsWith('{') && /"level":(40|50|60)/.test(line)) logLines += 1;
      output = (output + text).slice(-20_000);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    const exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    const child = { name, proc, exited, output: () => output, logLines: () => logLines };
    children.add(child);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`${name} did not report ready within ${timeoutMs} ms`)), timeoutMs);
      const check = () => {
        const match = ready.exec(output);
        if (match) {
          done();
          // warn+ lines from here on: start-up warnings (e.g. "webhooks.secret is not set") are not load.
          const atReady = logLines;
          resolve({ ...child, url: match[1], logLines: () => logLines - atReady });
        }
      };
      const onExit = (code, signal) => fail(new Error(`${name} exited early (code ${code}, signal ${signal})`));
      function done() {
        clearTimeout(timer);
        proc.stdout.off('data', check);
        proc.stderr.off('data', check);
        proc.off('exit', onExit);
      }
      function fail(err) {
        done();
        reject(new Error(`${err.message}\n--- ${name} output ---\n${output.slice(-4000)}`));
      }
      proc.stdout.on('data', check);
      proc.stderr.on('data', check);
      proc.once('exit', onExit);
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Accepts what `startChild` resolved with. */
  async function stopChild(child, graceMs = 10_000) {
    const own = [...children].find((c) => c.proc === child.proc);
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      if (own) children.delete(own);
      return;
    }
    child.proc.kill('SIGTERM');
    const inTime = await Promise.race([child.exited.then(() => true), delay(graceMs).then(() => false)]);
    if (!inTime) {
      process.stderr.write(`bench: ${child.name} did not stop within ${graceMs} ms; killing it\n`);
      child.proc.kill('SIGKILL');
      await Promise.race([child.exited, delay(2_000)]);
    }
    if (own) children.delete(own);
  }

  /** Registers something with a `stop()` (an autocannon instance, a client pool); returns the unregister function. */
  function track(stoppable) {
    stoppables.add(stoppable);
    return () => stoppables.delete(stoppable);
  }

  /** A fresh temp dir, removed by `cleanup()` unless `keepTempDirs`. */
  function tempDir(prefix) {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    tempDirs.push(dir);
    return dir;
  }

  function cleanup() {
    aborting = true;
    cleaningUp ??= (async () => {
      for (const s of stoppables) s.stop();
      await Promise.all([...children].map((c) => stopChild(c)));
      if (!keepTempDirs) for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    })();
    return cleaningUp;
  }

  function killAll() {
    for (const s of stoppables) s.stop();
    for (const c of children) c.proc.kill('SIGKILL');
  }

  return {
    startChild,
    stopChild,
    track,
    tempDir,
    cleanup,
    killAll,
    get aborting() {
      return aborting;
    },
  };
}

/**
 * The safety net of a run: a time budget after which everything is killed and
 * the process exits 1; SIGKILL of every child when this process exits; Ctrl-C
 * and SIGTERM stop the servers cleanly and exit 130.
 */
export function installSafetyNet(group, budgetMs) {
  setTimeout(() => {
    process.stderr.write(`bench: the run exceeded its ${Math.round(budgetMs / 1000)} s budget; stopping everything\n`);
    group.killAll();
    process.exit(1);
  }, budgetMs).unref();
  process.on('exit', () => group.killAll());
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      process.stderr.write(`bench: ${signal}; stopping servers\n`);
      group.cleanup().finally(() => process.exit(130));
    });
  }
}

// ---------------------------------------------------------------------------
// The machine, for the report

export function machine() {
  let cpu = 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    cpu = os.cpus()[0]?.model ?? cpu;
  }
  let distro = '';
  try {
    distro = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    /* not Linux, or no os-release */
  }
  let commit = 'unknown';
  let dirty = '';
  try {
    const git = (...args) =>
      execFileSync('git', ['--no-optional-locks', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim();
    commit = git('rev-parse', '--short', 'HEAD');
    const changed = git('status', '--porcelain', '--', 'packages/server/src').split('\n').filter(Boolean).length;
    dirty = changed > 0 ? `, with ${changed} uncommitted change(s) under packages/server/src` : ', packages/server/src clean';
  } catch {
    /* not a git checkout */
  }
  let built = 'unknown';
  try {
    built = statSync(CLI).mtime.toISOString();
  } catch {
    /* checked at start-up */
  }
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu,
    memGiB: (os.totalmem() / 1024 ** 3).toFixed(1),
    node: process.version,
    os: `${distro ? `${distro}, ` : ''}${os.type()} ${os.release()} ${os.arch()}`,
    commit: `${commit}${dirty}`,
    built,
    tmpFs: filesystemOf(os.tmpdir()),
  };
}

/** The filesystem type under `dir` (the SQLite file's home), from /proc/mounts; fsync cost depends on it. */
export function filesystemOf(dir) {
  try {
    let best = { mount: '', type: 'unknown', device: '' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [device, mount, type] = line.split(' ');
      if (!mount || !type) continue;
      if ((dir === mount || dir.startsWith(mount.endsWith('/') ? mount : `${mount}/`)) && mount.length >= best.mount.length) {
        best = { mount, type, device };
      }
    }
    return `${best.type} (${best.device} on ${best.mount})`;
  } catch {
    return 'unknown';
  }
}

/** `date -u` style, e.g. "Mon Nov 23 10:55:11 UTC 2026". */
export function utcNow() {
  try {
    return execFileSync('date', ['-u'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return new Date().toUTCString();
  }
}

export const loadAvg = () =>
  os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(' / ');

// ---------------------------------------------------------------------------
// HTTP and timing

/**
 * One HTTP request with node:http on `agent`; resolves with status, headers and
 * body text. Rejects on a network error, after `timeoutMs`, or when `signal` aborts.
 */
export function request(agent, { hostname, port, method = 'GET', path: reqPath, headers = {}, body, timeoutMs, signal }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, method, path: reqPath, agent, headers, signal, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Resolves at epoch `ms`, or at once if past. The timer is ref'd: it keeps the process alive, as a measurement window needs. */
export function until(ms) {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms - Date.now())));
}

// ---------------------------------------------------------------------------
// A process, from /proc (Linux)

/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
export const CLK_TCK = (() => {
  try {
    return (
      Number(
        execFileSync('getconf', ['CLK_TCK'], { stdio: ['ignore', 'pipe', 'ignore'] })
          .toString()
          .trim(),
      ) || 100
    );
  } catch {
    return 100;
  }
})();

/** CPU time (user + system, all threads) of process `pid` so far, in ms. */
export function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "pid (comm) ": state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** Resident set size of `pid`, in MiB. */
export function rssMiB(pid) {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return kb === undefined ? NaN : Number(kb) / 1024;
}

/** Bytes `pid` has caused to be written to storage so far (/proc/<pid>/io `write_bytes`; page-cache writes count when dirtied). */
export function writeBytes(pid) {
  const n = /^write_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1];
  return n === undefined ? NaN : Number(n);
}

/** Open descriptors of `pid` (≈ its connections, plus a few dozen files). */
export function openFds(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** `ulimit -n` of this process (the servers inherit it), or null if it cannot be read. */
export function openFileLimit() {
  try {
    const text = readFileSync('/proc/self/limits', 'utf8');
    const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
    if (soft === 'unlimited') return Infinity;
    return soft === undefined ? null : Number(soft);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// Formatting

/** The p-th percentile (nearest rank) of `values`; NaN when empty. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const fmtMs = (n) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: 2 }) : 'n/a');
export const fmt = (n, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';
export const ratio = (a, b) => (b > 0 ? `${((a / b) * 100).toFixed(1)}% (${(a / b).toFixed(3)}×)` : 'n/a');
export const statusList = (s) =>
  Object.entries(s)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';

/** A whole number flag in [min, max], or exit 2 with a message. */
export function intFlag(name, text, min, max) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`bench: ${name} must be a whole number from ${min} to ${max} (got "${text}")\n`);
    process.exit(2);
  }
  return n;
}

// ---------------------------------------------------------------------------
// Load shapes shared by the suites

/** Runs `total` calls of `job(i)` with at most `concurrency` in flight; rejects on the first failure. */
export async function produce(total, concurrency, job) {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
}

/** Polls `done()` every `everyMs` until it is true; throws after `timeoutMs`. */
export async function waitUntil(done, timeoutMs, what, everyMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (let round = 0; round < Math.ceil(timeoutMs / everyMs) + 1; round++) {
    if (await done()) return;
    if (Date.now() > deadline) break;
    await delay(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * autocannon bound to a process group (stopped by its cleanup): `load(options)`
 * runs one load, `measure(label, expectedStatus, load)` a warm-up then the
 * measured run, summarised (req/s of the expected status, p50/p99, other statuses).
 */
export function autocannonRunner(group, { connections, duration, warmup }) {
  const require = createRequire(import.meta.url);
  const autocannon = require('autocannon');
  function load(options) {
    return new Promise((resolve, reject) => {
      const instance = autocannon({ connections, pipelining: 1, timeout: 10, ...options }, (err, result) => {
        untrack();
        if (err) reject(err);
        else resolve(result);
      });
      const untrack = group.track(instance);
    });
  }
  async function measure(label, expectedStatus, run) {
    if (warmup > 0) await run(warmup);
    process.stderr.write(`bench: ${label}: ${duration} s, ${connections} connections…\n`);
    const r = await run(duration);
    const expected = r.statusCodeStats?.[String(expectedStatus)]?.count ?? 0;
    const statuses = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([code, s]) => [code, s.count]));
    return {
      label,
      expectedStatus,
      expected,
      rps: expected / r.duration,
      p50: r.latency.p50,
      p99: r.latency.p99,
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      statuses,
      seconds: r.duration,
    };
  }
  /** `POST <url>/v1/operations/noop?async=true` with `body` for `seconds`. */
  const submitLoad = (url, body, seconds) =>
    load({
      url: `${url}/v1/operations/noop?async=true`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duration: seconds,
    });
  /** `GET <url>/v1/requests/{id}` rotating over `ids` for `seconds`. */
  const pollLoad = (url, ids, seconds) => {
    let next = 0;
    return load({
      url,
      duration: seconds,
      requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/v1/requests/${ids[next++ % ids.length]}` }) }],
    });
  };
  return { load, measure, submitLoad, pollLoad };
}

/**
 * The comparison queues (bench/peers/package.json), imported from their own
 * node_modules; exits 2 with the install command when they are missing.
 */
export async function importPeer(name) {
  const requirePeers = createRequire(path.join(BENCH_DIR, 'peers', 'package.json'));
  try {
    return await import(requirePeers.resolve(name));
  } catch {
    process.stderr.write(`bench: ${name} is not installed; run \`npm ci --prefix bench/peers\` first\n`);
    process.exit(2);
  }
}

/** A fresh temp dir's `errand.yaml` (YAML is a superset of JSON) with `store` and the given operation modules. */
export function writeErrandConfig(dir, { store, operations, extra = {} }) {
  const ops = {};
  for (const [name, source] of Object.entries(operations)) {
    writeFileSync(path.join(dir, `${name}.mjs`), source);
    ops[name] = { module: `./${name}.mjs` };
  }
  writeFileSync(
    path.join(dir, 'errand.yaml'),
    JSON.stringify({
      server: { host: '127.0.0.1', port: 0, shutdown_grace: 5 },
      store,
      logging: { level: 'warn' },
      operations: ops,
      ...extra,
    }),
  );
}
