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
 * number of jobs enqueued by the same number of concurrent producers (one job
 * per call). The systems are started and driven by bench/systems.mjs, as in
 * the peers suite; the job queues are dev dependencies of the bench only
 * (bench/peers/package.json):
 *
 *   npm ci --prefix bench/peers
 *   npm run build -w errand && npm run bench -- --suite pg [--jobs 5000] [--producers 32]
 *
 * Errand pays for HTTP, JSON validation, auth and its event log on every job;
 * the job queues are called in-process. The ratios say what that costs.
 * Everything targets 127.0.0.1; every wait is bounded; every child is stopped.
 */
import { appendFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, RESULTS, ROOT, createProcessGroup, fmt, installSafetyNet, intFlag, machine, ratio, utcNow } from './lib.mjs';
import { pgSchemas, startErrand, startGraphile, startPgBoss } from './systems.mjs';

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

  const group = createProcessGroup();
  // Each system gets at most this long; the whole run is bounded.
  const perSystemMs = Math.max(60_000, JOBS * 20);
  installSafetyNet(group, 5 * perSystemMs + 60_000);
  const pgs = await pgSchemas(flags.url);
  const systems = [
    async () => startErrand(group, { label: 'errand ×1', store: { url: (await pgs.fresh('errand1')).url } }),
    async () => startErrand(group, { label: 'errand ×2', store: { url: (await pgs.fresh('errand2')).url }, nodes: 2 }),
    // Four workers fetching 25 jobs at a time, polling every 0.5 s (pg-boss's minimum).
    async () =>
      startPgBoss({
        label: 'pg-boss',
        url: (await pgs.fresh('pgboss')).url,
        workers: 4,
        work: { batchSize: 25, pollingIntervalSeconds: 0.5 },
        poolMax: PRODUCERS + 8,
      }),
    async () =>
      startGraphile({
        label: 'graphile-worker',
        url: (await pgs.fresh('graphile')).url,
        options: { concurrency: 16, pollInterval: 1000, maxPoolSize: PRODUCERS + 20 },
      }),
  ];
  const results = [];
  let server = 'unknown';
  try {
    server = await pgs.version();
    for (const start of systems) {
      const handle = await start();
      try {
        const started = Date.now();
        await handle.enqueue(JOBS, { inFlight: PRODUCERS });
        const enqueued = Date.now();
        const outcome = await handle.waitDone(JOBS, perSystemMs);
        if (!outcome.done) throw new Error(`${handle.label}: ${outcome.completed} of ${JOBS} jobs done after ${perSystemMs} ms`);
        await handle.stop();
        const times = await handle.completionTimes();
        results.push({ label: handle.label, enqueueMs: enqueued - started, totalMs: times.last - started });
      } finally {
        await handle.stop();
      }
    }
  } finally {
    await group.cleanup();
    await pgs.dropAll();
  }

  const text = report({ results, JOBS, PRODUCERS, server });
  process.stdout.write(text);
  if (!flags['no-record']) {
    appendFileSync(RESULTS, text);
    process.stderr.write(`bench: results appended to ${path.relative(ROOT, RESULTS)}\n`);
  }
  return 0;
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
