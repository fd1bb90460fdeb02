/**
 * Several real `errand serve` processes on one fresh PostgreSQL schema, and the
 * operation modules the cluster tests run. Each operation leaves a trace in
 * files (which process ran it, whether its signal aborted), so a test can tell
 * which node did what without trusting the nodes' own answers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { dropSchema, freshSchema, schemaUrl, PG_URL } from '../helpers/pg.js';
import { makeTempDir, startServer, writeConfig, type ServerProcess } from '../helpers/process.js';

/** Operation sources; `MARKS` is replaced by the marker folder. */
const OPERATIONS: Record<string, string> = {
  // Does nothing (for \`input.ms\`, default 0): the throughput case. Each finished attempt leaves <id>.<attempt>.<pid>.
  noop: `import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
export default { async run(input, ctx) {
  if (input?.ms) await sleep(input.ms, undefined, { signal: ctx.signal });
  writeFileSync(MARKS + '/' + ctx.request_id + '.' + ctx.attempt + '.' + process.pid, '');
  return { pid: process.pid };
} };`,
  // Reports progress and output in steps, then answers with the pid that ran it.
  where: `import { setTimeout as sleep } from 'node:timers/promises';
export default { async run(input, ctx) {
  const steps = input?.steps ?? 4;
  for (let i = 0; i < steps; i++) {
    await ctx.progress({ percent: Math.round((i / steps) * 100), completed_steps: i, total_steps: steps });
    await ctx.emit('chunk ' + i + ' ');
    await sleep(input?.step_ms ?? 50, undefined, { signal: ctx.signal });
  }
  return { pid: process.pid, steps };
} };`,
  // Holds its attempt until the file MARKS/release exists (or its signal aborts); leaves <id>.started.<attempt>.<pid>
  // when it starts and <id>.<attempt>.<pid> when it finishes.
  hold: `import { existsSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
export default { async run(input, ctx) {
  writeFileSync(MARKS + '/' + ctx.request_id + '.started.' + ctx.attempt + '.' + process.pid, '');
  for (let i = 0; i < 30000 && !existsSync(MARKS + '/release'); i++) await sleep(20, undefined, { signal: ctx.signal });
  writeFileSync(MARKS + '/' + ctx.request_id + '.' + ctx.attempt + '.' + process.pid, '');
  return { pid: process.pid };
} };`,
  // Waits until its signal aborts; leaves <id>.started.<pid> and <id>.aborted.<pid> (holding the abort's type).
  wait: `import { writeFileSync } from 'node:fs';
export default { run(input, ctx) {
  writeFileSync(MARKS + '/' + ctx.request_id + '.started.' + process.pid, '');
  return new Promise((resolve, reject) => ctx.signal.addEventListener('abort', () => {
    writeFileSync(MARKS + '/' + ctx.request_id + '.aborted.' + process.pid, String(ctx.signal.reason?.type ?? ctx.signal.reason?.message));
    reject(ctx.signal.reason);
  }, { once: true }));
} };`,
};

export interface ClusterFixture {
  schema: string;
  /** The store URL every node uses. */
  url: string;
  dir: string;
  /** Where the operations leave their marker files. */
  marks: string;
  /** Starts one more node; `engine` is merged over the defaults. */
  start(
    name: string,
    overrides?: { engine?: Record<string, unknown>; store?: Record<string, unknown>; readyTimeoutMs?: number },
  ): Promise<ServerProcess>;
  /** One query on the schema (for checks on the event log). */
  sql<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  cleanup(): Promise<void>;
}

/** `pgUrl`: the database the nodes use (default the tests' shared one, `ERRAND_TEST_PG_URL`). */
export async function clusterFixture(options: { pgUrl?: string } = {}): Promise<ClusterFixture> {
  const pgUrl = options.pgUrl ?? PG_URL;
  const schema = freshSchema();
  const url = schemaUrl(schema, pgUrl);
  const tmp = makeTempDir('errand-cluster-');
  const marks = join(tmp.dir, 'marks');
  mkdirSync(marks);
  const operations: Record<string, unknown> = {};
  for (const [name, source] of Object.entries(OPERATIONS)) {
    writeFileSync(join(tmp.dir, `${name}.mjs`), source.replaceAll('MARKS', JSON.stringify(marks)));
    operations[name] = { module: `./${name}.mjs` };
  }
  return {
    schema,
    url,
    dir: tmp.dir,
    marks,
    async start(name, overrides = {}) {
      const config = writeConfig(
        tmp.dir,
        {
          server: { shutdown_grace: 1 },
          store: { url, ...overrides.store },
          engine: { lease_duration: 3, heartbeat_interval: 1, poll_interval: 5, concurrency: 8, node_id: name, ...overrides.engine },
          workflow: { retry: { max_attempts: 3, initial_delay: 0.1, jitter: 0 } },
          operations,
          logging: { level: 'warn' },
        },
        `${name}.yaml`,
      );
      return startServer({ config, cwd: tmp.dir, readyTimeoutMs: overrides.readyTimeoutMs ?? 60_000 });
    },
    async sql(text, values = []) {
      // A connection per query: the outage test restarts the database under the fixture's feet.
      const client = new pg.Client({ connectionString: pgUrl, options: `-c search_path=${schema}`, connectionTimeoutMillis: 5000 });
      client.on('error', () => {});
      await client.connect();
      try {
        return (await client.query(text, values)).rows;
      } finally {
        await client.end().catch(() => {});
      }
    },
    async cleanup() {
      await dropSchema(schema, pgUrl).catch(() => {});
      tmp.cleanup();
    },
  };
}
