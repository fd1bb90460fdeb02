#!/usr/bin/env node
/**
 * Errand's benchmark harness: in one run, on this machine, measures
 *   1. async submissions per second (`POST /v1/operations/noop?async=true`),
 *   2. status polls per second (`GET /v1/requests/{id}` over existing ids),
 * against an Errand node (a child process running the built CLI, fresh temp
 * SQLite file, no-op operation) and against a minimal Fastify server doing no
 * work (bench/baseline-server.mjs), then appends a dated section with the
 * numbers and the Errand/baseline ratios to bench/RESULTS.md.
 *
 *   npm run build -w errand && npm run bench -- [--duration 10] [--connections 32]
 *
 * `--suite polling` runs bench/polling.mjs instead (conditional polls and
 * 1,000 clients long-polling vs polling every second), `--suite notify`
 * bench/notify.mjs (webhook deliveries per second, SSE fan-out to 1,000
 * subscribers), `--suite pg` bench/pg.mjs (end-to-end throughput on
 * PostgreSQL, one and two nodes, beside pg-boss and graphile-worker),
 * `--suite peers` bench/peers.mjs (Errand on SQLite and PostgreSQL beside
 * BullMQ, graphile-worker, pg-boss and a do-nothing Fastify, in one run);
 * `--suite throughput` (this file's own measurements) is the default.
 *
 * Everything listens on and targets 127.0.0.1. Every child process is stopped
 * at the end, also on error, Ctrl-C, or when the whole run overruns its budget.
 * `node bench/run.mjs --help` lists the flags.
 */
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  autocannonRunner,
  BASELINE,
  CLI,
  RESULTS,
  ROOT,
  createProcessGroup,
  fmt,
  fmtMs,
  installSafetyNet,
  intFlag,
  loadAvg,
  machine,
  ratio,
  statusList,
  utcNow,
  spawnErrand,
} from './lib.mjs';

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------
// Suite: `--suite polling` hands the other flags to bench/polling.mjs.

const SUITES = ['throughput', 'polling', 'notify', 'pg', 'peers', 'scale'];
let suite = 'throughput';
const args = [];
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--suite') suite = argv[++i] ?? '';
    else if (arg.startsWith('--suite=')) suite = arg.slice('--suite='.length);
    else args.push(arg);
  }
}
if (!SUITES.includes(suite)) {
  process.stderr.write(`bench: --suite must be one of ${SUITES.join(', ')} (got "${suite}")\n`);
  process.exit(2);
}
if (suite === 'polling') {
  const { main: polling } = await import('./polling.mjs');
  process.exit(await polling(args));
}
if (suite === 'notify') {
  const { main: notify } = await import('./notify.mjs');
  process.exit(await notify(args));
}
if (suite === 'pg') {
  const { main: pgSuite } = await import('./pg.mjs');
  process.exit(await pgSuite(args));
}
if (suite === 'peers') {
  const { main: peers } = await import('./peers.mjs');
  process.exit(await peers(args));
}
if (suite === 'scale') {
  const { main: scale } = await import('./scale.mjs');
  process.exit(await scale(args));
}

const HELP = `Usage: node bench/run.mjs [options]   (or: npm run bench -- [options]; run \`npm run build -w errand\` first)

  --suite NAME      throughput (the default; the flags below), polling, notify, pg, peers or scale (their own flags: --suite peers --help)
  --duration N      seconds per measurement (default 10)
  --connections N   concurrent connections (default 32)
  --warmup N        seconds of unrecorded load before each measurement (default 1)
  --no-normal       skip the extra Errand run with store.synchronous: normal
  --cpu-prof        run the Errand child under --cpu-prof; .cpuprofile files are kept in a temp dir (path printed)
  --no-record       print the results but do not append them to bench/RESULTS.md
  --help            this text
`;

// ---------------------------------------------------------------------------
// Flags

const { values: flags } = parseArgs({
  args,
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    warmup: { type: 'string', default: '1' },
    'no-normal': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (flags.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const DURATION = intFlag('--duration', flags.duration, 1, 300);
const CONNECTIONS = intFlag('--connections', flags.connections, 1, 1000);
const WARMUP = intFlag('--warmup', flags.warmup, 0, 60);
const WITH_NORMAL = !flags['no-normal'];
const CPU_PROF = flags['cpu-prof'];

if (!existsSync(CLI)) {
  process.stderr.write(`bench: ${path.relative(ROOT, CLI)} is missing; run \`npm run build -w errand\` first\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Child processes and load generators: every one started is tracked and stopped in `group.cleanup()`.

const group = createProcessGroup({ keepTempDirs: CPU_PROF });

// The whole run is bounded: overrun → kill everything and exit non-zero.
const runs = 2 + 2 + (WITH_NORMAL ? 2 : 0);
installSafetyNet(group, runs * (DURATION + WARMUP) * 1000 + 90_000);

// ---------------------------------------------------------------------------
// Load

const SUBMIT_BODY = JSON.stringify({ customer: 'c-1042', items: [1, 2, 3], note: 'bench' });

const cannon = autocannonRunner(group, { connections: CONNECTIONS, duration: DURATION, warmup: WARMUP });
const measure = cannon.measure;
const submitLoad = (url, duration) => cannon.submitLoad(url, SUBMIT_BODY, duration);
const pollLoad = cannon.pollLoad;

// ---------------------------------------------------------------------------
// Targets

async function runBaseline() {
  const server = await group.startChild('baseline', [BASELINE, '0'], { cwd: ROOT });
  try {
    const submit = await measure('baseline submit', 202, (d) => submitLoad(server.url, d));
    const ids = Array.from({ length: 100 }, (_, i) => `req_${String(i).padStart(26, '0')}`);
    const poll = await measure('baseline poll', 200, (d) => pollLoad(server.url, ids, d));
    return { submit, poll, logLines: server.logLines() };
  } finally {
    await group.stopChild(server);
  }
}

async function runErrand(synchronous) {
  const dir = group.tempDir(`errand-bench-${synchronous}-`);
  writeFileSync(path.join(dir, 'noop.mjs'), 'export default { run: () => null };\n');
  writeFileSync(
    path.join(dir, 'errand.yaml'),
    [
      'server:',
      '  host: 127.0.0.1',
      '  port: 0',
      '  shutdown_grace: 5',
      'store:',
      '  url: sqlite:./errand.db',
      `  synchronous: ${synchronous}`,
      'logging:',
      '  level: warn',
      'operations:',
      '  noop:',
      '    module: ./noop.mjs',
      '',
    ].join('\n'),
  );
  const server = await spawnErrand(group, { label: synchronous, dir, cpuProf: CPU_PROF });
  try {
    const submit = await measure(`errand(${synchronous}) submit`, 202, (d) => submitLoad(server.url, d));
    const afterSubmit = await backlog(server.url);
    const ids = await existingIds(server.url);
    const poll = await measure(`errand(${synchronous}) poll`, 200, (d) => pollLoad(server.url, ids, d));
    const afterPoll = await backlog(server.url);
    return { submit, poll, afterSubmit, afterPoll, logLines: server.logLines(), dir };
  } finally {
    await group.stopChild(server);
  }
}

/** 100 ids of existing requests, from the list endpoint. */
async function existingIds(url) {
  const res = await fetch(`${url}/v1/requests?limit=100`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET /v1/requests answered ${res.status}: ${(await res.text()).slice(0, 500)}`);
  const body = await res.json();
  const ids = body.data.map((r) => r.request_id);
  if (ids.length === 0) throw new Error('no requests to poll: the submission phase created none');
  return ids;
}

/** The backlog from `GET /ready` (pending and processing counts; the engine runs the no-ops while the load goes on). */
async function backlog(url) {
  try {
    const res = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(10_000) });
    const body = await res.json();
    if (!res.ok) return { unavailable: `GET /ready answered ${res.status}` };
    return { pending: body.pending, processing: body.processing };
  } catch (err) {
    return { unavailable: err.message };
  }
}

// ---------------------------------------------------------------------------
// Report

function row(server, durability, m) {
  const other = Object.entries(m.statuses).filter(([code]) => Number(code) !== m.expectedStatus);
  const otherText = other.length > 0 ? other.map(([code, n]) => `${code}×${n}`).join(' ') : '0';
  return `| ${server} | ${durability} | ${m.label.endsWith('submit') ? 'submit `POST /v1/operations/noop?async=true`' : 'poll `GET /v1/requests/{id}`'} | ${fmt(m.rps)} | ${fmt(m.expected)} × ${m.expectedStatus} | ${fmtMs(m.p50)} | ${fmtMs(m.p99)} | ${m.non2xx} | ${otherText} | ${m.errors} / ${m.timeouts} |`;
}

function report({ startedAt, finishedAt, loadStart, info, baseline, errand }) {
  const autocannonVersion = require('autocannon/package.json').version;
  const fastifyVersion = require('fastify/package.json').version;
  const lines = [];
  lines.push(`## Run ${startedAt}`, '');
  lines.push(`- Machine: ${info.nproc} CPU(s), ${info.cpu}; ${info.memGiB} GiB RAM; ${info.os}; Node ${info.node}`);
  lines.push(`- Code: commit ${info.commit}; dist built ${info.built}; run finished ${finishedAt}`);
  lines.push(`- Load average (1/5/15 min) at start: ${loadStart}; at end: ${loadAvg()} (other work on the machine skews the numbers)`);
  lines.push(
    `- Errand: child process \`node packages/server/dist/cli/main.js serve --config <tmp>/errand.yaml\`; fresh SQLite file in ${os.tmpdir()} on ${info.tmpFs}; WAL; engine defaults (concurrency 16); \`logging.level: warn\`; operation \`noop\` = \`export default { run: () => null }\`${CPU_PROF ? '; **under --cpu-prof (slower)**' : ''}`,
  );
  lines.push(
    `- Baseline: child process \`bench/baseline-server.mjs\` (Fastify ${fastifyVersion}, logger off, no work; same routes and response shapes)`,
  );
  lines.push(
    `- Load: autocannon ${autocannonVersion} inside the harness process, ${CONNECTIONS} connections, pipelining 1, ${DURATION} s per measurement after ${WARMUP} s unrecorded warm-up; load generator, server (and Errand's engine) share the same ${info.nproc} CPU(s)`,
  );
  lines.push(
    `- Submit body: \`${SUBMIT_BODY}\`; polls rotate over 100 existing ids (Errand: the newest 100 from \`GET /v1/requests?limit=100\`)`,
  );
  lines.push(
    `- Durability: \`store.synchronous: full\` (the default: fsync on every commit)${errand.normal ? '; extra rows with `normal` (fsync at WAL checkpoints only; survives a process crash, not power loss)' : ''}`,
  );
  lines.push('');
  lines.push('| Server | store.synchronous | Shape | req/s | counted | p50 ms | p99 ms | non-2xx | other statuses | errors / timeouts |');
  lines.push('|---|---|---|---:|---:|---:|---:|---:|---|---|');
  lines.push(row('baseline Fastify', '–', baseline.submit));
  lines.push(row('baseline Fastify', '–', baseline.poll));
  lines.push(row('Errand', '**full** (default)', errand.full.submit));
  lines.push(row('Errand', '**full** (default)', errand.full.poll));
  if (errand.normal) {
    lines.push(row('Errand (extra)', 'normal', errand.normal.submit));
    lines.push(row('Errand (extra)', 'normal', errand.normal.poll));
  }
  lines.push('');
  lines.push('Ratios (Errand req/s ÷ baseline req/s, same run):', '');
  lines.push(`- submit, synchronous=full: **${ratio(errand.full.submit.rps, baseline.submit.rps)}**`);
  lines.push(`- poll, synchronous=full: **${ratio(errand.full.poll.rps, baseline.poll.rps)}**`);
  if (errand.normal) {
    lines.push(`- submit, synchronous=normal (extra): ${ratio(errand.normal.submit.rps, baseline.submit.rps)}`);
    lines.push(`- poll, synchronous=normal (extra): ${ratio(errand.normal.poll.rps, baseline.poll.rps)}`);
  }
  lines.push('');
  lines.push('Errand backlog from `GET /ready` (the engine runs the no-ops while the load goes on):', '');
  for (const [name, r] of Object.entries(errand)) {
    if (!r) continue;
    lines.push(
      `- ${name}: after the submit phase ${statusList(r.afterSubmit)}; after the poll phase ${statusList(r.afterPoll)}; warn+ log lines from the server: ${r.logLines}`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

const HEADER = `# Benchmark results

How to run: \`npm run build -w errand\` (the harness starts the built CLI), then \`npm run bench\`
(\`npm run bench -- --duration 10 --connections 32\`; \`node bench/run.mjs --help\` for all flags).
Each run appends a dated section below; earlier runs are kept. See bench/README.md.

How to read it: each run measures Errand and a do-nothing Fastify server (the baseline) on the same
machine, one after the other, with the same load. The **ratio** Errand ÷ baseline is the number to
compare across machines and commits; absolute req/s depend on the machine (the load generator shares
its CPUs). A submission ratio well below the poll ratio is the cost of durable writes per request
(the insert, then the engine's claim and completion of the no-op; \`store.synchronous: full\` fsyncs
each commit); the \`normal\` rows, when present, show how much of it is fsync.
"counted" is the number of responses with the expected status (202 for submit, 200 for poll)
and req/s is that count divided by the measured seconds; anything else appears under non-2xx / other
statuses / errors and means the run is suspect. autocannon runs on one thread beside the servers,
so near the baseline's rate the load generator itself is the ceiling: a ratio close to 1 says
"Errand is not the bottleneck at this load", not "Errand is as fast as bare Fastify".

`;

// ---------------------------------------------------------------------------
// Main

async function main() {
  const startedAt = utcNow();
  const loadStart = loadAvg();
  const info = machine();
  process.stderr.write(
    `bench: ${info.nproc} CPU(s) ${info.cpu}, Node ${info.node}; ${DURATION} s × ${CONNECTIONS} connections per measurement\n`,
  );
  const baseline = await runBaseline();
  const errand = { full: await runErrand('full'), normal: WITH_NORMAL ? await runErrand('normal') : undefined };
  const finishedAt = utcNow();
  const section = report({ startedAt, finishedAt, loadStart, info, baseline, errand });
  process.stdout.write(`\n${section}\n`);
  if (!flags['no-record']) {
    if (!existsSync(RESULTS)) writeFileSync(RESULTS, HEADER);
    appendFileSync(RESULTS, `\n${section}`);
    process.stderr.write(`bench: appended to ${path.relative(process.cwd(), RESULTS) || RESULTS}\n`);
  }
  if (CPU_PROF) {
    for (const [name, r] of Object.entries(errand))
      if (r) process.stderr.write(`bench: errand (${name}) profiles in ${path.join(r.dir, 'profiles')}\n`);
  }
  const suspect = [baseline.submit, baseline.poll, ...Object.values(errand).flatMap((r) => (r ? [r.submit, r.poll] : []))].filter(
    (m) => m.non2xx > 0 || m.errors > 0 || m.timeouts > 0 || m.expected === 0,
  );
  for (const m of suspect) {
    process.stderr.write(
      `bench: WARNING ${m.label}: ${m.non2xx} non-2xx, ${m.errors} errors, ${m.timeouts} timeouts (statuses: ${statusList(m.statuses)})\n`,
    );
  }
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  exitCode = 1;
} finally {
  await group.cleanup();
}
process.exit(exitCode);
