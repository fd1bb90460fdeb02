#!/usr/bin/env node
/**
 * The peers suite (issue 13, "measure first, side by side, in one run"): the
 * same no-op job (about 200 bytes of JSON input) through Errand and through
 * the job queues people would pick instead, on this machine, in one run:
 *
 *   sqlite, sqlite-batch   Errand on a fresh SQLite file: jobs over HTTP, one per
 *                          `POST /v1/operations/noop?async=true` with --in-flight in
 *                          flight, or --batch per `POST /v1/batches` (4 in flight)
 *   pg, pg-batch           the same on PostgreSQL (a fresh schema)
 *   bullmq                 BullMQ on the local Redis, `addBulk`, worker concurrency 50
 *   graphile               graphile-worker with its documented high-throughput preset
 *                          (concurrentJobs 24, maxPoolSize 25, localQueue 500, batched
 *                          completion: completeJobBatchDelay / failJobBatchDelay 0)
 *   graphile-default       graphile-worker with its defaults (concurrency 1)
 *   pgboss                 pg-boss, 10 workers fetching 100 jobs every 0.5 s (its minimum)
 *   pgboss-default         pg-boss with its defaults (1 job per fetch, every 2 s; capped)
 *   http                   a do-nothing Fastify vs Errand (SQLite): submits/s (POST → 202)
 *                          and status polls/s with autocannon, --in-flight connections
 *
 * For each queue system: enqueue/s (the enqueue phase), processed/s (first →
 * last completion), end to end jobs/s (first enqueue → last completion of
 * --jobs jobs), idle pickup latency p50/p99 (one job at a time, --samples
 * samples: ms from just before the enqueue call to the handler's first line),
 * and the database cost per job — for Errand and the PostgreSQL queues:
 * commits, rows written, WAL bytes. The peers enqueue in bulk (1,000 per
 * call); Errand takes one job per HTTP request (and, in the -batch rows, a
 * batch per request).
 *
 *   npm ci --prefix bench/peers && npm run build -w errand
 *   npm run bench -- --suite peers [--jobs 20000] [--only sqlite,bullmq] [--url postgres://…]
 *
 * Bounded: each system's end-to-end wait is capped (--max-seconds; pg-boss
 * defaults 20 s), each latency phase 30 s (pg-boss defaults 10 s), the whole run has a budget, every
 * child is stopped and every schema / Redis queue is removed at the end.
 */
import { appendFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  autocannonRunner,
  BASELINE,
  CLI,
  createProcessGroup,
  fmt,
  fmtMs,
  installSafetyNet,
  intFlag,
  loadAvg,
  machine,
  percentile,
  request,
  RESULTS,
  ROOT,
  utcNow,
  writeBytes,
} from './lib.mjs';
import { NOOP_INPUT, peerVersion, pgSchemas, sqliteRowCounts, startBullmq, startErrand, startGraphile, startPgBoss } from './systems.mjs';

const SYSTEMS = ['sqlite', 'sqlite-batch', 'pg', 'pg-batch', 'bullmq', 'graphile', 'graphile-default', 'pgboss', 'pgboss-default', 'http'];

const HELP = `Usage: node bench/run.mjs --suite peers [options]   (npm ci --prefix bench/peers and npm run build -w errand first)

  --jobs N          no-op jobs per system, end to end (default 20000)
  --in-flight N     concurrent HTTP submissions to Errand, and autocannon connections (default 64)
  --batch N         jobs per bulk call: Errand batch items, addBulk / addJobs / insert (default 1000)
  --samples N       idle pickup latency samples per system (default 200; at most 30 s each)
  --duration N      seconds per autocannon measurement in the http part (default 5)
  --max-seconds N   cap on each system's end-to-end wait (default 180; pg-boss defaults: 20)
  --url URL         PostgreSQL database (default $ERRAND_BENCH_PG_URL or postgres://postgres@127.0.0.1:5432/test)
  --redis HOST:PORT Redis for BullMQ (default 127.0.0.1:6379)
  --only LIST       a comma-separated subset of: ${SYSTEMS.join(', ')}
  --note TEXT       added to the section's heading (e.g. "development run, machine busy")
  --no-record       print the results without appending them to bench/RESULTS.md
  --help            this text
`;

/** The tuned configurations, as their docs give them (see bench/README.md). */
const GRAPHILE_TUNED = {
  concurrency: 24,
  maxPoolSize: 25,
  preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
};
const PGBOSS_TUNED = { workers: 10, work: { batchSize: 100, pollingIntervalSeconds: 0.5 } };
const PGBOSS_DEFAULT_CAP_S = 20;
const LATENCY_CAP_MS = 30_000;
/** pg-boss with its defaults polls every 2 s: a few samples say it. */
const PGBOSS_DEFAULT_LATENCY_CAP_MS = 10_000;

export async function main(argv) {
  const { values: flags } = parseArgs({
    args: argv,
    options: {
      jobs: { type: 'string', default: '20000' },
      'in-flight': { type: 'string', default: '64' },
      batch: { type: 'string', default: '1000' },
      samples: { type: 'string', default: '200' },
      duration: { type: 'string', default: '5' },
      'max-seconds': { type: 'string', default: '180' },
      url: { type: 'string', default: process.env.ERRAND_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
      redis: { type: 'string', default: '127.0.0.1:6379' },
      only: { type: 'string', default: SYSTEMS.join(',') },
      note: { type: 'string', default: '' },
      'no-record': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (flags.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const opts = {
    note: flags.note,
    jobs: intFlag('--jobs', flags.jobs, 1, 1_000_000),
    inFlight: intFlag('--in-flight', flags['in-flight'], 1, 1000),
    batch: intFlag('--batch', flags.batch, 1, 100_000),
    samples: intFlag('--samples', flags.samples, 1, 10_000),
    duration: intFlag('--duration', flags.duration, 1, 300),
    maxMs: intFlag('--max-seconds', flags['max-seconds'], 1, 3600) * 1000,
    url: flags.url,
  };
  const [redisHost, redisPort] = flags.redis.split(':');
  opts.redis = { host: redisHost || '127.0.0.1', port: Number(redisPort || 6379) };
  const only = flags.only
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = only.filter((s) => !SYSTEMS.includes(s));
  if (unknown.length > 0 || only.length === 0) {
    process.stderr.write(
      `bench: --only takes a comma-separated subset of ${SYSTEMS.join(', ')} (unknown: ${unknown.join(', ') || 'none given'})\n`,
    );
    return 2;
  }
  if (!existsSync(CLI)) {
    process.stderr.write(`bench: ${path.relative(ROOT, CLI)} is missing; run \`npm run build -w errand\` first\n`);
    return 2;
  }

  const group = createProcessGroup();
  // Budget: every system's capped waits, the latency phases, the http part, and start/stop margins.
  const budgetMs = only.length * (opts.maxMs + LATENCY_CAP_MS + 30_000) + (only.includes('http') ? 8 * (opts.duration + 1) * 1000 : 0);
  installSafetyNet(group, budgetMs);
  const startedAt = utcNow();
  const loadStart = loadAvg();
  const needsPg = only.some((s) => s.startsWith('pg') || s.startsWith('graphile'));
  const pgs = needsPg ? await pgSchemas(opts.url) : undefined;
  const results = [];
  let httpPart;
  try {
    for (const id of only) {
      if (id === 'http') {
        httpPart = await runHttp(group, opts);
        continue;
      }
      process.stderr.write(`bench: ${id}…\n`);
      try {
        results.push(await runSystem(id, { group, opts, pgs }));
      } catch (err) {
        // One system failing (Redis down, a timeout) leaves the others' rows; the row says why.
        process.stderr.write(`bench: ${id} failed: ${err.stack ?? err}\n`);
        results.push({
          id,
          label: id,
          error: String(err.message ?? err)
            .split('\n')[0]
            .slice(0, 200),
        });
      }
      if (group.aborting) break;
    }
  } finally {
    await group.cleanup();
    await pgs?.dropAll();
  }
  const text = report({ opts, results, httpPart, startedAt, loadStart, pgVersion: pgs ? await pgVersion(opts.url) : undefined });
  process.stdout.write(text);
  if (!flags['no-record']) {
    appendFileSync(RESULTS, text);
    process.stderr.write(`bench: results appended to ${path.relative(ROOT, RESULTS)}\n`);
  }
  return 0;
}

async function pgVersion(url) {
  const s = await pgSchemas(url);
  try {
    return await s.version();
  } finally {
    await s.dropAll();
  }
}

/** What each id starts, and how its database cost is read. */
async function startSystem(id, { group, opts, pgs }) {
  switch (id) {
    case 'sqlite':
    case 'sqlite-batch': {
      const store = { url: 'sqlite:./errand.db' };
      const label = `Errand SQLite${id.endsWith('batch') ? ', batches' : ''}`;
      return { kind: 'sqlite', store, handle: await startErrand(group, { label, store }) };
    }
    case 'pg':
    case 'pg-batch': {
      const { schema, url } = await pgs.fresh(`errand_${id}`);
      const store = { url };
      const label = `Errand PostgreSQL${id.endsWith('batch') ? ', batches' : ''}`;
      return { kind: 'pg', schema, store, handle: await startErrand(group, { label, store }) };
    }
    case 'bullmq':
      return { kind: 'redis', handle: await startBullmq({ label: 'BullMQ (concurrency 50)', redis: opts.redis }) };
    case 'graphile':
    case 'graphile-default': {
      const { schema, url } = await pgs.fresh(id);
      const tuned = id === 'graphile';
      const label = tuned ? 'graphile-worker (preset: local queue, batched completion)' : 'graphile-worker (defaults)';
      return { kind: 'pg', schema, handle: await startGraphile({ label, url, options: tuned ? GRAPHILE_TUNED : {} }) };
    }
    case 'pgboss':
    case 'pgboss-default': {
      const { schema, url } = await pgs.fresh(id);
      const tuned = id === 'pgboss';
      const label = tuned ? 'pg-boss (10 workers × batch 100, 0.5 s)' : 'pg-boss (defaults)';
      return { kind: 'pg', schema, handle: await startPgBoss({ label, url, ...(tuned ? PGBOSS_TUNED : {}) }) };
    }
    default:
      throw new Error(`unknown system ${id}`);
  }
}

/**
 * One system: idle pickup latency first (one job at a time; Errand is then
 * restarted on the same store), then the database snapshot, the end-to-end
 * run, and the snapshot after (PostgreSQL statistics and the SQLite file once
 * the system has stopped).
 */
async function runSystem(id, { group, opts, pgs }) {
  const system = await startSystem(id, { group, opts, pgs });
  const { kind, schema } = system;
  let handle = system.handle;
  const bulk = id === 'sqlite' || id === 'pg' ? undefined : opts.batch;
  const capMs = id === 'pgboss-default' ? Math.min(opts.maxMs, PGBOSS_DEFAULT_CAP_S * 1000) : opts.maxMs;
  let running = true;
  try {
    // The -batch rows share their store's pickup latency with the HTTP rows.
    const latencyCapMs = id === 'pgboss-default' ? PGBOSS_DEFAULT_LATENCY_CAP_MS : LATENCY_CAP_MS;
    const latency = id.endsWith('-batch') ? undefined : await pickupLatency(handle, opts.samples, latencyCapMs);
    let rowsBefore;
    if (handle.servers) {
      // Errand starts again on the same store: the SQLite file can be read while no server holds it.
      await handle.stop();
      running = false;
      if (kind === 'sqlite') rowsBefore = sqliteRowCounts(path.join(handle.dir, 'errand.db'));
      handle = await startErrand(group, { label: handle.label, store: system.store, dir: handle.dir });
      running = true;
    }
    const before = await costSnapshot({ kind, schema, handle, pgs });
    const started = Date.now();
    await handle.enqueue(opts.jobs, { inFlight: opts.inFlight, bulk });
    const enqueued = Date.now();
    const outcome = await handle.waitDone(opts.jobs, capMs);
    const waited = Date.now();
    const after = await costSnapshot({ kind, schema, handle, pgs });
    running = false;
    await handle.stop();
    // After the stop: PostgreSQL statistics are complete once the connections closed; the SQLite file is free.
    const times = await handle.completionTimes();
    if (kind === 'pg') after.pg = await pgs.stats(schema);
    if (rowsBefore) {
      before.rows = rowsBefore;
      after.rows = sqliteRowCounts(path.join(handle.dir, 'errand.db'));
    }
    const cost = await costDelta(kind, before, after, pgs);
    return {
      id,
      label: handle.label,
      bulk,
      latency,
      enqueueMs: enqueued - started,
      done: outcome.done,
      completed: outcome.completed,
      capMs,
      waitedMs: waited - started,
      e2eMs: outcome.done ? times.last - started : NaN,
      processMs: times.last - times.first,
      processedCount: times.count,
      // Per-job costs only for runs that finished: a capped run's enqueue cost would be spread over too few jobs.
      cost: cost && outcome.done ? { ...cost, perJob: outcome.completed } : undefined,
    };
  } finally {
    if (running) await handle.stop();
  }
}

async function pickupLatency(handle, samples, capMs) {
  const values = [];
  const deadline = Date.now() + capMs;
  for (let i = 0; i < samples && Date.now() < deadline; i++) values.push(await handle.probe());
  return { n: values.length, p50: percentile(values, 50), p99: percentile(values, 99), max: Math.max(...values) };
}

/**
 * Errand: store commits (`/metrics`); on SQLite also the bytes the server has
 * written to disk. PostgreSQL: pg_stat views and the WAL position.
 */
async function costSnapshot({ kind, schema, handle, pgs }) {
  const snap = {};
  if (kind === 'pg') snap.pg = await pgs.stats(schema);
  if (handle.servers) snap.storeCommits = await handle.commits();
  if (handle.servers && kind === 'sqlite') snap.writeBytes = handle.servers.reduce((sum, s) => sum + writeBytes(s.proc.pid), 0);
  return snap;
}

async function costDelta(kind, before, after, pgs) {
  if (kind === 'redis') return undefined;
  const d = {};
  if (before.storeCommits !== undefined) d.storeCommits = after.storeCommits - before.storeCommits;
  if (before.writeBytes !== undefined) d.writeBytes = after.writeBytes - before.writeBytes;
  if (before.rows) {
    d.rowsAdded = Object.fromEntries(
      Object.entries(after.rows)
        .map(([t, n]) => [t, n - (before.rows[t] ?? 0)])
        .filter(([, n]) => n !== 0),
    );
  }
  if (before.pg) {
    d.xactCommits = after.pg.commits - before.pg.commits;
    d.ins = after.pg.ins - before.pg.ins;
    d.upd = after.pg.upd - before.pg.upd;
    d.del = after.pg.del - before.pg.del;
    d.walBytes = await pgs.walBytes(before.pg.lsn, after.pg.lsn);
  }
  return d;
}

// ---------------------------------------------------------------------------
// The http part: a do-nothing Fastify vs Errand, submits and status polls

async function runHttp(group, opts) {
  const cannon = autocannonRunner(group, { connections: opts.inFlight, duration: opts.duration, warmup: 1 });
  const body = JSON.stringify(NOOP_INPUT);
  const baseline = await group.startChild('baseline', [BASELINE, '0'], { cwd: ROOT });
  let fastify;
  try {
    const ids = Array.from({ length: 100 }, (_, i) => `req_${String(i).padStart(26, '0')}`);
    fastify = {
      submit: await cannon.measure('Fastify submit', 202, (d) => cannon.submitLoad(baseline.url, body, d)),
      poll: await cannon.measure('Fastify poll', 200, (d) => cannon.pollLoad(baseline.url, ids, d)),
    };
  } finally {
    await group.stopChild(baseline);
  }
  const errand = await startErrand(group, { label: 'Errand SQLite (http part)', store: { url: 'sqlite:./errand.db' } });
  try {
    const url = errand.servers[0].url;
    const submit = await cannon.measure('Errand submit', 202, (d) => cannon.submitLoad(url, body, d));
    // Polls of an idle engine: the submissions' backlog is drained first (bounded).
    await errand.waitDone(0, 60_000);
    const ids = await newestIds(url);
    const poll = await cannon.measure('Errand poll', 200, (d) => cannon.pollLoad(url, ids, d));
    return { fastify, errand: { submit, poll } };
  } finally {
    await errand.stop();
  }
}

async function newestIds(url) {
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: false });
  const res = await request(agent, { hostname: target.hostname, port: target.port, path: '/v1/requests?limit=100', timeoutMs: 10_000 });
  const ids = JSON.parse(res.body).data.map((r) => r.request_id);
  if (ids.length === 0) throw new Error('no requests to poll: the submission phase created none');
  return ids;
}

// ---------------------------------------------------------------------------
// Report

const perSecond = (n, ms) => (ms > 0 && Number.isFinite(ms) ? (n / ms) * 1000 : NaN);
const times = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');

function report({ opts, results, httpPart, startedAt, loadStart, pgVersion: pgv }) {
  const m = machine();
  const rate = (r) => ({
    enqueue: perSecond(opts.jobs, r.enqueueMs),
    processed: perSecond(r.processedCount, r.processMs),
    e2e: perSecond(opts.jobs, r.e2eMs),
  });
  const lines = [
    '',
    `## ${startedAt} — Errand beside its peers (suite peers)${opts.note ? ` — ${opts.note}` : ''}`,
    '',
    `- Machine: ${m.nproc} × ${m.cpu}, ${m.memGiB} GiB, ${m.os}, Node ${m.node}; commit ${m.commit}; dist built ${m.built}`,
    `- Load average (1/5/15 min) at start: ${loadStart}; at end: ${loadAvg()} (other work on the machine moves every number)`,
    `- ${fmt(opts.jobs)} no-op jobs per system (input: ${JSON.stringify(NOOP_INPUT).length} bytes of JSON). Errand: child process \`errand serve\`, engine defaults (concurrency 16, \`store.synchronous: full\`), SQLite in ${m.tmpFs}${pgv ? `, PostgreSQL ${pgv} on 127.0.0.1 (a fresh schema per system)` : ''}; one job per \`POST /v1/operations/noop?async=true\` with ${opts.inFlight} in flight, or ${fmt(opts.batch)} per \`POST /v1/batches\` (4 in flight). Queues in this process: BullMQ ${peerVersion('bullmq')} (Redis ${opts.redis.host}:${opts.redis.port}), graphile-worker ${peerVersion('graphile-worker')}, pg-boss ${peerVersion('pg-boss')}, enqueuing ${fmt(opts.batch)} jobs per call (4 calls in flight).`,
    '- enqueue/s: jobs ÷ the enqueue phase; processed/s: completions ÷ (first → last completion); end to end: jobs ÷ (first enqueue → last completion). Errand completion times are the committed `completed_at`; the queues count when the handler returns.',
    `- idle pickup: one job at a time, ms from just before the enqueue call (Errand: the HTTP submit, answered after commit) to the handler's first line (Errand's handler returns its \`performance.timeOrigin + performance.now()\`; same clock), up to ${opts.samples} samples or 30 s.`,
    '',
    '| system | enqueue/s | processed/s | end to end jobs/s | first enqueue → last completion | pickup p50 ms | pickup p99 ms | samples |',
    '| ------ | --------: | ----------: | ----------------: | ------------------------------: | ------------: | ------------: | ------: |',
  ];
  for (const r of results) {
    if (r.error) {
      lines.push(`| ${r.label} | failed: ${r.error.replaceAll('|', '/')} | | | | | | |`);
      continue;
    }
    const x = rate(r);
    const e2e = r.done ? `${fmt(r.e2eMs)} ms` : `not done: ${fmt(r.completed)} of ${fmt(opts.jobs)} in ${fmt(r.capMs / 1000)} s (cap)`;
    const lat = r.latency;
    lines.push(
      `| ${r.label} | ${fmt(x.enqueue)} | ${fmt(x.processed)} | ${r.done ? fmt(x.e2e) : 'n/a'} | ${e2e} | ${lat ? fmtMs(lat.p50) : '(as above)'} | ${lat ? fmtMs(lat.p99) : ''} | ${lat ? lat.n : ''} |`,
    );
  }
  const costed = results.filter((r) => !r.error && r.cost);
  const uncosted = results.filter((r) => !r.error && !r.done && r.id !== 'bullmq').map((r) => r.label);
  if (costed.length > 0) {
    lines.push(
      '',
      'Database cost per completed job (end-to-end phase only). PostgreSQL: `pg_stat_database.xact_commit` of the database (every transaction, reads included), `pg_stat_user_tables` n_tup_ins / upd / del of the schema, `pg_current_wal_lsn()` difference (cluster-wide: other databases on the server add to it). Errand: `errand_store_commits_total` (write commits), and on SQLite the bytes the server wrote to disk (`/proc/<pid>/io` write_bytes: WAL and checkpoints) and the rows added per table.',
      '',
      '| system | store commits | xact commits | rows ins / upd / del | WAL bytes | bytes written (SQLite) | rows added (SQLite) |',
      '| ------ | ------------: | -----------: | -------------------: | --------: | ---------------------: | ------------------- |',
    );
    for (const r of costed) {
      const c = r.cost;
      const n = Math.max(1, c.perJob);
      const per = (v, digits = 2) => (v === undefined ? '' : fmt(v / n, digits));
      const rows = c.rowsAdded
        ? Object.entries(c.rowsAdded)
            .filter(([, v]) => v / n >= 0.005)
            .map(([t, v]) => `${t} ${fmt(v / n, 2)}`)
            .join(', ')
        : '';
      lines.push(
        `| ${r.label} | ${per(c.storeCommits)} | ${per(c.xactCommits)} | ${c.ins === undefined ? '' : `${per(c.ins)} / ${per(c.upd)} / ${per(c.del)}`} | ${per(c.walBytes, 0)} | ${per(c.writeBytes, 0)} | ${rows} |`,
      );
    }
  }
  if (uncosted.length > 0) {
    lines.push(
      '',
      `No cost row for runs that hit their cap (${uncosted.join('; ')}): their enqueue cost would be spread over too few completions. A smaller \`--jobs\` or a larger \`--max-seconds\` gets one.`,
    );
  }
  if (httpPart) {
    const { fastify, errand } = httpPart;
    lines.push(
      '',
      `HTTP: autocannon, ${opts.inFlight} connections, ${opts.duration} s after 1 s warm-up; Errand on a fresh SQLite file; polls rotate over 100 ids (Errand: the newest, after the submissions' backlog drained: an idle engine).`,
      '',
      '| shape | Fastify req/s | Errand req/s | Errand ÷ Fastify | Fastify p50 / p99 ms | Errand p50 / p99 ms | Errand other statuses / errors |',
      '| ----- | ------------: | -----------: | ---------------: | -------------------: | ------------------: | ------------------------------ |',
      ...['submit', 'poll'].map((shape) => {
        const f = fastify[shape];
        const e = errand[shape];
        const other = Object.entries(e.statuses).filter(([code]) => Number(code) !== e.expectedStatus);
        return `| ${shape === 'submit' ? 'submit (POST → 202; Errand: committed)' : 'status poll (GET 200)'} | ${fmt(f.rps)} | ${fmt(e.rps)} | ${times(e.rps, f.rps)} | ${fmtMs(f.p50)} / ${fmtMs(f.p99)} | ${fmtMs(e.p50)} / ${fmtMs(e.p99)} | ${other.map(([c, n]) => `${c}×${n}`).join(' ') || '0'} / ${e.errors + e.timeouts} |`;
      }),
    );
  }
  lines.push('', ...targets({ opts, results, httpPart, rate }), '');
  return `${lines.join('\n')}\n`;
}

/** Issue 13's targets as ratios of this run (a target whose rows were not run is left out). */
function targets({ opts, results, httpPart, rate }) {
  const by = Object.fromEntries(results.filter((r) => !r.error).map((r) => [r.id, { ...r, rate: rate(r) }]));
  const e2e = (id) => (by[id]?.done ? by[id].rate.e2e : NaN);
  /** Errand ÷ peer; a run that hit its cap took longer than it waited, so jobs ÷ waited is an upper bound. */
  const vs = (ours, peer) => {
    if (!by[peer]?.done) return `n/a (${by[peer]?.label ?? peer} did not finish)`;
    if (by[ours].done) return times(e2e(ours), e2e(peer));
    return `< ${times(perSecond(opts.jobs, by[ours].waitedMs), e2e(peer))} (not done within the cap)`;
  };
  const out = ['Ratios to the peers and issue 13 targets (this run):', ''];
  const row = (what, value, target) => out.push(`- ${what}: **${value}** (target ${target})`);
  if (by.sqlite && by.bullmq) row('end to end, SQLite HTTP submits ÷ BullMQ', vs('sqlite', 'bullmq'), '≥ 1.0×');
  if (by['sqlite-batch'] && by.bullmq) row('end to end, SQLite batches ÷ BullMQ', vs('sqlite-batch', 'bullmq'), 'none');
  if (by.pg && by.graphile) row('end to end, PostgreSQL HTTP submits ÷ graphile-worker tuned', vs('pg', 'graphile'), '≥ 0.5×');
  if (by.pg && by.pgboss) row('end to end, PostgreSQL HTTP submits ÷ pg-boss tuned', vs('pg', 'pgboss'), '≥ 2×');
  if (by['pg-batch'] && by.graphile) row('end to end, PostgreSQL batches ÷ graphile-worker tuned', vs('pg-batch', 'graphile'), 'none');
  if (httpPart) {
    row('durable submits/s ÷ Fastify POST → 202', times(httpPart.errand.submit.rps, httpPart.fastify.submit.rps), '≥ 0.5×');
    row('status polls/s ÷ Fastify GET', times(httpPart.errand.poll.rps, httpPart.fastify.poll.rps), '≥ 0.8×');
  }
  for (const [id, target] of [
    ['sqlite', '≤ 1 / ≤ 5 ms'],
    ['pg', '≤ 2 / ≤ 10 ms'],
  ]) {
    const lat = by[id]?.latency;
    if (lat)
      row(`idle pickup p50 / p99, Errand ${id === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`, `${fmtMs(lat.p50)} / ${fmtMs(lat.p99)} ms`, target);
  }
  if (by.pg) out.push(`- durable submits/s on PostgreSQL over HTTP (the enqueue phase): ${fmt(by.pg.rate.enqueue)}/s`);
  return out;
}
