#!/usr/bin/env node
/**
 * The polling suite (issue 3): in one run, on this machine, measures
 *
 *   1. status polls per second with `If-None-Match` (a 304 each time, on
 *      requests whose state does not change: delayed starts, pending for an
 *      hour) against plain polls of the same ids (200 with the body), with
 *      autocannon, the same connections, Errand and the do-nothing Fastify
 *      baseline (bench/baseline-server.mjs) one after the other;
 *   2. the server load of N clients (default 1,000) waiting for results, each
 *      on its own keep-alive connection, over the same window (default 20 s):
 *        (a) long-polling `GET /v1/requests/{id}?wait=30` with `If-None-Match`,
 *            re-issued as soon as it is answered,
 *        (b) polling `GET /v1/requests/{id}` every second (plain, no tag),
 *        (c) optionally (`--etag-pollers`) polling every second with `If-None-Match`,
 *      each on a fresh Errand child with N delayed-start requests that fall due
 *      (and complete: a no-op) a few seconds before the window ends. Measured:
 *      the Errand child's CPU time (utime + stime from /proc/<pid>/stat), its
 *      RSS and open descriptors, the responses the clients got, and how long
 *      after each request completed its client learned of it.
 *
 *   npm run build -w errand && npm run bench -- --suite polling
 *   node bench/polling.mjs --help
 *
 * Everything listens on and targets 127.0.0.1; every loop is bounded in time
 * (the window) and count; every child is stopped at the end, also on error,
 * Ctrl-C or when the run overruns its budget. Linux only (reads /proc).
 */
import { setMaxListeners } from 'node:events';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import {
  BASELINE,
  CLI,
  CLK_TCK,
  RESULTS,
  ROOT,
  cpuMs,
  createProcessGroup,
  delay,
  fmt,
  fmtMs,
  installSafetyNet,
  intFlag,
  loadAvg,
  machine,
  openFds,
  openFileLimit,
  percentile,
  ratio,
  request,
  rssMiB,
  until,
  utcNow,
  spawnErrand,
} from './lib.mjs';

const require = createRequire(import.meta.url);

const HELP = `Usage: npm run bench -- --suite polling [options]   (or: node bench/polling.mjs [options]; run \`npm run build -w errand\` first)

Part 1, polls per second with If-None-Match (304) vs plain (200):
  --duration N      seconds per measurement (default 8)
  --connections N   concurrent connections (default 32)
  --warmup N        seconds of unrecorded load before each measurement (default 1)
  --ids N           distinct requests the polls rotate over (default 100)

Part 2, N clients waiting for results:
  --clients N       clients, one connection each (default 1000)
  --window N        seconds each way of waiting is measured (default 20)
  --wait N          long-poll ?wait=N seconds (default 30; the server caps it at server.long_poll_max = 30)
  --interval N      seconds between polls of a polling client (default 1)
  --complete-at N   seconds into the window when the requests fall due and complete (default window − 5; 0 = never)
  --etag-pollers    also measure (c): polling every interval with If-None-Match

  --no-record       print the results but do not append them to bench/RESULTS.md
  --help            this text
`;

/** Time from submitting the requests to the start of the window: submissions, then the idle measurement. */
const SETUP_MS = 7_000;
/** The idle measurement: the last part of the setup, nothing but the pending requests on the server. */
const IDLE_MS = 3_000;
/** Clients start (their first request) spread evenly over this much of the window, as real clients would. */
const STAGGER_MS = 1_000;
/** The steady part of the waiting starts this long into the window (every client connected and past its first read). */
const SETTLE_MS = 2_000;
/** Safety bound on the requests a single client sends in a window. */
const MAX_REQUESTS_PER_CLIENT = 10_000;

/**
 * Runs the suite with `argv` (the flags, without `--suite`) and resolves with
 * the exit code. Every child process it starts is stopped before it resolves.
 */
export async function main(argv) {
  let flags;
  try {
    ({ values: flags } = parseArgs({
      args: argv,
      options: {
        duration: { type: 'string', default: '8' },
        connections: { type: 'string', default: '32' },
        warmup: { type: 'string', default: '1' },
        ids: { type: 'string', default: '100' },
        clients: { type: 'string', default: '1000' },
        window: { type: 'string', default: '20' },
        wait: { type: 'string', default: '30' },
        interval: { type: 'string', default: '1' },
        'complete-at': { type: 'string' },
        'etag-pollers': { type: 'boolean', default: false },
        'no-record': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`bench: ${err.message}\n${HELP}`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const window = intFlag('--window', flags.window, 5, 120);
  const settings = {
    duration: intFlag('--duration', flags.duration, 1, 120),
    connections: intFlag('--connections', flags.connections, 1, 1000),
    warmup: intFlag('--warmup', flags.warmup, 0, 30),
    ids: intFlag('--ids', flags.ids, 1, 1000),
    clients: intFlag('--clients', flags.clients, 1, 5000),
    window,
    wait: intFlag('--wait', flags.wait, 1, 300),
    interval: intFlag('--interval', flags.interval, 1, 60),
    completeAt:
      flags['complete-at'] === undefined ? Math.max(window - 5, 1) : intFlag('--complete-at', flags['complete-at'], 0, window - 1),
    etagPollers: flags['etag-pollers'],
  };
  if (!existsSync(CLI)) {
    process.stderr.write(`bench: ${path.relative(ROOT, CLI)} is missing; run \`npm run build -w errand\` first\n`);
    return 2;
  }
  if (!existsSync('/proc/self/stat')) {
    process.stderr.write('bench: the polling suite reads /proc/<pid>/stat for the server CPU time; it runs on Linux only\n');
    return 2;
  }
  const fdLimit = openFileLimit();
  const fdNeeded = settings.clients + settings.connections + 200;
  if (fdLimit !== null && fdLimit < fdNeeded) {
    process.stderr.write(
      `bench: ${settings.clients} clients need about ${fdNeeded} open files in this process and in the server; \`ulimit -n\` is ${fdLimit}. Raise it (ulimit -n ${fdNeeded}) or pass a smaller --clients\n`,
    );
    return 2;
  }

  const group = createProcessGroup();
  const phases = 2 + (settings.etagPollers ? 1 : 0);
  const budgetMs = 4 * (settings.duration + settings.warmup) * 1000 + phases * (SETUP_MS + window * 1000 + 15_000) + 60_000;
  installSafetyNet(group, budgetMs);

  try {
    const startedAt = utcNow();
    const loadStart = loadAvg();
    const info = machine();
    process.stderr.write(
      `bench: polling suite on ${info.nproc} CPU(s) ${info.cpu}, Node ${info.node}; open-file limit ${fdLimit ?? 'unknown'}; budget ${Math.round(budgetMs / 1000)} s\n`,
    );
    const polls = {
      baseline: await pollRatesBaseline(group, settings),
      errand: await pollRatesErrand(group, settings),
    };
    const waiting = { long: await waitingClients(group, settings, 'long') };
    waiting.poll = await waitingClients(group, settings, 'poll');
    if (settings.etagPollers) waiting.pollEtag = await waitingClients(group, settings, 'poll-etag');
    const finishedAt = utcNow();
    const section = report({ startedAt, finishedAt, loadStart, info, settings, fdLimit, polls, waiting });
    process.stdout.write(`\n${section}\n`);
    if (!flags['no-record']) {
      if (!existsSync(RESULTS)) writeFileSync(RESULTS, '# Benchmark results\n');
      appendFileSync(RESULTS, `\n${section}`);
      process.stderr.write(`bench: appended to ${path.relative(process.cwd(), RESULTS) || RESULTS}\n`);
    }
    for (const warning of warnings(polls, waiting, settings)) process.stderr.write(`bench: WARNING ${warning}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`bench: ${err.stack ?? err}\n`);
    return 1;
  } finally {
    await group.cleanup();
  }
}

// ---------------------------------------------------------------------------
// Servers

async function startErrand(group, label) {
  const dir = group.tempDir(`errand-bench-polling-${label}-`);
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
      'logging:',
      '  level: warn',
      'operations:',
      '  noop:',
      '    module: ./noop.mjs',
      '',
    ].join('\n'),
  );
  return spawnErrand(group, { label, dir });
}

/** Submits `count` no-ops that start at `runAt` (epoch ms), `concurrency` at a time; resolves with their ids. */
async function submitDelayed(url, count, runAt, concurrency = 32) {
  const { hostname, port } = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const ids = [];
  let next = 0;
  try {
    const worker = async () => {
      while (next < count) {
        next += 1;
        const res = await request(agent, {
          hostname,
          port,
          method: 'POST',
          path: `/v1/operations/noop?async=true&run_at=${runAt}`,
          headers: { 'content-type': 'application/json' },
          body: '{"bench":"polling"}',
          timeoutMs: 10_000,
        });
        if (res.status !== 202) throw new Error(`a submission answered ${res.status}: ${res.body.slice(0, 500)}`);
        ids.push(JSON.parse(res.body).request_id);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  } finally {
    agent.destroy();
  }
  return ids;
}

/** The ETag of each id's status resource (one plain read each). */
async function etagsOf(url, ids) {
  const { hostname, port } = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const tags = new Map();
  try {
    for (const id of ids) {
      const res = await request(agent, { hostname, port, path: `/v1/requests/${id}`, timeoutMs: 10_000 });
      if (res.status !== 200 || typeof res.headers.etag !== 'string')
        throw new Error(`GET /v1/requests/${id} answered ${res.status} without an ETag`);
      tags.set(id, res.headers.etag);
    }
  } finally {
    agent.destroy();
  }
  return tags;
}

/** `GET /ready` (pending and processing counts). */
async function backlog(url) {
  try {
    const res = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(10_000) });
    const body = await res.json();
    if (!res.ok) return `GET /ready answered ${res.status}`;
    return `pending ${body.pending}, processing ${body.processing}`;
  } catch (err) {
    return `GET /ready failed: ${err.message}`;
  }
}

// ---------------------------------------------------------------------------
// Part 1: polls per second, 304 vs 200

function cannon(group, settings, options) {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ connections: settings.connections, pipelining: 1, timeout: 10, ...options }, (err, result) => {
      untrack();
      if (err) reject(err);
      else resolve(result);
    });
    const untrack = group.track(instance);
  });
}

/** Polls rotating over `ids`; with `tags`, each sends its id's tag as `If-None-Match`. */
function pollLoad(group, settings, url, ids, tags, duration) {
  let next = 0;
  return cannon(group, settings, {
    url,
    duration,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => {
          const id = ids[next++ % ids.length];
          const headers = tags ? { ...req.headers, 'if-none-match': tags.get(id) ?? '"none"' } : req.headers;
          return { ...req, path: `/v1/requests/${id}`, headers };
        },
      },
    ],
  });
}

async function measurePolls(group, settings, label, expectedStatus, load) {
  if (settings.warmup > 0) await load(settings.warmup);
  process.stderr.write(`bench: ${label}: ${settings.duration} s, ${settings.connections} connections…\n`);
  const r = await load(settings.duration);
  const expected = r.statusCodeStats?.[String(expectedStatus)]?.count ?? 0;
  const statuses = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([code, s]) => [code, s.count]));
  const responses = Object.values(statuses).reduce((a, b) => a + b, 0);
  return {
    label,
    expectedStatus,
    expected,
    rps: expected / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    bytesPerResponse: responses > 0 ? r.throughput.total / responses : NaN,
    errors: r.errors,
    timeouts: r.timeouts,
    statuses,
  };
}

async function pollRatesBaseline(group, settings) {
  const server = await group.startChild('baseline', [BASELINE, '0'], { cwd: ROOT });
  try {
    const ids = Array.from({ length: settings.ids }, (_, i) => `req_${String(i).padStart(26, '0')}`);
    const tags = new Map(ids.map((id) => [id, '"baseline-0000000000000"']));
    const plain = await measurePolls(group, settings, 'baseline poll (200)', 200, (d) =>
      pollLoad(group, settings, server.url, ids, null, d),
    );
    const conditional = await measurePolls(group, settings, 'baseline poll If-None-Match (304)', 304, (d) =>
      pollLoad(group, settings, server.url, ids, tags, d),
    );
    return { plain, conditional };
  } finally {
    await group.stopChild(server);
  }
}

async function pollRatesErrand(group, settings) {
  const server = await startErrand(group, 'poll-rates');
  try {
    // Delayed an hour: pending for the whole run, so every resource (and its ETag) stays the same.
    const ids = await submitDelayed(server.url, settings.ids, Date.now() + 3_600_000);
    const tags = await etagsOf(server.url, ids);
    const plain = await measurePolls(group, settings, 'errand poll (200)', 200, (d) => pollLoad(group, settings, server.url, ids, null, d));
    const conditional = await measurePolls(group, settings, 'errand poll If-None-Match (304)', 304, (d) =>
      pollLoad(group, settings, server.url, ids, tags, d),
    );
    return { plain, conditional, logLines: server.logLines() };
  } finally {
    await group.stopChild(server);
  }
}

// ---------------------------------------------------------------------------
// Part 2: N clients waiting for results

const MODES = {
  long: {
    label: '(a) long-poll',
    describe: (s) => `one plain read, then \`GET /v1/requests/{id}?wait=${s.wait}\` with \`If-None-Match\`, re-issued as soon as answered`,
  },
  poll: {
    label: '(b) poll every second',
    describe: (s) => `\`GET /v1/requests/{id}\` every ${s.interval} s, no \`If-None-Match\` (\`Retry-After\` ignored)`,
  },
  'poll-etag': {
    label: '(c) poll every second + If-None-Match',
    describe: (s) => `\`GET /v1/requests/{id}\` every ${s.interval} s with the last \`ETag\` as \`If-None-Match\``,
  },
};

/**
 * A fresh Errand with `clients` delayed no-ops; after an idle measurement,
 * `clients` clients wait for one request each, in `mode`, for the window.
 */
async function waitingClients(group, settings, mode) {
  const { clients, window, completeAt } = settings;
  const server = await startErrand(group, mode);
  const pid = server.proc.pid;
  const { hostname, port } = new URL(server.url);
  try {
    const submittedAt = Date.now();
    const t0 = submittedAt + SETUP_MS;
    const tEnd = t0 + window * 1000;
    // completeAt 0 = never: an hour after the window.
    const runAt = completeAt > 0 ? t0 + completeAt * 1000 : tEnd + 3_600_000;
    const ids = await submitDelayed(server.url, clients, runAt);
    const idleStart = t0 - IDLE_MS;
    if (Date.now() > idleStart - 200)
      throw new Error(
        `submitting ${clients} requests took ${Date.now() - submittedAt} ms, more than the ${SETUP_MS - IDLE_MS - 200} ms the setup allows`,
      );

    await until(idleStart);
    const idleCpu0 = cpuMs(pid);
    await until(t0);
    const cpuT0 = cpuMs(pid);
    const idle = { ms: Date.now() - idleStart, cpuMs: cpuT0 - idleCpu0 };
    const rssStart = rssMiB(pid);

    process.stderr.write(
      `bench: ${MODES[mode].label}: ${clients} clients for ${window} s; the requests fall due ${completeAt > 0 ? `at ${completeAt} s` : 'never'}…\n`,
    );
    const harnessCpu0 = process.cpuUsage();
    const phase = new AbortController();
    setMaxListeners(clients + 100, phase.signal);
    const agents = Array.from({ length: clients }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
    const stats = newStats();
    const stopClients = { stop: () => phase.abort() };
    const untrack = group.track(stopClients);

    // Samples of the server while the clients run: RSS and open descriptors (≈ connections).
    let rssPeak = rssStart;
    let fdsPeak = openFds(pid);
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssMiB(pid));
      fdsPeak = Math.max(fdsPeak, openFds(pid));
    }, 500);
    // CPU marks: when the waiting settles (every client connected and past its first read), and when the requests fall due.
    const marks = { settled: { at: NaN, cpu: NaN }, due: { at: NaN, cpu: NaN } };
    const mark = (m) => () => ((m.cpu = cpuMs(pid)), (m.at = Date.now()));
    const settledAt = t0 + SETTLE_MS;
    const settledTimer = settledAt < Math.min(runAt, tEnd) ? setTimeout(mark(marks.settled), settledAt - Date.now()) : undefined;
    const dueTimer = completeAt > 0 ? setTimeout(mark(marks.due), runAt - Date.now()) : undefined;

    // Client i starts i/N into the stagger; it waits for a request picked by a fixed shuffle, so that when a
    // client polls is independent of when its request completes (they complete roughly in submission order).
    const order = shuffled(ids.length);
    const ctx = { hostname, port, settings, signal: phase.signal, tEnd, runAt, stats };
    const running = order.map((k, i) => client(ctx, mode, ids[k], agents[i], t0 + Math.floor((i * STAGGER_MS) / clients)));
    await until(tEnd);
    const cpuEnd = cpuMs(pid);
    const endAt = Date.now();
    const harnessCpu = process.cpuUsage(harnessCpu0);
    const rssEnd = rssMiB(pid);
    clearInterval(sampler);
    clearTimeout(settledTimer);
    clearTimeout(dueTimer);
    phase.abort();
    await Promise.race([Promise.all(running), delay(5_000)]);
    for (const agent of agents) agent.destroy();
    untrack();
    const after = await backlog(server.url);

    const due = Number.isFinite(marks.due.at) ? marks.due : { at: endAt, cpu: cpuEnd };
    const steady = Number.isFinite(marks.settled.at)
      ? {
          ms: due.at - marks.settled.at,
          cpuMs: due.cpu - marks.settled.cpu,
          responses: countBetween(stats.times, marks.settled.at, due.at),
        }
      : null;
    return {
      mode,
      idle,
      windowMs: endAt - t0,
      waitingMs: due.at - t0,
      cpuWindow: cpuEnd - cpuT0,
      cpuWaiting: due.cpu - cpuT0,
      steady,
      cpuAfterDue: Number.isFinite(marks.due.at) ? cpuEnd - marks.due.cpu : NaN,
      harnessCpuMs: (harnessCpu.user + harnessCpu.system) / 1000,
      rssStart,
      rssPeak,
      rssEnd,
      fdsPeak,
      stats,
      after,
      logLines: server.logLines(),
    };
  } finally {
    await group.stopChild(server);
  }
}

function newStats() {
  return {
    /** Responses received in the window, by status, before and after the requests fell due. */
    waiting: {},
    afterDue: {},
    errors: 0,
    errorSamples: [],
    /** Round-trip times of the plain (non-waiting) requests, ms. */
    rtt: [],
    /** When each response arrived (epoch ms). */
    times: [],
    /** ms from `completed_at` to the client holding the completed status. */
    learn: [],
    capped: 0,
  };
}

/** One client: waits for request `id` in `mode` until it learns it is terminal or the window ends. */
async function client(ctx, mode, id, agent, startAt) {
  const { hostname, port, settings, signal, tEnd, runAt, stats } = ctx;
  await until(startAt);
  let etag = null;
  let nextAt = startAt;
  for (let sent = 0; sent < MAX_REQUESTS_PER_CLIENT; sent++) {
    if (signal.aborted || Date.now() >= tEnd) return;
    const longPoll = mode === 'long' && etag !== null;
    const headers = etag !== null && mode !== 'poll' ? { 'if-none-match': etag } : {};
    const reqPath = longPoll ? `/v1/requests/${id}?wait=${settings.wait}` : `/v1/requests/${id}`;
    const sentAt = Date.now();
    let res;
    try {
      res = await request(agent, {
        hostname,
        port,
        path: reqPath,
        headers,
        signal,
        timeoutMs: longPoll ? (settings.wait + 10) * 1000 : 10_000,
      });
    } catch (err) {
      if (signal.aborted) return;
      stats.errors += 1;
      if (stats.errorSamples.length < 5) stats.errorSamples.push(err.message);
      await delay(Math.min(1_000, Math.max(0, tEnd - Date.now())));
      continue;
    }
    const receivedAt = Date.now();
    if (receivedAt > tEnd) return; // answered after the window: not counted
    const bucket = receivedAt < runAt ? stats.waiting : stats.afterDue;
    bucket[res.status] = (bucket[res.status] ?? 0) + 1;
    stats.times.push(receivedAt);
    if (!longPoll) stats.rtt.push(receivedAt - sentAt);
    if (res.status === 200) {
      etag = typeof res.headers.etag === 'string' ? res.headers.etag : null;
      const body = JSON.parse(res.body);
      if (['completed', 'failed', 'cancelled'].includes(body.status)) {
        const completedAt = Date.parse(body.completed_at);
        if (Number.isFinite(completedAt)) stats.learn.push(receivedAt - completedAt);
        return;
      }
    } else if (res.status !== 304) {
      // Unexpected: counted above; back off a poll interval rather than spin.
      await delay(Math.min(settings.interval * 1000, Math.max(0, tEnd - Date.now())));
      continue;
    }
    if (mode !== 'long') {
      nextAt += settings.interval * 1000;
      if (nextAt < Date.now()) nextAt = Date.now(); // late: poll now, no burst to catch up
      await until(Math.min(nextAt, tEnd));
    }
  }
  stats.capped += 1;
}

/** 0..n−1 in a fixed pseudo-random order (a seeded Fisher–Yates), the same every run. */
function shuffled(n) {
  const order = Array.from({ length: n }, (_, i) => i);
  let seed = 0x9e3779b9;
  const random = () => {
    // xorshift32
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

function countBetween(times, from, to) {
  let n = 0;
  for (const t of times) if (t >= from && t < to) n += 1;
  return n;
}

// ---------------------------------------------------------------------------
// Report

const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
const statusText = (o) =>
  Object.entries(o)
    .map(([code, n]) => `${fmt(n)}×${code}`)
    .join(' ') || '0';

function pollRow(server, m) {
  const other = Object.entries(m.statuses).filter(([code]) => Number(code) !== m.expectedStatus);
  const shape = m.expectedStatus === 304 ? '`If-None-Match` → 304' : 'plain → 200';
  return `| ${server} | ${shape} | ${fmt(m.rps)} | ${fmt(m.expected)} | ${fmtMs(m.p50)} | ${fmtMs(m.p99)} | ${fmt(m.bytesPerResponse)} | ${other.length > 0 ? other.map(([c, n]) => `${n}×${c}`).join(' ') : '0'} | ${m.errors} / ${m.timeouts} |`;
}

function report({ startedAt, finishedAt, loadStart, info, settings, fdLimit, polls, waiting }) {
  const autocannonVersion = require('autocannon/package.json').version;
  const fastifyVersion = require('fastify/package.json').version;
  const lines = [];
  lines.push(`## Polling run ${startedAt}`, '');
  lines.push('`npm run bench -- --suite polling` (bench/polling.mjs): conditional polls, and N clients long-polling vs polling.', '');
  lines.push(
    `- Machine: ${info.nproc} CPU(s), ${info.cpu}; ${info.memGiB} GiB RAM; ${info.os}; Node ${info.node}; open-file limit ${fdLimit ?? 'unknown'}`,
  );
  lines.push(`- Code: commit ${info.commit}; dist built ${info.built}; run finished ${finishedAt}`);
  lines.push(`- Load average (1/5/15 min) at start: ${loadStart}; at end: ${loadAvg()} (other work on the machine skews the numbers)`);
  lines.push(
    `- Errand: a fresh child process per part (\`node packages/server/dist/cli/main.js serve\`), fresh SQLite file in ${os.tmpdir()} on ${info.tmpFs}; config defaults (\`store.synchronous: full\`, engine concurrency 16, \`server.long_poll_max\` 30 s); \`logging.level: warn\`; operation \`noop\` = \`export default { run: () => null }\``,
  );
  lines.push(
    `- Baseline: child process \`bench/baseline-server.mjs\` (Fastify ${fastifyVersion}, logger off; any \`If-None-Match\` → 304, no tag computed)`,
  );
  lines.push('');

  // Part 1
  const { baseline, errand } = polls;
  lines.push('### Status polls per second: `If-None-Match` (304) vs plain (200)', '');
  lines.push(
    `autocannon ${autocannonVersion} in the harness process, ${settings.connections} connections, pipelining 1, ${settings.duration} s per row after ${settings.warmup} s unrecorded warm-up, plain first then conditional on each server; the polls rotate over ${settings.ids} requests that do not change (Errand: no-ops submitted with \`run_at\` an hour ahead, so \`pending\`; each conditional poll sends that request's current \`ETag\`).`,
    '',
  );
  lines.push('| Server | Poll | req/s | counted | p50 ms | p99 ms | bytes/response | other statuses | errors / timeouts |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---|---|');
  lines.push(pollRow('baseline Fastify', baseline.plain));
  lines.push(pollRow('baseline Fastify', baseline.conditional));
  lines.push(pollRow('Errand', errand.plain));
  lines.push(pollRow('Errand', errand.conditional));
  lines.push('');
  lines.push('Ratios (same run):', '');
  lines.push(`- Errand 304-polls ÷ 200-polls: **${ratio(errand.conditional.rps, errand.plain.rps)}**`);
  lines.push(`- baseline 304-polls ÷ 200-polls: ${ratio(baseline.conditional.rps, baseline.plain.rps)}`);
  lines.push(
    `- Errand ÷ baseline, 200-polls: ${ratio(errand.plain.rps, baseline.plain.rps)}; 304-polls: ${ratio(errand.conditional.rps, baseline.conditional.rps)}`,
  );
  lines.push('');

  // Part 2
  const rows = [waiting.long, waiting.poll, waiting.pollEtag].filter(Boolean);
  const { clients, window, completeAt } = settings;
  lines.push(`### ${fmt(clients)} clients waiting for results: long-poll vs polling every ${settings.interval} s`, '');
  lines.push(
    `Each way on a fresh Errand with ${fmt(clients)} no-ops submitted with \`run_at\` ${completeAt > 0 ? `${completeAt} s into the window (all pending until then; they fall due together, run and complete; a client stops once it holds the completed status)` : 'after the window (pending throughout)'}. ${fmt(clients)} clients in the harness process, one request each, each on its own keep-alive connection (node:http Agent, maxSockets 1), starting evenly over the first ${STAGGER_MS / 1000} s of a ${window} s window:`,
    '',
  );
  for (const r of rows) lines.push(`- ${MODES[r.mode].label}: ${MODES[r.mode].describe(settings)}`);
  lines.push('');
  lines.push(
    `Server CPU = utime + stime of the Errand child from /proc/<pid>/stat (all threads; ${1000 / CLK_TCK} ms ticks). **Waiting** is the part of the window before the requests fall due (${completeAt > 0 ? `the first ${completeAt} s` : 'all of it'}), connecting and first reads included; **steady** is the waiting from ${SETTLE_MS / 1000} s on (every client connected and past its first read); **idle** is the same server over the ${IDLE_MS / 1000} s just before the window (the pending requests, no clients). Responses are counted when they reach a client within the window; RSS and descriptors are sampled every 0.5 s.`,
    '',
  );
  lines.push(
    '| Clients | responses while waiting | server CPU while waiting, ms (ms/s) | CPU per response while waiting, µs | steady: responses/s | steady: server CPU, ms/s | idle: server CPU, ms/s | responses after due | server CPU after due, ms | whole window: server CPU, ms |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const perS = (n, spanMs) => (n * 1000) / spanMs;
  for (const r of rows) {
    const waitingCount = sum(r.stats.waiting);
    lines.push(
      `| ${MODES[r.mode].label} | ${statusText(r.stats.waiting)} | ${fmt(r.cpuWaiting)} (${fmt(perS(r.cpuWaiting, r.waitingMs), 1)}) | ${waitingCount > 0 ? fmt((r.cpuWaiting * 1000) / waitingCount) : 'n/a'} | ${r.steady ? fmt(perS(r.steady.responses, r.steady.ms), 1) : 'n/a'} | ${r.steady ? fmt(perS(r.steady.cpuMs, r.steady.ms), 1) : 'n/a'} | ${fmt(perS(r.idle.cpuMs, r.idle.ms), 1)} | ${statusText(r.stats.afterDue)} | ${fmt(r.cpuAfterDue)} | ${fmt(r.cpuWindow)} |`,
    );
  }
  lines.push('');
  lines.push(
    '| Clients | learned completion | completion → client knows, p50 / p99 / max ms | plain-read round trip p50 / p99 ms | server RSS start → peak (end) MiB | server open fds, peak | client errors | harness CPU, ms | backlog after |',
  );
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    const learn = r.stats.learn;
    const rtt = r.stats.rtt;
    const errors = `${r.stats.errors}${r.stats.errorSamples.length > 0 ? ` (${r.stats.errorSamples.join('; ')})` : ''}${r.stats.capped > 0 ? `; ${r.stats.capped} clients hit the request cap` : ''}`;
    lines.push(
      `| ${MODES[r.mode].label} | ${fmt(learn.length)} / ${fmt(clients)} | ${fmtMs(percentile(learn, 50))} / ${fmtMs(percentile(learn, 99))} / ${fmtMs(percentile(learn, 100))} | ${fmtMs(percentile(rtt, 50))} / ${fmtMs(percentile(rtt, 99))} | ${fmt(r.rssStart, 1)} → ${fmt(r.rssPeak, 1)} (${fmt(r.rssEnd, 1)}) | ${fmt(r.fdsPeak)} | ${errors} | ${fmt(r.harnessCpuMs)} | ${r.after}; warn+ log lines ${r.logLines} |`,
    );
  }
  lines.push('');
  const { long, poll, pollEtag } = waiting;
  const rate = (r) => perS(r.cpuWaiting, r.waitingMs);
  const steadyRate = (r) => (r.steady ? perS(r.steady.cpuMs, r.steady.ms) : NaN);
  /** polling ÷ long-polling, steady; when long-polling used less than one clock tick, a lower bound. */
  const steadyRatio = (l, p) => {
    if (!l.steady || !p.steady) return 'n/a';
    if (l.steady.cpuMs > 0) return ratio(steadyRate(p), steadyRate(l));
    const tickMs = 1000 / CLK_TCK;
    return `long-polling used less than one ${tickMs} ms tick in ${fmt(l.steady.ms / 1000, 1)} s: polling costs at least ${fmt((p.steady.cpuMs / tickMs) * (l.steady.ms / p.steady.ms))}× as much`;
  };
  lines.push('Ratios and comparisons (same run):', '');
  lines.push(`- server CPU while waiting, polling ÷ long-polling: **${ratio(rate(poll), rate(long))}**`);
  lines.push(
    `- steady server CPU: long-polling ${fmt(steadyRate(long), 1)} ms/s, polling ${fmt(steadyRate(poll), 1)} ms/s (${steadyRatio(long, poll)}); idle ${fmt(perS(long.idle.cpuMs, long.idle.ms), 1)} / ${fmt(perS(poll.idle.cpuMs, poll.idle.ms), 1)} ms/s`,
  );
  lines.push(`- responses while waiting, polling ÷ long-polling: ${ratio(sum(poll.stats.waiting), sum(long.stats.waiting))}`);
  lines.push(`- whole-window server CPU, polling ÷ long-polling: ${ratio(poll.cpuWindow, long.cpuWindow)}`);
  lines.push(`- server RSS peak, long-polling − polling: ${fmt(long.rssPeak - poll.rssPeak, 1)} MiB`);
  if (pollEtag) {
    lines.push(`- server CPU while waiting, polling with If-None-Match ÷ plain polling: ${ratio(rate(pollEtag), rate(poll))}`);
  }
  if (completeAt > 0) {
    lines.push(
      `- completion → client knows, p50: long-poll ${fmtMs(percentile(long.stats.learn, 50))} ms, polling ${fmtMs(percentile(poll.stats.learn, 50))} ms`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

function warnings(polls, waiting, settings) {
  const out = [];
  for (const m of [polls.baseline.plain, polls.baseline.conditional, polls.errand.plain, polls.errand.conditional]) {
    const other = Object.entries(m.statuses).filter(([code]) => Number(code) !== m.expectedStatus);
    if (m.expected === 0 || other.length > 0 || m.errors > 0)
      out.push(`${m.label}: ${m.expected} × ${m.expectedStatus}, other ${JSON.stringify(Object.fromEntries(other))}, ${m.errors} errors`);
  }
  for (const r of Object.values(waiting)) {
    if (!r) continue;
    const unexpected = Object.keys({ ...r.stats.waiting, ...r.stats.afterDue }).filter((c) => c !== '200' && c !== '304');
    if (unexpected.length > 0 || r.stats.errors > 0)
      out.push(`${MODES[r.mode].label}: statuses ${unexpected.join(', ') || 'ok'}, ${r.stats.errors} client errors`);
    if (settings.completeAt > 0 && r.stats.learn.length < settings.clients)
      out.push(
        `${MODES[r.mode].label}: only ${r.stats.learn.length} of ${settings.clients} clients learned of the completion within the window`,
      );
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exit(await main(process.argv.slice(2)));
}
