#!/usr/bin/env node
/**
 * The PostgreSQL suite (issue 6): end-to-end throughput — N no-op jobs from
 * the first enqueue to the last completion — on one PostgreSQL server, in one
 * run, for
 *
 *   1. Errand, one node (a child process running the built CLI), jobs
 *      submitted over HTTP (`POST /v1/operations/noop?async=true`),
 *   2. Errand, two nodes on the same database, submissions alternating,
 *   3. pg-boss, producer and workers in this process,
 *   4. graphile-worker, producer and runner in this process,
 *
 * each in a fresh schema of the database (dropped afterwards), with the same
 * number of jobs enqueued by the same number of concurrent producers. The
 * two job queues are dev dependencies of the bench only (bench/pg/package.json):
 *
 *   npm ci --prefix bench/pg
 *   npm run build -w errand && npm run bench -- --suite pg [--jobs 5000] [--producers 32]
 *
 * Errand pays for HTTP, JSON validation, auth and its event log on every job;
 * the job queues are called in-process. The ratios say what that costs.
 * Everything targets 127.0.0.1; every wait is bounded; every child is stopped.
 */
import { existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  BENCH_DIR,
  CLI,
  RESULTS,
  ROOT,
  createProcessGroup,
  delay,
  fmt,
  installSafetyNet,
  intFlag,
  machine,
  ratio,
  request,
  spawnErrand,
  utcNow,
} from './lib.mjs';

const HELP = `Usage: node bench/run.mjs --suite pg [options]

  --jobs N        no-op jobs per system (default 5000)
  --producers N   concurrent enqueuers (HTTP connections for Errand) (default 32)
  --url URL       PostgreSQL database (default $ERRAND_BENCH_PG_URL or postgres://postgres@127.0.0.1:5432/test)
  --no-record     print the results without appending them to bench/RESULTS.md
`;

export async function main(argv) {
  const { values: flags } = parseArgs({
    args: argv,
    options: {
      jobs: { type: 'string', default: '5000' },
      producers: { type: 'string', default: '32' },
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
  const JOBS = intFlag('--jobs', flags.jobs, 1, 200_000);
  const PRODUCERS = intFlag('--producers', flags.producers, 1, 256);
  if (!existsSync(CLI)) {
    process.stderr.write(`bench: ${path.relative(ROOT, CLI)} is missing; run \`npm run build -w errand\` first\n`);
    return 2;
  }
  const requireBench = createRequire(path.join(BENCH_DIR, 'pg', 'package.json'));
  let PgBoss;
  let graphile;
  try {
    PgBoss = (await import(requireBench.resolve('pg-boss'))).default;
    graphile = await import(requireBench.resolve('graphile-worker'));
  } catch {
    process.stderr.write('bench: pg-boss and graphile-worker are not installed; run `npm ci --prefix bench/pg` first\n');
    return 2;
  }
  const pg = (await import('pg')).default;

  const group = createProcessGroup();
  // Each system gets at most this long; the whole run is bounded.
  const perSystemMs = Math.max(60_000, JOBS * 20);
  installSafetyNet(group, 5 * perSystemMs + 60_000);
  const admin = new pg.Client({ connectionString: flags.url });
  await admin.connect();
  const schemas = [];
  const freshSchema = async (name) => {
    const schema = `bench_${name}_${process.pid}`;
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.query(`CREATE SCHEMA ${schema}`);
    schemas.push(schema);
    return schema;
  };
  const urlWithSchema = (schema) => {
    const url = new URL(flags.url);
    url.searchParams.set('schema', schema);
    return url.toString();
  };

  const results = [];
  try {
    results.push(await runErrand({ group, nodes: 1, schema: await freshSchema('errand1'), urlWithSchema, JOBS, PRODUCERS, perSystemMs }));
    results.push(await runErrand({ group, nodes: 2, schema: await freshSchema('errand2'), urlWithSchema, JOBS, PRODUCERS, perSystemMs }));
    results.push(await runPgBoss({ PgBoss, url: flags.url, schema: await freshSchema('pgboss'), JOBS, PRODUCERS, perSystemMs }));
    results.push(await runGraphile({ graphile, url: flags.url, schema: await freshSchema('graphile'), JOBS, PRODUCERS, perSystemMs }));
  } finally {
    await group.cleanup();
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await admin.end();
  }

  const text = report({ results, JOBS, PRODUCERS, server: (await serverVersion(flags.url, pg)) ?? 'unknown' });
  process.stdout.write(text);
  if (!flags['no-record']) {
    const { appendFileSync } = await import('node:fs');
    appendFileSync(RESULTS, text);
    process.stderr.write(`bench: results appended to ${path.relative(ROOT, RESULTS)}\n`);
  }
  return 0;
}

/** Runs `total` calls of `job(i)` with at most `concurrency` in flight. */
async function produce(total, concurrency, job) {
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

/** Polls `done()` every 20 ms until it is true; throws after `timeoutMs`. */
async function waitUntil(done, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (let round = 0; round < Math.ceil(timeoutMs / 20) + 1; round++) {
    if (await done()) return;
    if (Date.now() > deadline) break;
    await delay(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function runErrand({ group, nodes, schema, urlWithSchema, JOBS, PRODUCERS, perSystemMs }) {
  const label = `errand ×${nodes}`;
  const dir = group.tempDir(`errand-bench-pg-${nodes}-`);
  writeFileSync(path.join(dir, 'noop.mjs'), 'export default { run: () => null };\n');
  writeFileSync(
    path.join(dir, 'errand.yaml'),
    JSON.stringify({
      server: { host: '127.0.0.1', port: 0, shutdown_grace: 5 },
      store: { url: urlWithSchema(schema) },
      logging: { level: 'warn' },
      operations: { noop: { module: './noop.mjs' } },
    }),
  );
  const servers = [];
  for (let i = 0; i < nodes; i++) servers.push(await spawnErrand(group, { label: `${label} #${i + 1}`, dir }));
  const targets = servers.map((s) => new URL(s.url));
  const agent = new http.Agent({ keepAlive: true, maxSockets: PRODUCERS });
  const body = JSON.stringify({ n: 1 });
  try {
    const started = Date.now();
    let refused = 0;
    await produce(JOBS, PRODUCERS, async (i) => {
      const target = targets[i % targets.length];
      const res = await request(agent, {
        hostname: target.hostname,
        port: target.port,
        method: 'POST',
        path: '/v1/operations/noop?async=true',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        body,
        timeoutMs: 30_000,
      });
      if (res.status !== 202) refused += 1;
    });
    const submitted = Date.now();
    if (refused > 0) throw new Error(`${label}: ${refused} submissions were not accepted`);
    await waitUntil(
      async () => {
        const res = await request(agent, { hostname: targets[0].hostname, port: targets[0].port, path: '/ready', timeoutMs: 10_000 });
        const ready = JSON.parse(res.body);
        return res.status === 200 && ready.pending === 0 && ready.processing === 0;
      },
      perSystemMs,
      `${label} to finish ${JOBS} jobs`,
    );
    const finished = Date.now();
    return { label, enqueueMs: submitted - started, totalMs: finished - started };
  } finally {
    agent.destroy();
    for (const server of servers) await group.stopChild(server);
  }
}

async function runPgBoss({ PgBoss, url, schema, JOBS, PRODUCERS, perSystemMs }) {
  const boss = new PgBoss({ connectionString: url, schema, max: PRODUCERS + 8, supervise: false, schedule: false });
  boss.on('error', (err) => process.stderr.write(`bench: pg-boss: ${err.message}\n`));
  await boss.start();
  try {
    await boss.createQueue('noop');
    let completed = 0;
    // Four workers fetching 25 jobs at a time, polling every 0.5 s (pg-boss's minimum).
    for (let w = 0; w < 4; w++) {
      await boss.work('noop', { batchSize: 25, pollingIntervalSeconds: 0.5 }, async (jobs) => {
        completed += jobs.length;
      });
    }
    const started = Date.now();
    await produce(JOBS, PRODUCERS, () => boss.send('noop', { n: 1 }));
    const enqueued = Date.now();
    await waitUntil(() => completed >= JOBS, perSystemMs, `pg-boss to finish ${JOBS} jobs`);
    return { label: 'pg-boss', enqueueMs: enqueued - started, totalMs: Date.now() - started };
  } finally {
    await boss.stop({ graceful: false, wait: true, timeout: 5000 }).catch(() => {});
  }
}

async function runGraphile({ graphile, url, schema, JOBS, PRODUCERS, perSystemMs }) {
  let completed = 0;
  const runner = await graphile.run({
    connectionString: url,
    schema,
    concurrency: 16,
    noHandleSignals: true,
    pollInterval: 1000,
    maxPoolSize: PRODUCERS + 20,
    logger: new graphile.Logger(() => () => {}),
    taskList: {
      noop: async () => {
        completed += 1;
      },
    },
  });
  const utils = await graphile.makeWorkerUtils({ connectionString: url, schema, logger: new graphile.Logger(() => () => {}) });
  try {
    const started = Date.now();
    await produce(JOBS, PRODUCERS, () => utils.addJob('noop', { n: 1 }));
    const enqueued = Date.now();
    await waitUntil(() => completed >= JOBS, perSystemMs, `graphile-worker to finish ${JOBS} jobs`);
    return { label: 'graphile-worker', enqueueMs: enqueued - started, totalMs: Date.now() - started };
  } finally {
    await runner.stop().catch(() => {});
    await utils.release().catch(() => {});
  }
}

async function serverVersion(url, pg) {
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

function report({ results, JOBS, PRODUCERS, server }) {
  const m = machine();
  const base = results[0];
  const rate = (r) => (JOBS / r.totalMs) * 1000;
  const lines = [
    '',
    `## ${utcNow()} — PostgreSQL end-to-end throughput (suite pg)`,
    '',
    `Machine: ${m.nproc} × ${m.cpu}, ${m.memGiB} GiB, ${m.os}, Node ${m.node}; commit ${m.commit}. PostgreSQL ${server} on 127.0.0.1. ${fmt(JOBS)} no-op jobs per system, ${PRODUCERS} concurrent producers, each system in a fresh schema.`,
    'Errand jobs go over HTTP to `POST /v1/operations/noop?async=true` (committed before the 202, with their event log); pg-boss (4 workers × batch 25, 0.5 s polling) and graphile-worker (concurrency 16, LISTEN/NOTIFY) are called in-process.',
    '',
    '| system | enqueue phase | first enqueue → last completion | jobs/s end to end | vs errand ×1 |',
    '| ------ | ------------- | -------------------------------- | ----------------- | ------------ |',
    ...results.map(
      (r) => `| ${r.label} | ${fmt(r.enqueueMs)} ms | ${fmt(r.totalMs)} ms | ${fmt(rate(r))} | ${ratio(rate(r), rate(base))} |`,
    ),
    '',
  ];
  return `${lines.join('\n')}\n`;
}
