/**
 * A kill in the middle of batched completions (issue 13): a node completing
 * no-op requests as fast as it can, while submissions keep arriving, so
 * completions and inserts are group-committed many to a transaction, is
 * killed with SIGKILL; a new process on the same store (SQLite file, or
 * PostgreSQL schema) finishes the rest. Every acknowledged request (202) is
 * there and completes; none completes twice: its event log holds exactly one
 * `completed` status, the stored result is that of the attempt the record
 * names, and that attempt's handler ran (a marker file per run).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { dropSchema, freshSchema, pgExec, pgSkipReason, schemaUrl } from '../helpers/pg.js';
import { http, killAllServers, makeTempDir, startServer, waitFor, writeConfig, type ServerProcess } from '../helpers/process.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

after(killAllServers);

/** Completed before the kill: enough for several batches to have committed. */
const COMPLETED_BEFORE_KILL = 100;
/** Submissions in flight at once while the first node runs. */
const SUBMITTERS = 16;
/** Bound on submissions (the kill comes long before). */
const MAX_SUBMISSIONS = 5000;

interface EventRow {
  request_id: string;
  data: string;
}

/** A no-op that leaves one marker file per run: `<id>.<attempt>`. */
function writeNoopOperation(dir: string, markers: string): void {
  writeFileSync(
    join(dir, 'noop.mjs'),
    `import { writeFileSync } from 'node:fs';
export default {
  run(input, ctx) {
    writeFileSync(${JSON.stringify(markers)} + '/' + ctx.request_id + '.' + ctx.attempt, '');
    return { request_id: ctx.request_id, attempt: ctx.attempt };
  },
};
`,
  );
}

function config(dir: string, storeUrl: string): string {
  return writeConfig(dir, {
    server: { shutdown_grace: 1 },
    store: { url: storeUrl },
    engine: { lease_duration: 2, heartbeat_interval: 0.5, poll_interval: 0.2, concurrency: 32 },
    workflow: { retry: { max_attempts: 3, initial_delay: 0.1, jitter: 0 } },
    operations: { noop: { module: './noop.mjs' } },
    logging: { level: 'silent' },
  });
}

/** Submits until stopped; returns the ids acknowledged with 202 (a submission cut off by the kill is not). */
function submitUntilStopped(server: ServerProcess): { stop: () => Promise<string[]> } {
  const acknowledged: string[] = [];
  let stopped = false;
  let sent = 0;
  const workers = Array.from({ length: SUBMITTERS }, async () => {
    while (!stopped && sent < MAX_SUBMISSIONS) {
      sent += 1;
      try {
        const res = await http('POST', `${server.url}/v1/operations/noop?async=true`, { n: sent });
        if (res.status === 202) acknowledged.push(res.body.request_id as string);
      } catch {
        // The connection died with the process: not acknowledged, so it may or may not exist.
      }
    }
  });
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
      return acknowledged;
    },
  };
}

function markerAttempts(markers: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const name of readdirSync(markers)) {
    const dot = name.lastIndexOf('.');
    const id = name.slice(0, dot);
    out.set(id, [...(out.get(id) ?? []), Number(name.slice(dot + 1))]);
  }
  return out;
}

/**
 * Runs the scenario on one store; `statusEvents` reads every status event
 * (request_id, data) once the second node has stopped.
 */
async function killDuringBatchedCompletions(
  t: { diagnostic: (msg: string) => void },
  dir: string,
  storeUrl: string,
  statusEvents: () => Promise<EventRow[]>,
): Promise<void> {
  const markers = join(dir, 'markers');
  mkdirSync(markers);
  writeNoopOperation(dir, markers);
  const configPath = config(dir, storeUrl);

  const first = await startServer({ config: configPath });
  const submitter = submitUntilStopped(first);
  await waitFor(
    async () => {
      const res = await http('GET', `${first.url}/v1/requests?status=completed&limit=${COMPLETED_BEFORE_KILL}`);
      return res.status === 200 && (res.body.data as unknown[]).length >= COMPLETED_BEFORE_KILL;
    },
    { timeoutMs: SAFETY_NET_MS, intervalMs: 10, what: `${COMPLETED_BEFORE_KILL} completions before the kill` },
  );
  // Submissions and completions are in full flow: kill now.
  const exit = await first.crash();
  assert.equal(exit.signal, 'SIGKILL');
  const ids = await submitter.stop();
  t.diagnostic(`${ids.length} submissions acknowledged before the kill`);
  assert.ok(ids.length > COMPLETED_BEFORE_KILL);

  const second = await startServer({ config: configPath });
  const final = new Map<string, Record<string, unknown>>();
  await waitFor(
    async () => {
      for (const id of ids.filter((i) => !final.has(i))) {
        const res = await http('GET', `${second.url}/v1/requests/${id}`);
        assert.notEqual(res.status, 404, `${id} was acknowledged before the crash but is missing after the restart`);
        if (res.status === 200 && ['completed', 'failed', 'cancelled'].includes(res.body.status as string)) final.set(id, res.body);
        else return false;
      }
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 50, what: 'every acknowledged request to finish after the restart' },
  );
  second.kill('SIGTERM');
  assert.equal((await second.waitExit()).code, 0, second.diagnostics());

  const completedEvents = new Map<string, number>();
  for (const row of await statusEvents()) {
    if ((JSON.parse(row.data) as { status: string }).status === 'completed') {
      completedEvents.set(row.request_id, (completedEvents.get(row.request_id) ?? 0) + 1);
    }
  }
  const ran = markerAttempts(markers);
  let ranTwice = 0;
  for (const id of ids) {
    const r = final.get(id)! as { status: string; attempt: number; result: { request_id: string; attempt: number } };
    assert.equal(r.status, 'completed', `${id}: ${JSON.stringify(r)}`);
    assert.equal(completedEvents.get(id), 1, `${id}: ${completedEvents.get(id) ?? 0} completed status events`);
    assert.equal(r.result.request_id, id);
    assert.equal(r.result.attempt, r.attempt, `${id}: result of attempt ${r.result.attempt}, record says attempt ${r.attempt}`);
    const attempts = ran.get(id) ?? [];
    assert.ok(attempts.includes(r.attempt), `${id}: attempt ${r.attempt} completed but its handler never ran (markers: ${attempts})`);
    if (attempts.length > 1) ranTwice += 1;
  }
  t.diagnostic(`${ranTwice} requests ran again after the kill (at least once); each completed once`);
}

describe('SIGKILL during batched completions', () => {
  test('SQLite: no acknowledged request is lost, none completes twice', async (t) => {
    const { dir, cleanup } = makeTempDir('errand-batch-crash-');
    t.after(cleanup);
    const file = join(dir, 'errand.db');
    await killDuringBatchedCompletions(t, dir, `sqlite:${file}`, async () => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare(`SELECT request_id, data FROM request_events WHERE type = 'status'`).all() as EventRow[];
      } finally {
        db.close();
      }
    });
  });

  test('PostgreSQL: no acknowledged request is lost, none completes twice', async (t) => {
    const skip = await pgSkipReason();
    if (skip) return t.skip(skip);
    const { dir, cleanup } = makeTempDir('errand-batch-crash-pg-');
    const schema = freshSchema();
    t.after(async () => {
      cleanup();
      await dropSchema(schema);
    });
    await killDuringBatchedCompletions(t, dir, schemaUrl(schema), async () => {
      const { rows } = await pgExec(`SELECT request_id, data FROM "${schema}".request_events WHERE type = 'status'`);
      return rows as EventRow[];
    });
  });
});
