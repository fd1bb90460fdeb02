#!/usr/bin/env node
/**
 * The scale suite (issue 13): how Errand behaves as the store fills up and as
 * concurrency grows, what one job costs the database, and how much memory a
 * node needs. In one run, on SQLite and on PostgreSQL:
 *
 *   fsync        the commit rate of this disk: a loop of fsynced one-row
 *                commits (SQLite WAL + synchronous=FULL; PostgreSQL with 1 and
 *                with 8 connections) — the ceiling every durable write shares.
 *   rows         the store filled to each --rows value (0, 100k, 1M by
 *                default; rows look like completed no-op requests with their
 *                three status events, bulk-inserted straight into the real
 *                schema after the CLI's migrations), then one server runs
 *                --jobs no-ops end to end (HTTP, 32 in flight) and reports the
 *                database cost per job; a second server on the same store
 *                reports start-up time, idle RSS, status-poll latency and rate,
 *                and list latency.
 *   concurrency  end-to-end jobs/s on an empty store against engine.concurrency
 *                (1, 4, 16, 64; 32 HTTP in flight) and HTTP in flight (8, 32,
 *                64; engine.concurrency 16).
 *   memory       RSS and heap with --sleepers handlers in flight at once
 *                (engine.concurrency 10000), each awaiting its own timer or
 *                ctx.signal, and the server CPU they cost while they sleep
 *                (lease heartbeats).
 *
 *   npm run build -w errand && npm run bench -- --suite scale [--rows 0,100000,1000000] [--only rows,sqlite]
 *
 * Database cost per job comes from bench/scale-probe.mjs (loaded into the
 * server with --import: statements and commits the driver was asked for),
 * /proc/<pid>/io of the server (bytes it wrote: on SQLite the WAL frames and
 * the checkpoints), and on PostgreSQL from pg_stat_database, pg_stat_user_tables,
 * pg_stat_wal and pg_current_wal_lsn() (the last two are cluster-wide: other
 * databases' writes on the same server count too).
 * Everything targets 127.0.0.1; every wait is bounded; every child is stopped;
 * temp dirs and schemas are removed.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  BENCH_DIR,
  CLI,
  RESULTS,
  ROOT,
  childEnv,
  cpuMs,
  createProcessGroup,
  delay,
  fmt,
  installSafetyNet,
  intFlag,
  loadAvg,
  machine,
  percentile,
  produce,
  request,
  rssMiB,
  utcNow,
  waitUntil,
} from './lib.mjs';

const require = createRequire(import.meta.url);
const PROBE = path.join(BENCH_DIR, 'scale-probe.mjs');
const PARTS = ['fsync', 'rows', 'concurrency', 'memory'];
const STORES = ['sqlite', 'pg'];
const INPUT = '{"customer":"c-1042","items":[1,2,3],"note":"bench"}';

const HELP = `Usage: node bench/run.mjs --suite scale [options]   (run \`npm run build -w errand\` first)

  --rows L        stored rows to measure at, ascending (default 0,100000,1000000)
  --jobs N        no-op jobs per end-to-end measurement (default 5000)
  --sleepers N    handlers in flight at once in the memory part (default 10000)
  --only L        parts (${PARTS.join(', ')}) and/or stores (${STORES.join(', ')}) to run, e.g. --only rows,sqlite (default: all)
  --url URL       PostgreSQL database (default $ERRAND_BENCH_PG_URL or postgres://postgres@127.0.0.1:5432/test);
                  the suite works in fresh schemas bench_scale_<pid>_* that it drops afterwards
  --no-record     print the results without appending them to bench/RESULTS.md
  --help          this text
`;

export async function main(argv) {
  const { values: flags } = parseArgs({
    args: argv,
    options: {
      rows: { type: 'string', default: '0,100000,1000000' },
      jobs: { type: 'string', default: '5000' },
      sleepers: { type: 'string', default: '10000' },
      only: { type: 'string', default: '' },
      url: { type: 'string', default: process.env.ERRAND_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
      'no-record': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (flags.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const rowsList = flags.rows.split(',').map((r) => intFlag('--rows', r.trim(), 0, 10_000_000));
  if (rowsList.some((r, i) => i > 0 && r <= rowsList[i - 1])) {
    process.stderr.write('bench: --rows must be ascending (the store is filled incrementally)\n');
    return 2;
  }
  const only = flags.only ? flags.only.split(',').map((s) => s.trim()) : [];
  const unknown = only.filter((s) => !PARTS.includes(s) && !STORES.includes(s));
  if (unknown.length > 0) {
    process.stderr.write(`bench: --only takes ${[...PARTS, ...STORES].join(', ')} (got ${unknown.join(', ')})\n`);
    return 2;
  }
  const parts = only.some((s) => PARTS.includes(s)) ? PARTS.filter((p) => only.includes(p)) : PARTS;
  const stores = only.some((s) => STORES.includes(s)) ? STORES.filter((s) => only.includes(s)) : STORES;
  const opts = {
    jobs: intFlag('--jobs', flags.jobs, 100, 200_000),
    sleepers: intFlag('--sleepers', flags.sleepers, 1, 10_000),
    rows: rowsList,
    url: flags.url,
  };
  if (!existsSync(CLI)) {
    process.stderr.write(`bench: ${path.relative(ROOT, CLI)} is missing; run \`npm run build -w errand\` first\n`);
    return 2;
  }

  const group = createProcessGroup();
  // Bounded: filling 1M rows takes about a minute per store, each end-to-end run at most perRunMs.
  const perRunMs = Math.max(90_000, opts.jobs * 30);
  const fillMs = (Math.max(...rowsList) / 1_000_000) * 600_000;
  installSafetyNet(group, stores.length * (fillMs + 20 * perRunMs) + 120_000);

  const pg = (await import('pg')).default;
  const ctx = { group, pg, opts, perRunMs, admin: undefined, schemas: [] };
  if (stores.includes('pg')) {
    ctx.admin = new pg.Client({ connectionString: opts.url });
    await ctx.admin.connect();
  }
  const startedAt = utcNow();
  const loadStart = loadAvg();
  const results = { fsync: {}, rows: {}, concurrency: {}, memory: {} };
  let failed;
  try {
    for (const store of stores) {
      if (parts.includes('fsync')) results.fsync[store] = await measureFsync(ctx, store);
      if (parts.includes('rows')) results.rows[store] = await measureRows(ctx, store);
      if (parts.includes('concurrency')) results.concurrency[store] = await measureConcurrency(ctx, store);
      if (parts.includes('memory')) results.memory[store] = await measureMemory(ctx, store);
    }
  } catch (err) {
    failed = err;
  } finally {
    await group.cleanup();
    if (ctx.admin) {
      for (const schema of ctx.schemas) await ctx.admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await ctx.admin.end();
    }
  }
  if (failed) process.stderr.write(`bench: ${failed.stack ?? failed}\n`);
  const pgVersion = ctx.admin ? await serverVersion(pg, opts.url) : undefined;
  let text = report({ results, opts, startedAt, loadStart, pgVersion });
  // What finished is still reported; the section says the run stopped early.
  if (failed) text += `\n**The run stopped early**: ${String(failed.message).split('\n')[0]}\n`;
  process.stdout.write(text);
  if (!flags['no-record']) {
    appendFileSync(RESULTS, text);
    process.stderr.write(`bench: results appended to ${path.relative(ROOT, RESULTS)}\n`);
  }
  return failed ? 1 : 0;
}

const log = (line) => process.stderr.write(`bench: ${line}\n`);

// ---------------------------------------------------------------------------
// Stores: a fresh SQLite file or PostgreSQL schema, migrated by the CLI, filled in bulk

/** A fresh, migrated, empty store of `kind`. */
function freshStore(ctx, kind, label) {
  if (kind === 'sqlite') {
    const dir = ctx.group.tempDir(`errand-scale-${label}-`);
    const file = path.join(dir, 'errand.db');
    const store = { kind, dir, url: `sqlite:${file}`, file, filled: 0, nextI: 0, base: Date.now() - 6 * 3_600_000 };
    migrate(store);
    return store;
  }
  const schema = `bench_scale_${process.pid}_${ctx.schemas.length}`;
  ctx.schemas.push(schema);
  const url = new URL(ctx.opts.url);
  url.searchParams.set('schema', schema);
  const store = {
    kind,
    dir: ctx.group.tempDir(`errand-scale-${label}-`),
    url: url.toString(),
    schema,
    filled: 0,
    nextI: 0,
    base: Date.now() - 6 * 3_600_000,
  };
  return ctx.admin
    .query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    .then(() => ctx.admin.query(`CREATE SCHEMA ${schema}`))
    .then(() => {
      migrate(store);
      return store;
    });
}

function migrate(store) {
  execFileSync(process.execPath, [CLI, 'migrate', '--store-url', store.url], {
    cwd: store.dir,
    env: childEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 60_000,
  });
}

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
/** Filled requests are created this far apart from six hours ago (10M rows fit before now; all inside retention.ttl). */
const STEP_MS = 2;
/** SQL (SQLite and PostgreSQL alike) for the `chars` lowest base-32 digits of the integer `expr`, in ULID's alphabet. */
const base32 = (expr, chars) =>
  Array.from(
    { length: chars },
    (_, k) => `substr('${ALPHABET}', CAST((((${expr}) >> ${5 * (chars - 1 - k)}) & 31) + 1 AS INTEGER), 1)`,
  ).join(' || ');

/**
 * The rows [from, to) of the fill as SQL: completed no-op requests created
 * STEP_MS apart from `store.base`, with ids
 * whose ULID time is their creation time (so they sort before any new
 * request), and their three status events.
 */
function fillStatements(store, from, to) {
  const series = store.kind === 'pg' ? `generate_series(${from}, ${to - 1}) AS s(i)` : 's';
  const withSeries =
    store.kind === 'pg' ? '' : `WITH RECURSIVE s(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM s WHERE i < ${to - 1}) `;
  const ts = `(${store.base} + i * ${STEP_MS})`;
  const id = `'req_' || ${base32(ts, 10)} || '0000' || ${base32('CAST(i AS BIGINT)', 12)}`;
  const requests = `INSERT INTO requests (id, tenant, operation, mode, status, attempt, max_attempts, run_at, task_timeout_ms, deadline,
      priority, created_at, started_at, completed_at, updated_at, last_seq, result, input)
    ${withSeries}SELECT ${id}, 'default', 'noop', 'async', 'completed', 1, 3, ${ts}, 300000, ${ts} + 3600000,
      0, ${ts}, ${ts} + 30, ${ts} + 50, ${ts} + 50, 3, 'null', '${INPUT}' FROM ${series}`;
  const status = `CASE k.seq WHEN 1 THEN '{"status":"pending","attempt":0}' WHEN 2 THEN '{"status":"processing","attempt":1}' ELSE '{"status":"completed","attempt":1}' END`;
  const events = `INSERT INTO request_events (request_id, seq, type, data, created_at)
    ${withSeries}SELECT ${id}, k.seq, 'status', ${status}, ${ts} + (k.seq - 1) * 25
    FROM ${series} CROSS JOIN (SELECT 1 AS seq UNION ALL SELECT 2 UNION ALL SELECT 3) AS k ORDER BY i, k.seq`;
  return [requests, events];
}

/** Fills the store (stopped) up to `rows` completed requests; returns the seconds it took. */
async function fillTo(ctx, store, rows) {
  if (rows <= store.filled) return 0;
  const started = Date.now();
  const CHUNK = 200_000;
  // Fill indexes [nextI, end): the jobs measured in between count as rows but use no index.
  const end = store.nextI + rows - store.filled;
  if (store.kind === 'sqlite') {
    const Database = require('better-sqlite3');
    const db = new Database(store.file);
    try {
      db.pragma('synchronous = OFF');
      for (let from = store.nextI; from < end; from += CHUNK) {
        const to = Math.min(end, from + CHUNK);
        db.transaction(() => {
          for (const sql of fillStatements(store, from, to)) db.exec(sql);
        })();
      }
      db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      db.close();
    }
  } else {
    const client = new ctx.pg.Client({ connectionString: ctx.opts.url });
    await client.connect();
    try {
      await client.query(`SET search_path TO ${store.schema}`);
      // No NOTIFY per inserted event (the trigger would queue millions): replica mode skips triggers for this session.
      await client.query(`SET session_replication_role = replica`);
      for (let from = store.nextI; from < end; from += CHUNK) {
        const to = Math.min(end, from + CHUNK);
        await client.query('BEGIN');
        for (const sql of fillStatements(store, from, to)) await client.query(sql);
        await client.query('COMMIT');
      }
      // What autovacuum would have done on a store that grew over time.
      await client.query('VACUUM (ANALYZE) requests, request_events');
    } finally {
      await client.end();
    }
  }
  store.filled = rows;
  store.nextI = end;
  return (Date.now() - started) / 1000;
}

// ---------------------------------------------------------------------------
// Servers

let serverCount = 0;

/** Starts `errand serve` on `store` with the probe loaded; resolves once it listens. */
async function startServer(ctx, store, { concurrency = 16, poolSize } = {}) {
  serverCount += 1;
  const dir = store.dir;
  writeFileSync(path.join(dir, 'noop.mjs'), 'export default { run: () => null };\n');
  writeFileSync(path.join(dir, 'sleep.mjs'), SLEEP_OPERATION);
  const config = {
    server: { host: '127.0.0.1', port: 0, shutdown_grace: 5 },
    store: { url: store.url, ...(poolSize ? { pool_size: poolSize } : {}) },
    logging: { level: 'warn' },
    engine: { concurrency },
    operations: { noop: { module: './noop.mjs' }, sleep: { module: './sleep.mjs' } },
  };
  const configFile = path.join(dir, `errand-${serverCount}.yaml`);
  writeFileSync(configFile, JSON.stringify(config));
  const probeOut = path.join(dir, `probe-${serverCount}.json`);
  rmSync(path.join(dir, 'gate'), { force: true });
  const started = Date.now();
  const child = await ctx.group.startChild(
    `errand (${store.kind} #${serverCount})`,
    ['--import', PROBE, CLI, 'serve', '--config', configFile],
    {
      cwd: dir,
      env: { BENCH_SCALE_PROBE_OUT: probeOut },
      timeoutMs: 120_000,
    },
  );
  const url = new URL(child.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  return { child, pid: child.proc.pid, url, agent, probeOut, startMs: Date.now() - started };
}

/** Stops the server (SIGTERM) and returns what the probe counted over its life. */
async function stopServer(ctx, server) {
  server.agent.destroy();
  await ctx.group.stopChild(server.child);
  try {
    return JSON.parse(readFileSync(server.probeOut, 'utf8'));
  } catch {
    return undefined;
  }
}

const SLEEP_OPERATION = `import { existsSync } from 'node:fs';
// Every handler sleeps on its own timer (input.ms) and listens to ctx.signal; the harness ends them all by creating ./gate.
const gateFile = new URL('./gate', import.meta.url);
const gate = new Promise((resolve) => {
  const poll = setInterval(() => {
    if (existsSync(gateFile)) {
      clearInterval(poll);
      resolve();
    }
  }, 100);
  poll.unref();
});
export default {
  run: (input, ctx) =>
    new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        ctx.signal.removeEventListener('abort', done);
        resolve(null);
      };
      const timer = setTimeout(done, input.ms ?? 600000);
      ctx.signal.addEventListener('abort', done, { once: true });
      gate.then(done);
    }),
};
`;

function call(server, { method = 'GET', path: p, body }) {
  return request(server.agent, {
    hostname: server.url.hostname,
    port: server.url.port,
    method,
    path: p,
    headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    body,
    timeoutMs: 30_000,
  });
}

async function ready(server) {
  const res = await call(server, { path: '/ready' });
  return res.status === 200 ? JSON.parse(res.body) : undefined;
}

/** Submits `jobs` requests of `operation` over HTTP with `inflight` at once; resolves when none is pending or processing. */
async function endToEnd(ctx, server, { jobs, inflight, operation = 'noop', body = INPUT, drain = true, allowRefused = false }) {
  const started = Date.now();
  const refused = {};
  await produce(jobs, inflight, async () => {
    const res = await call(server, { method: 'POST', path: `/v1/operations/${operation}?async=true`, body });
    if (res.status !== 202) {
      const key = `${res.status} ${/"type":"([a-z_]+)"/.exec(res.body)?.[1] ?? ''}`.trim();
      refused[key] = (refused[key] ?? 0) + 1;
    }
  });
  const submitted = Date.now();
  const refusedCount = Object.values(refused).reduce((a, b) => a + b, 0);
  if (refusedCount > 0 && !allowRefused)
    throw new Error(`${refusedCount} of ${jobs} submissions were not accepted: ${JSON.stringify(refused)}`);
  if (drain) {
    await waitUntil(
      async () => {
        const r = await ready(server);
        return r !== undefined && r.pending === 0 && r.processing === 0;
      },
      ctx.perRunMs,
      `${jobs} jobs to finish`,
    );
  }
  const finished = Date.now();
  return {
    submitMs: submitted - started,
    totalMs: finished - started,
    rate: (jobs / (finished - started)) * 1000,
    accepted: jobs - refusedCount,
    refused,
  };
}

// ---------------------------------------------------------------------------
// Measurements of a running server

/** `/proc/<pid>/io`: bytes passed to write() (wchar), write calls (syscw), bytes sent to storage (write_bytes). */
function procIo(pid) {
  const text = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { wchar: field('wchar'), syscw: field('syscw'), writeBytes: field('write_bytes') };
}

/** PostgreSQL statistics of this database and the store's schema (and the cluster-wide WAL). */
async function pgStats(ctx, schema) {
  await ctx.admin.query('SELECT pg_stat_clear_snapshot()');
  const db = await ctx.admin.query('SELECT xact_commit::bigint AS commits FROM pg_stat_database WHERE datname = current_database()');
  const tables = await ctx.admin.query(
    `SELECT coalesce(sum(n_tup_ins), 0)::bigint AS ins, coalesce(sum(n_tup_upd), 0)::bigint AS upd, coalesce(sum(n_tup_del), 0)::bigint AS del,
            coalesce(sum(n_tup_hot_upd), 0)::bigint AS hot
       FROM pg_stat_user_tables WHERE schemaname = $1`,
    [schema],
  );
  const wal = await ctx.admin.query(
    `SELECT pg_current_wal_lsn() AS lsn, wal_records::bigint AS records, wal_bytes::bigint AS bytes, wal_sync::bigint AS syncs FROM pg_stat_wal`,
  );
  return { commits: Number(db.rows[0].commits), ...mapNumbers(tables.rows[0]), wal: wal.rows[0] };
}

const mapNumbers = (row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v)]));

async function pgDelta(ctx, before, after) {
  const lsnBytes = Number((await ctx.admin.query('SELECT pg_wal_lsn_diff($1, $2) AS d', [after.wal.lsn, before.wal.lsn])).rows[0].d);
  return {
    commits: after.commits - before.commits,
    ins: after.ins - before.ins,
    upd: after.upd - before.upd,
    del: after.del - before.del,
    hot: after.hot - before.hot,
    walBytes: lsnBytes,
    walRecords: Number(after.wal.records) - Number(before.wal.records),
    walSyncs: Number(after.wal.syncs) - Number(before.wal.syncs),
  };
}

/** CPU ms of every client backend of this database (the server's pool), by pid. */
async function pgBackendCpu(ctx) {
  const { rows } = await ctx.admin.query(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
  );
  const out = new Map();
  for (const { pid } of rows) {
    try {
      out.set(pid, cpuMs(pid));
    } catch {
      /* gone */
    }
  }
  return out;
}

const cpuDelta = (before, after) => [...after].reduce((sum, [pid, ms]) => sum + ms - (before.get(pid) ?? 0), 0);

/** Sequential GETs of `paths` (round robin), one at a time: latency percentiles in ms. */
async function latency(server, paths, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const res = await call(server, { path: paths[i % paths.length] });
    if (res.status !== 200) throw new Error(`GET ${paths[i % paths.length]} answered ${res.status}`);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

/** `connections` loops of GETs over `paths` for `seconds`: 200s per second. */
async function rate(server, paths, connections, seconds) {
  const until = Date.now() + seconds * 1000;
  let ok = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      for (let round = 0; round < 1_000_000 && Date.now() < until; round++) {
        const res = await call(server, { path: paths[next++ % paths.length] });
        if (res.status === 200) ok += 1;
      }
    }),
  );
  return ok / seconds;
}

// ---------------------------------------------------------------------------
// Parts

async function measureFsync(ctx, kind) {
  const seconds = 3;
  if (kind === 'sqlite') {
    const Database = require('better-sqlite3');
    const dir = ctx.group.tempDir('errand-scale-fsync-');
    const db = new Database(path.join(dir, 'fsync.db'));
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec('CREATE TABLE t (x INTEGER)');
      const insert = db.prepare('INSERT INTO t (x) VALUES (?)');
      const until = Date.now() + seconds * 1000;
      let n = 0;
      while (Date.now() < until && n < 10_000_000) insert.run(n++);
      log(`fsync sqlite: ${fmt(n / seconds)} commits/s`);
      return { one: n / seconds };
    } finally {
      db.close();
    }
  }
  const schema = `bench_scale_${process.pid}_fsync`;
  ctx.schemas.push(schema);
  await ctx.admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await ctx.admin.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.t (x INTEGER)`);
  const loop = async (connections) => {
    const clients = await Promise.all(
      Array.from({ length: connections }, async () => {
        const c = new ctx.pg.Client({ connectionString: ctx.opts.url });
        await c.connect();
        return c;
      }),
    );
    try {
      const until = Date.now() + seconds * 1000;
      let n = 0;
      await Promise.all(
        clients.map(async (c) => {
          while (Date.now() < until && n < 10_000_000) {
            await c.query(`INSERT INTO ${schema}.t (x) VALUES ($1)`, [n]);
            n += 1;
          }
        }),
      );
      return n / seconds;
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  };
  const one = await loop(1);
  const eight = await loop(8);
  log(`fsync pg: ${fmt(one)} commits/s on 1 connection, ${fmt(eight)} on 8`);
  return { one, eight };
}

/** One end-to-end run with its database cost; the server is started and stopped here. */
async function costRun(ctx, store, { jobs, inflight = 32, concurrency = 16 }) {
  const pgBefore = store.kind === 'pg' ? await pgStats(ctx, store.schema) : undefined;
  const server = await startServer(ctx, store, { concurrency });
  let run;
  let probe;
  let io;
  let serverCpu;
  let backendCpu;
  let rss;
  try {
    const cpu0 = cpuMs(server.pid);
    const io0 = procIo(server.pid);
    const backends0 = store.kind === 'pg' ? await pgBackendCpu(ctx) : undefined;
    run = await endToEnd(ctx, server, { jobs, inflight });
    const io1 = procIo(server.pid);
    serverCpu = cpuMs(server.pid) - cpu0;
    if (backends0) backendCpu = cpuDelta(backends0, await pgBackendCpu(ctx));
    io = { wchar: io1.wchar - io0.wchar, syscw: io1.syscw - io0.syscw, writeBytes: io1.writeBytes - io0.writeBytes };
    rss = rssMiB(server.pid);
  } finally {
    probe = await stopServer(ctx, server);
  }
  store.filled += jobs;
  let pg;
  if (pgBefore) {
    await delay(500); // the pool's backends have exited: their statistics are flushed
    pg = await pgDelta(ctx, pgBefore, await pgStats(ctx, store.schema));
  }
  return { ...run, jobs, inflight, concurrency, serverCpu, backendCpu, io, rss, probe, pg };
}

async function measureRows(ctx, kind) {
  const store = await freshStore(ctx, kind, 'rows');
  const out = [];
  for (const rows of ctx.opts.rows) {
    // Earlier measurements added their jobs: fill up to `rows` completed requests (the jobs count as rows).
    const fillSeconds = await fillTo(ctx, store, rows);
    const atRows = store.filled;
    if (fillSeconds > 0) log(`${kind}: filled to ${fmt(atRows)} rows in ${fmt(fillSeconds, 1)} s`);
    const cost = await costRun(ctx, store, { jobs: ctx.opts.jobs });
    log(`${kind} at ${fmt(atRows)} rows: ${fmt(cost.rate)} jobs/s end to end`);
    const server = await startServer(ctx, store);
    let reads;
    try {
      const idleRss = rssMiB(server.pid);
      const list = JSON.parse((await call(server, { path: '/v1/requests?limit=100' })).body).data.map((r) => r.request_id);
      // Half the newest requests, half spread over the filled ones.
      const oldIds = Array.from({ length: 50 }, (_, k) => oldId(store, Math.floor((k * store.nextI) / 50)));
      const ids = [...list.slice(0, 50), ...(store.nextI > 0 ? oldIds : list.slice(50))];
      const paths = ids.map((id) => `/v1/requests/${id}`);
      await latency(server, paths, 200); // warm-up
      const poll = await latency(server, paths, 2000);
      const pollRate = await rate(server, paths, 32, 3);
      const listLatency = await latency(server, ['/v1/requests?limit=20', '/v1/requests?limit=20&status=completed'], 200);
      const readyLatency = await latency(server, ['/ready'], 200);
      reads = { startMs: server.startMs, idleRss, poll, pollRate, listLatency, readyLatency, rssAfter: rssMiB(server.pid) };
    } finally {
      await stopServer(ctx, server);
    }
    log(
      `${kind} at ${fmt(atRows)} rows: poll p50 ${fmt(reads.poll.p50, 2)} ms, ${fmt(reads.pollRate)} polls/s, idle RSS ${fmt(reads.idleRss)} MiB`,
    );
    out.push({ rows: atRows, fillSeconds, cost, reads });
  }
  return out;
}

/** The id of filled row `i` (the same expression as the fill, in JS). */
function oldId(store, i) {
  const enc = (n, chars) => {
    let s = '';
    let v = BigInt(n);
    for (let k = 0; k < chars; k++) {
      s = ALPHABET[Number(v & 31n)] + s;
      v >>= 5n;
    }
    return s;
  };
  return `req_${enc(store.base + i * STEP_MS, 10)}0000${enc(i, 12)}`;
}

async function measureConcurrency(ctx, kind) {
  const settings = [
    { concurrency: 1, inflight: 32 },
    { concurrency: 4, inflight: 32 },
    { concurrency: 16, inflight: 32 },
    { concurrency: 64, inflight: 32 },
    { concurrency: 16, inflight: 8 },
    { concurrency: 16, inflight: 64 },
  ];
  const out = [];
  for (const s of settings) {
    const store = await freshStore(ctx, kind, `c${s.concurrency}-h${s.inflight}`);
    const r = await costRun(ctx, store, { jobs: ctx.opts.jobs, ...s });
    log(`${kind} engine.concurrency ${s.concurrency}, ${s.inflight} in flight: ${fmt(r.rate)} jobs/s`);
    out.push(r);
  }
  return out;
}

async function measureMemory(ctx, kind) {
  const n = ctx.opts.sleepers;
  const store = await freshStore(ctx, kind, 'memory');
  const server = await startServer(ctx, store, { concurrency: 10_000 });
  try {
    const idleRss = rssMiB(server.pid);
    const heap0 = await heapUsedMiB(server);
    // Refusals are counted, not fatal: whether a node accepts work while 10k attempts hold its pool is part of the answer.
    const submit = await endToEnd(ctx, server, {
      jobs: n,
      inflight: 64,
      operation: 'sleep',
      body: '{"ms":600000}',
      drain: false,
      allowRefused: true,
    });
    const running = submit.accepted;
    await waitUntil(
      async () => (await ready(server))?.running_here === running,
      ctx.perRunMs,
      `${running} sleeping handlers to be running`,
      250,
    );
    // One heartbeat interval (10 s) with every handler asleep: RSS and the CPU the attempts cost while idle.
    const cpu0 = cpuMs(server.pid);
    const backends0 = kind === 'pg' ? await pgBackendCpu(ctx) : undefined;
    let peak = 0;
    for (let i = 0; i < 40; i++) {
      peak = Math.max(peak, rssMiB(server.pid));
      await delay(250);
    }
    const sleepingCpu = cpuMs(server.pid) - cpu0;
    const sleepingBackendCpu = backends0 ? cpuDelta(backends0, await pgBackendCpu(ctx)) : undefined;
    const heap = await heapUsedMiB(server);
    const started = Date.now();
    writeFileSync(path.join(store.dir, 'gate'), '');
    await waitUntil(
      async () => {
        const r = await ready(server);
        return r !== undefined && r.pending === 0 && r.processing === 0;
      },
      ctx.perRunMs,
      `${n} handlers to finish`,
      250,
    );
    const drainMs = Date.now() - started;
    await delay(1000);
    const result = {
      n: running,
      refused: submit.refused,
      idleRss,
      heap0,
      submitMs: submit.submitMs,
      peak,
      heap,
      sleepingCpu,
      sleepingBackendCpu,
      drainMs,
      after: rssMiB(server.pid),
    };
    log(
      `${kind}: ${running} sleeping handlers (${n - running} refused): RSS ${fmt(peak)} MiB (idle ${fmt(idleRss)}), ${fmt(sleepingCpu)} ms CPU in 10 s`,
    );
    return result;
  } finally {
    await stopServer(ctx, server);
  }
}

/** `process.memoryUsage().heapUsed` of the server, from its Prometheus default metrics. */
async function heapUsedMiB(server) {
  const res = await call(server, { path: '/metrics' });
  const v = /^errand_nodejs_heap_size_used_bytes (\S+)/m.exec(res.body)?.[1];
  return v === undefined ? NaN : Number(v) / 1024 ** 2;
}

async function serverVersion(pg, url) {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    return (await client.query('SHOW server_version')).rows[0]?.server_version;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------
// Report

const per = (n, jobs, digits = 2) => (Number.isFinite(n) ? fmt(n / jobs, digits) : 'n/a');
const STORE_NAME = { sqlite: 'SQLite', pg: 'PostgreSQL' };

function costLine(kind, r) {
  const j = r.jobs;
  const cpu = `${per(r.serverCpu, j)}${r.backendCpu === undefined ? '' : ` + ${per(r.backendCpu, j)} (PG backends)`}`;
  if (kind === 'sqlite') {
    const p = r.probe?.sqlite ?? {};
    return `| ${STORE_NAME[kind]} | ${fmt(r.rate)} | ${per(p.statements, j)} | ${per(p.commits, j, 3)} | ${per(p.changes, j)} | ${per(r.io.wchar, j, 0)} B (${per(r.io.syscw, j, 1)} writes) | ${per(r.io.writeBytes, j, 0)} B | ${cpu} |`;
  }
  const p = r.probe?.pg ?? {};
  const g = r.pg ?? {};
  const rowsWritten = g.ins + g.upd + g.del;
  return `| ${STORE_NAME[kind]} | ${fmt(r.rate)} | ${per(p.statements, j)} (${per(p.inTransaction, j)} in ${per(p.transactions, j)} transactions, ${per(p.autocommitWrites, j)} autocommit writes, ${per(p.autocommitReads, j)} reads) | ${per(g.commits, j, 2)} (WAL flushes ${per(g.walSyncs, j, 2)}) | ${per(rowsWritten, j)} (ins ${per(g.ins, j)}, upd ${per(g.upd, j)} of which HOT ${per(g.hot, j)}, del ${per(g.del, j)}) | ${per(g.walBytes, j, 0)} B (${per(g.walRecords, j, 1)} records) | – | ${cpu} |`;
}

function report({ results, opts, startedAt, loadStart, pgVersion }) {
  const m = machine();
  const lines = [
    '',
    `## ${startedAt} — scale and memory (suite scale)`,
    '',
    `- Machine: ${m.nproc} × ${m.cpu}, ${m.memGiB} GiB, ${m.os}, Node ${m.node}; commit ${m.commit}; temp dir on ${m.tmpFs}; PostgreSQL ${pgVersion ?? '(not run)'} on 127.0.0.1`,
    `- Load average at start ${loadStart}, at end ${loadAvg()}; finished ${utcNow()}. Server, load generator and PostgreSQL share the CPUs.`,
    `- End to end: ${fmt(opts.jobs)} no-op jobs submitted over HTTP (\`POST /v1/operations/noop?async=true\`), first submit → \`GET /ready\` shows nothing pending or processing. Defaults otherwise (\`store.synchronous: full\`, PostgreSQL pool 10).`,
    '',
  ];
  const fs = results.fsync;
  if (fs.sqlite || fs.pg) {
    lines.push('### Commit rate of this disk (one-row fsynced commits in a loop, 3 s)', '');
    if (fs.sqlite) lines.push(`- SQLite (WAL, synchronous=FULL), 1 connection: **${fmt(fs.sqlite.one)} commits/s**`);
    if (fs.pg)
      lines.push(
        `- PostgreSQL (synchronous_commit on), 1 connection: **${fmt(fs.pg.one)} commits/s**; 8 connections: **${fmt(fs.pg.eight)} commits/s** (group commit)`,
      );
    lines.push('');
  }
  for (const kind of STORES) {
    const rows = results.rows[kind];
    if (!rows) continue;
    lines.push(`### ${STORE_NAME[kind]}: against stored rows`, '');
    lines.push(
      '| stored rows | fill | jobs/s end to end | vs first | server start | idle RSS | poll p50 / p99 (1 conn) | polls/s (32 conns) | vs first | list p50 / p99 | /ready p50 | RSS after jobs |',
    );
    lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const first = rows[0];
    for (const r of rows) {
      lines.push(
        `| ${fmt(r.rows)} | ${r.fillSeconds ? `${fmt(r.fillSeconds, 1)} s` : '–'} | ${fmt(r.cost.rate)} | ${fmt((r.cost.rate / first.cost.rate) * 100, 1)}% | ${fmt(r.reads.startMs)} ms | ${fmt(r.reads.idleRss)} MiB | ${fmt(r.reads.poll.p50, 2)} / ${fmt(r.reads.poll.p99, 2)} ms | ${fmt(r.reads.pollRate)} | ${fmt((r.reads.pollRate / first.reads.pollRate) * 100, 1)}% | ${fmt(r.reads.listLatency.p50, 2)} / ${fmt(r.reads.listLatency.p99, 2)} ms | ${fmt(r.reads.readyLatency.p50, 2)} ms | ${fmt(r.cost.rss)} MiB |`,
      );
    }
    lines.push('');
  }
  const costRows = STORES.flatMap((kind) => (results.rows[kind] ? results.rows[kind].map((r) => [kind, r]) : []));
  if (costRows.length > 0) {
    lines.push("### Database cost per job (end-to-end runs above; per job = total over the server's life ÷ jobs)", '');
    lines.push(
      '| store | stored rows | jobs/s | statements | commits | rows written | bytes written (WAL…) | to storage | CPU ms per job (server + DB) |',
    );
    lines.push('|---|---:|---:|---|---|---|---|---|---|');
    for (const [kind, r] of costRows) {
      const line = costLine(kind, r.cost);
      lines.push(line.replace(/^\| [^|]+ \|/, `| ${STORE_NAME[kind]} | ${fmt(r.rows)} |`));
    }
    lines.push(
      '',
      "SQLite: statements, COMMITs and rows changed are counted in the server by bench/scale-probe.mjs; bytes are `wchar` / `syscw` / `write_bytes` of the server in /proc (WAL frames of 4 KiB pages + 24 B headers, checkpoint copies into the database file, a few log lines). PostgreSQL: statements by the probe; commits from `pg_stat_database.xact_commit` (read-only ones included), WAL flushes (`pg_stat_wal.wal_sync`) and WAL bytes (`pg_current_wal_lsn()`) are cluster-wide and include other databases' work; rows from `pg_stat_user_tables` of the schema. The counts include the server's start-up and its `/ready` polls (every 100 ms).",
      '',
    );
  }
  for (const kind of STORES) {
    const c = results.concurrency[kind];
    if (!c) continue;
    lines.push(`### ${STORE_NAME[kind]}: against concurrency (empty store per row)`, '');
    lines.push(
      '| engine.concurrency | HTTP in flight | jobs/s end to end | submit phase | server CPU ms/job | DB backends CPU ms/job | peak RSS |',
    );
    lines.push('|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of c) {
      lines.push(
        `| ${r.concurrency} | ${r.inflight} | ${fmt(r.rate)} | ${fmt(r.submitMs)} ms | ${per(r.serverCpu, r.jobs)} | ${r.backendCpu === undefined ? '–' : per(r.backendCpu, r.jobs)} | ${fmt(r.rss)} MiB |`,
      );
    }
    lines.push('');
  }
  const mem = STORES.filter((k) => results.memory[k]);
  if (mem.length > 0) {
    lines.push('### Memory with handlers in flight (engine.concurrency 10000; each handler awaits its own timer or ctx.signal)', '');
    lines.push(
      '| store | handlers sleeping (submissions refused) | idle RSS / heap | RSS peak while sleeping | heap while sleeping | per handler | server CPU while sleeping (10 s) | DB backends CPU (10 s) | submit | all finish after the gate | RSS after |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const kind of mem) {
      const r = results.memory[kind];
      lines.push(
        `| ${STORE_NAME[kind]} | ${fmt(r.n)} (${
          Object.keys(r.refused).length === 0
            ? 'none'
            : Object.entries(r.refused)
                .map(([k, v]) => `${k} ×${v}`)
                .join(', ')
        }) | ${fmt(r.idleRss)} / ${fmt(r.heap0)} MiB | **${fmt(r.peak)} MiB** | ${fmt(r.heap)} MiB | ${fmt(((r.peak - r.idleRss) * 1024) / r.n, 1)} KiB RSS, ${fmt(((r.heap - r.heap0) * 1024) / r.n, 1)} KiB heap | ${fmt(r.sleepingCpu)} ms | ${r.sleepingBackendCpu === undefined ? '–' : `${fmt(r.sleepingBackendCpu)} ms`} | ${fmt(r.submitMs)} ms | ${fmt(r.drainMs)} ms | ${fmt(r.after)} MiB |`,
      );
    }
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}
