/**
 * The systems the comparison suites push no-op jobs through (bench/peers.mjs,
 * bench/pg.mjs), each behind one handle so every suite measures them the same
 * way:
 *
 *   - `startErrand`: one or more `errand serve` children (the built CLI) on a
 *     SQLite file or a PostgreSQL schema; jobs go over HTTP, one per
 *     `POST /v1/operations/noop?async=true` or many per `POST /v1/batches`;
 *   - `startBullmq`, `startGraphile`, `startPgBoss`: the queue in this process
 *     (installed from bench/peers/package.json), producer and workers alike.
 *
 * A handle has `label`, `enqueue(count, { inFlight, bulk })` (resolves when
 * every job is accepted: a 202 for Errand, the library's promise for the
 * queues; `bulk` = jobs per call: a batch, `addBulk`, `addJobs`, `insert`),
 * `waitDone(count, timeoutMs)` (→ `{ done, completed }`, never throws on
 * timeout: a capped system reports what it did), `completionTimes()` (→ first
 * and last completion, epoch ms), `probe()` (one idle pickup sample: ms from
 * just before the enqueue call to the handler's first line, both read with
 * `preciseNow()` — for Errand in two processes on one clock — and resolves once
 * the job is complete: Errand's status says `completed`, BullMQ's `completed`,
 * graphile-worker's `job:complete`; for pg-boss, once its handler returned),
 * and `stop()`. Errand handles also expose the child
 * processes and `commits()` (`errand_store_commits_total` from `/metrics`).
 *
 * Every wait is bounded; the children belong to the caller's process group.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { BENCH_DIR, delay, importPeer, produce, request, spawnErrand, waitUntil, writeErrandConfig } from './lib.mjs';

/** The job's input: about 200 bytes of JSON, the same for every system. */
export const NOOP_INPUT = {
  customer: 'c-1042',
  order: 'ord-2026-000123',
  items: [
    { sku: 'A-100', qty: 2 },
    { sku: 'B-220', qty: 1 },
  ],
  note: 'bench: a no-op job with a small realistic input',
  tags: ['bench', 'peers'],
};

/** Epoch milliseconds with sub-millisecond precision (every process on this machine reads the same clock). */
export const preciseNow = () => performance.timeOrigin + performance.now();

const NOOP_MODULE = 'export default { run: () => null };\n';
const PROBE_MODULE = 'export default { run: () => ({ t: performance.timeOrigin + performance.now() }) };\n';

/** A queue's `enqueue`: `addMany(n)` per chunk of `bulk` jobs (a few chunks in flight), else `addOne()` per job, `inFlight` at once. */
function enqueueWith(addOne, addMany) {
  return async (count, { inFlight, bulk }) => {
    if (bulk) {
      const sizes = chunks(count, bulk);
      await produce(sizes.length, BULK_IN_FLIGHT, (i) => addMany(sizes[i]));
    } else await produce(count, inFlight, () => addOne());
  };
}

/** Splits `count` jobs into chunks of `size` (the last may be smaller). */
function chunks(count, size) {
  const out = [];
  for (let done = 0; done < count; done += size) out.push(Math.min(size, count - done));
  return out;
}

/** Bulk calls in flight for the bulk paths (each carries `bulk` jobs). */
const BULK_IN_FLIGHT = 4;

// ---------------------------------------------------------------------------
// Errand

/**
 * Errand: `nodes` children on `store` (`{ url: 'sqlite:./errand.db' }` or a
 * PostgreSQL URL with `?schema=`), engine defaults, `logging.level: warn`, in
 * a fresh temp dir (or `dir`, to start again on the same SQLite file). The
 * SQLite file is locked while a server runs: `completionTimes()` and
 * `sqliteRowCounts()` read it after `stop()`.
 */
export async function startErrand(group, { label, store, nodes = 1, dir = group.tempDir('errand-bench-peers-') }) {
  writeErrandConfig(dir, { store, operations: { noop: NOOP_MODULE, probe: PROBE_MODULE } });
  const servers = [];
  for (let i = 0; i < nodes; i++) servers.push(await spawnErrand(group, { label: nodes > 1 ? `${label} #${i + 1}` : label, dir }));
  const targets = servers.map((s) => new URL(s.url));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const call = (i, method, reqPath, body) => {
    const target = targets[i % targets.length];
    const text = body === undefined ? undefined : JSON.stringify(body);
    return request(agent, {
      hostname: target.hostname,
      port: target.port,
      method,
      path: reqPath,
      headers: text === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      body: text,
      timeoutMs: 30_000,
    });
  };
  const accepted = (res, what) => {
    if (res.status !== 202) throw new Error(`${label}: ${what} answered ${res.status}: ${res.body.slice(0, 300)}`);
  };
  let submitted = 0;

  async function ready() {
    const res = await call(0, 'GET', '/ready');
    const body = JSON.parse(res.body);
    return { pending: Number(body.pending), processing: Number(body.processing) };
  }

  return {
    label,
    servers,
    dir,
    async enqueue(count, { inFlight, bulk }) {
      if (bulk) {
        const sizes = chunks(count, bulk);
        await produce(sizes.length, BULK_IN_FLIGHT, async (i) => {
          const items = Array.from({ length: sizes[i] }, () => NOOP_INPUT);
          accepted(await call(i, 'POST', '/v1/batches', { operation: 'noop', items, concurrency: items.length }), 'POST /v1/batches');
        });
      } else {
        await produce(count, inFlight, async (i) =>
          accepted(await call(i, 'POST', '/v1/operations/noop?async=true', NOOP_INPUT), 'submit'),
        );
      }
      submitted += count;
    },
    async waitDone(count, timeoutMs) {
      let left = Infinity;
      try {
        await waitUntil(
          async () => {
            const r = await ready();
            left = r.pending + r.processing;
            return left === 0;
          },
          timeoutMs,
          `${label} to finish`,
          100,
        );
      } catch {
        return { done: false, completed: Math.max(0, count - left) };
      }
      return { done: true, completed: count };
    },
    /** First and last `completed_at` of the no-op jobs, and the first `created_at`, from the store. */
    async completionTimes() {
      return storeTimes(store, dir);
    },
    async probe() {
      const t0 = preciseNow();
      const res = await call(0, 'POST', '/v1/operations/probe?async=true', NOOP_INPUT);
      accepted(res, 'probe submit');
      const id = JSON.parse(res.body).request_id;
      for (let round = 0; round < 20; round++) {
        const got = await call(0, 'GET', `/v1/requests/${id}?wait=10`, undefined);
        if (got.status !== 200) continue;
        const body = JSON.parse(got.body);
        if (body.status === 'completed') return body.result.t - t0;
        if (body.status === 'failed' || body.status === 'cancelled') throw new Error(`${label}: probe ${id} ${body.status}`);
      }
      throw new Error(`${label}: probe ${id} did not complete within 20 long-polls`);
    },
    /** `errand_store_commits_total`, summed over the nodes. */
    async commits() {
      let total = 0;
      for (let i = 0; i < servers.length; i++) {
        const res = await call(i, 'GET', '/metrics');
        const value = /^errand_store_commits_total (\d+(?:\.\d+)?)/m.exec(res.body)?.[1];
        if (value === undefined) return NaN;
        total += Number(value);
      }
      return total;
    },
    get submitted() {
      return submitted;
    },
    async stop() {
      agent.destroy();
      for (const server of servers) await group.stopChild(server);
    },
  };
}

/** Completion times of the no-op jobs from Errand's store: read-only SQLite, or PostgreSQL. */
async function storeTimes(store, dir) {
  const sql = `SELECT count(*) AS n, min(created_at) AS c0, min(completed_at) AS f0, max(completed_at) AS f1
                 FROM requests WHERE operation = 'noop' AND status = 'completed'`;
  let row;
  if (store.url.startsWith('sqlite:')) {
    const Database = createRequire(import.meta.url)('better-sqlite3');
    const db = new Database(path.join(dir, store.url.slice('sqlite:'.length)), { readonly: true, fileMustExist: true });
    try {
      row = db.prepare(sql).get();
    } finally {
      db.close();
    }
  } else {
    row = await withPg(store.url, async (client) => (await client.query(sql)).rows[0]);
  }
  return { count: Number(row.n), firstCreated: Number(row.c0), first: Number(row.f0), last: Number(row.f1) };
}

/** Rows per table of an Errand SQLite file (read-only), for "rows added". */
export function sqliteRowCounts(file) {
  const Database = createRequire(import.meta.url)('better-sqlite3');
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all();
    return Object.fromEntries(tables.map(({ name }) => [name, db.prepare(`SELECT count(*) AS n FROM "${name}"`).get().n]));
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------
// PostgreSQL: schemas and statistics

/** Runs `fn(client)` on a fresh connection to `url` (a `?schema=` sets the search_path). */
export async function withPg(url, fn) {
  const pg = (await import('pg')).default;
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema');
  parsed.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: parsed.toString() });
  await client.connect();
  try {
    if (schema) await client.query(`SET search_path TO "${schema}"`);
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Fresh schemas in one database, dropped by `dropAll()`: `fresh(name)` →
 * `{ schema, url }` (the URL with `?schema=`, as Errand reads it).
 */
export async function pgSchemas(url) {
  const pg = (await import('pg')).default;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const made = [];
  return {
    admin,
    async fresh(name) {
      const schema = `bench_${name.replace(/[^a-z0-9]/g, '_')}_${process.pid}`;
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.query(`CREATE SCHEMA ${schema}`);
      made.push(schema);
      const withSchema = new URL(url);
      withSchema.searchParams.set('schema', schema);
      return { schema, url: withSchema.toString() };
    },
    async version() {
      return (await admin.query('SHOW server_version')).rows[0]?.server_version ?? 'unknown';
    },
    /**
     * Commits of this database (pg_stat_database.xact_commit: every transaction,
     * reads included), rows inserted/updated/deleted in `schema`
     * (pg_stat_user_tables), and the WAL position (cluster-wide). Statistics
     * reach these views when a backend commits (at most once a second) or
     * exits: read them after the system's connections are closed.
     */
    async stats(schema) {
      await admin.query('SELECT pg_stat_clear_snapshot()');
      const { rows } = await admin.query(
        `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()) AS commits,
                coalesce(sum(n_tup_ins), 0) AS ins, coalesce(sum(n_tup_upd), 0) AS upd, coalesce(sum(n_tup_del), 0) AS del,
                pg_current_wal_lsn()::text AS lsn
           FROM pg_stat_user_tables WHERE schemaname = $1`,
        [schema],
      );
      const r = rows[0];
      return { commits: Number(r.commits), ins: Number(r.ins), upd: Number(r.upd), del: Number(r.del), lsn: r.lsn };
    },
    /** Bytes of WAL between two positions. */
    async walBytes(fromLsn, toLsn) {
      return Number((await admin.query('SELECT pg_wal_lsn_diff($2, $1) AS n', [fromLsn, toLsn])).rows[0].n);
    },
    async dropAll() {
      for (const schema of made) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await admin.end().catch(() => {});
    },
  };
}

// ---------------------------------------------------------------------------
// The queues, in this process

/**
 * What the in-process queues share: a completion counter with first/last
 * times (taken when the handler returns), and the probe's rendezvous.
 */
function tally() {
  let completed = 0;
  let first = NaN;
  let last = NaN;
  let probe = null;
  return {
    /** The handler of a no-op job. */
    done() {
      const now = Date.now();
      if (completed === 0) first = now;
      last = now;
      completed += 1;
    },
    /** The handler of a probe job: its start time goes to the waiting sample. */
    probeStarted() {
      const t = preciseNow();
      if (probe) probe.started = t;
    },
    /** Resolves when `finished()` is called after the probe's handler ran. */
    expectProbe() {
      const p = { started: NaN };
      p.finished = new Promise((resolve) => (p.resolve = resolve));
      probe = p;
      return p;
    },
    probeFinished() {
      probe?.resolve();
    },
    completed: () => completed,
    times: () => ({ count: completed, first, last }),
  };
}

async function waitCount(t, count, timeoutMs, label) {
  try {
    await waitUntil(() => t.completed() >= count, timeoutMs, `${label} to finish`);
    return { done: true, completed: t.completed() };
  } catch {
    return { done: false, completed: t.completed() };
  }
}

/** Waits for a probe sample; `enqueue()` adds the probe job. Bounded: 30 s. */
async function sample(t, enqueue, label) {
  const p = t.expectProbe();
  const t0 = preciseNow();
  await enqueue();
  const timedOut = delay(30_000).then(() => 'timeout');
  if ((await Promise.race([p.finished, timedOut])) === 'timeout') throw new Error(`${label}: a probe job did not run within 30 s`);
  return p.started - t0;
}

/** BullMQ on Redis: a Queue and a Worker (concurrency `concurrency`) on a fresh queue name, obliterated at the end. */
export async function startBullmq({ label = 'BullMQ', concurrency = 50, redis = { host: '127.0.0.1', port: 6379 } } = {}) {
  const { Queue, Worker } = await importPeer('bullmq');
  const name = `errand-bench-${process.pid}-${Date.now()}`;
  const connection = { ...redis, maxRetriesPerRequest: null };
  const queue = new Queue(name, { connection });
  const t = tally();
  const worker = new Worker(
    name,
    async (job) => {
      if (job.name === 'probe') t.probeStarted();
      else t.done();
      return null;
    },
    { connection, concurrency },
  );
  worker.on('completed', (job) => {
    if (job.name === 'probe') t.probeFinished();
  });
  worker.on('error', (err) => process.stderr.write(`bench: BullMQ worker: ${err.message}\n`));
  const ready = Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
  const late = delay(10_000).then(() => 'late');
  if ((await Promise.race([ready, late])) === 'late') {
    await Promise.allSettled([worker.close(true), queue.close()]);
    throw new Error(`BullMQ: Redis at ${redis.host}:${redis.port} did not answer within 10 s`);
  }
  return {
    label,
    enqueue: enqueueWith(
      () => queue.add('noop', NOOP_INPUT),
      (n) => queue.addBulk(Array.from({ length: n }, () => ({ name: 'noop', data: NOOP_INPUT }))),
    ),
    waitDone: (count, timeoutMs) => waitCount(t, count, timeoutMs, label),
    completionTimes: async () => t.times(),
    probe: () => sample(t, () => queue.add('probe', NOOP_INPUT), label),
    async stop() {
      await worker.close(true).catch(() => {});
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close().catch(() => {});
    },
  };
}

const silentLogger = async () => {
  const graphile = await importPeer('graphile-worker');
  return new graphile.Logger(() => () => {});
};

/**
 * graphile-worker: a runner in this process on `url` (with `?schema=`).
 * `options` go to `run()` (e.g. `concurrency`, `maxPoolSize`, `preset`); none = its defaults.
 */
export async function startGraphile({ label, url, options = {} }) {
  const graphile = await importPeer('graphile-worker');
  const schema = new URL(url).searchParams.get('schema');
  const plain = new URL(url);
  plain.searchParams.delete('schema');
  const connectionString = plain.toString();
  const logger = await silentLogger();
  const t = tally();
  const runner = await graphile.run({
    connectionString,
    schema,
    noHandleSignals: true,
    logger,
    taskList: {
      noop: async () => {
        t.done();
      },
      probe: async () => {
        t.probeStarted();
      },
    },
    ...options,
  });
  runner.events.on('job:complete', ({ job }) => {
    if (job.task_identifier === 'probe') t.probeFinished();
  });
  const utils = await graphile.makeWorkerUtils({ connectionString, schema, logger });
  return {
    label,
    enqueue: enqueueWith(
      () => utils.addJob('noop', NOOP_INPUT),
      (n) => utils.addJobs(Array.from({ length: n }, () => ({ identifier: 'noop', payload: NOOP_INPUT }))),
    ),
    waitDone: (count, timeoutMs) => waitCount(t, count, timeoutMs, label),
    completionTimes: async () => t.times(),
    probe: () => sample(t, () => utils.addJob('probe', NOOP_INPUT), label),
    async stop() {
      await runner.stop().catch(() => {});
      await utils.release().catch(() => {});
    },
  };
}

/**
 * pg-boss: `workers` × `boss.work('noop', work, …)` in this process on `url`
 * (with `?schema=`); `work` = the options of each (e.g. `{ batchSize: 100,
 * pollingIntervalSeconds: 0.5 }`), none = pg-boss's defaults (one job per
 * fetch, a fetch every 2 s).
 */
export async function startPgBoss({ label, url, workers = 1, work = {}, poolMax = 20 }) {
  const PgBoss = (await importPeer('pg-boss')).default;
  const schema = new URL(url).searchParams.get('schema');
  const plain = new URL(url);
  plain.searchParams.delete('schema');
  const boss = new PgBoss({ connectionString: plain.toString(), schema, max: poolMax, supervise: false, schedule: false });
  boss.on('error', (err) => process.stderr.write(`bench: pg-boss: ${err.message}\n`));
  await boss.start();
  await boss.createQueue('noop');
  await boss.createQueue('probe');
  const t = tally();
  for (let w = 0; w < workers; w++) {
    await boss.work('noop', work, async (jobs) => {
      for (let i = 0; i < jobs.length; i++) t.done();
    });
  }
  await boss.work('probe', work, async () => {
    t.probeStarted();
    // pg-boss completes the fetched jobs after the handler resolves, in the same loop turn.
    setImmediate(() => t.probeFinished());
  });
  return {
    label,
    enqueue: enqueueWith(
      () => boss.send('noop', NOOP_INPUT),
      (n) => boss.insert(Array.from({ length: n }, () => ({ name: 'noop', data: NOOP_INPUT }))),
    ),
    waitDone: (count, timeoutMs) => waitCount(t, count, timeoutMs, label),
    completionTimes: async () => t.times(),
    probe: () => sample(t, () => boss.send('probe', NOOP_INPUT), label),
    async stop() {
      await boss.stop({ graceful: false, wait: true, timeout: 5000 }).catch(() => {});
    },
  };
}

/** The installed version of a comparison queue, for the report. */
export function peerVersion(name) {
  try {
    return JSON.parse(readFileSync(path.join(BENCH_DIR, 'peers', 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}
