/**
 * Crash recovery of the real process: a node running ~60 requests is killed
 * with SIGKILL mid-flight; a new process on the same SQLite file recovers
 * every accepted request. With retries left an interrupted request is run
 * again and completes (attempt ≥ 2); with `max_attempts: 1` it fails with
 * `lease_expired`. Nothing accepted is lost, nothing completes twice.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  http,
  killAllServers,
  makeTempDir,
  startServer,
  waitFor,
  writeConfig,
  writeStepsOperation,
  type ServerProcess,
} from '../helpers/process.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

after(killAllServers);

const REQUESTS = 60;
const STEPS = 12;
const STEP_MS = 50; // each attempt takes ~0.6 s
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

interface Listed {
  request_id: string;
  status: string;
  attempt: number;
  completed_steps: number | null;
  completed_at: string | null;
}

interface Snapshot {
  /** Surely processing at the kill: listed as processing just before the SIGKILL with more work left than the time that passed until the kill. */
  surelyInterrupted: Set<string>;
  /** Completed before the kill, with their completed_at. */
  completedBefore: Map<string, string | null>;
}

function config(dir: string, maxAttempts: number): string {
  return writeConfig(dir, {
    server: { shutdown_grace: 1 },
    store: { url: `sqlite:${join(dir, 'errand.db')}` },
    engine: { lease_duration: 2, heartbeat_interval: 0.5, poll_interval: 0.2, concurrency: 8 },
    workflow: { retry: { max_attempts: maxAttempts, initial_delay: 0.1, jitter: 0 } },
    operations: { steps: { module: './steps.mjs' } },
    logging: { level: 'silent' },
  });
}

async function submitAll(server: ServerProcess): Promise<string[]> {
  const answers = await Promise.all(
    Array.from({ length: REQUESTS }, (_, i) =>
      http('POST', `${server.url}/v1/operations/steps?async=true`, { steps: STEPS, step_ms: STEP_MS, echo: i }),
    ),
  );
  const ids: string[] = [];
  for (const [i, res] of answers.entries()) {
    assert.equal(res.status, 202, `submission ${i}: ${res.text}\n${server.diagnostics()}`);
    const id = res.body.request_id as string;
    assert.equal(typeof id, 'string');
    assert.equal(res.headers.get('location'), `/v1/requests/${id}`);
    ids.push(id);
  }
  assert.equal(new Set(ids).size, REQUESTS, 'request ids are unique');
  return ids;
}

/**
 * Waits until some requests completed and at least 3 are processing early in their work,
 * then SIGKILLs at once. A request listed as processing counts as interrupted only if its
 * remaining work (whole steps left after the current one) is longer than the time from the
 * listing to the kill, plus a margin, so a slow machine cannot make the claim false.
 */
async function crashMidFlight(server: ServerProcess): Promise<Snapshot> {
  const snapshot = await waitFor(
    async () => {
      const listedAt = Date.now();
      const res = await http('GET', `${server.url}/v1/requests?limit=100`);
      assert.equal(res.status, 200, res.text);
      const rows = res.body.data as Listed[];
      const processing = rows.filter((r) => r.status === 'processing');
      const early = processing.filter((r) => (r.completed_steps ?? 0) <= STEPS - 6);
      const completed = rows.filter((r) => r.status === 'completed');
      if (completed.length < 1 || early.length < 3) return undefined;
      return { listedAt, processing, completed };
    },
    { timeoutMs: SAFETY_NET_MS, what: 'some requests completed and at least 3 processing' },
  );
  const killedAt = Date.now();
  const exit = await server.crash();
  assert.equal(exit.signal, 'SIGKILL');
  const elapsed = killedAt - snapshot.listedAt;
  const surely = snapshot.processing.filter((r) => (STEPS - 1 - (r.completed_steps ?? 0)) * STEP_MS > elapsed + 50);
  assert.ok(
    surely.length >= 1,
    `the kill came ${elapsed} ms after the listing: too late to know which requests it interrupted (machine overloaded?)`,
  );
  return {
    surelyInterrupted: new Set(surely.map((r) => r.request_id)),
    completedBefore: new Map(snapshot.completed.map((r) => [r.request_id, r.completed_at])),
  };
}

/** Polls GET /v1/requests/{id} for every id until each is terminal; 404 fails at once. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function waitAllTerminal(server: ServerProcess, ids: string[]): Promise<Map<string, any>> {
  const final = new Map<string, any>(); // eslint-disable-line @typescript-eslint/no-explicit-any
  await waitFor(
    async () => {
      const open = ids.filter((id) => !final.has(id));
      const answers = await Promise.all(open.map((id) => http('GET', `${server.url}/v1/requests/${id}`)));
      for (const [i, res] of answers.entries()) {
        const id = open[i]!;
        assert.notEqual(res.status, 404, `request ${id} was accepted before the crash but is missing after the restart`);
        assert.equal(res.status, 200, res.text);
        if (TERMINAL.has(res.body.status)) final.set(id, res.body);
      }
      return final.size === ids.length;
    },
    { timeoutMs: 30_000, intervalMs: 50, what: 'every accepted request to reach a terminal state after the restart' },
  );
  return final;
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

describe('crash recovery: SIGKILL mid-flight, restart on the same SQLite file', () => {
  test('every accepted request completes; interrupted ones ran again, none completed twice', async (t) => {
    const { dir, cleanup } = makeTempDir('errand-crash-');
    t.after(cleanup);
    const markers = join(dir, 'markers');
    mkdirSync(markers);
    writeStepsOperation(dir, 'steps.mjs', markers);
    const configPath = config(dir, 3);

    const first = await startServer({ config: configPath });
    const ids = await submitAll(first);
    const { surelyInterrupted, completedBefore } = await crashMidFlight(first);

    t.diagnostic(`at the kill: ${completedBefore.size} completed, ${surelyInterrupted.size} surely processing`);
    const second = await startServer({ config: configPath });
    const final = await waitAllTerminal(second, ids);
    const ran = markerAttempts(markers);

    for (const id of ids) {
      const r = final.get(id);
      assert.equal(r.status, 'completed', `${id}: ${JSON.stringify(r)}\n${second.diagnostics()}`);
      assert.equal(r.result.request_id, id);
      // The stored result is the one of the attempt the record says completed.
      assert.equal(r.result.attempt, r.attempt, `${id}: result from attempt ${r.result.attempt} but record says attempt ${r.attempt}`);
      assert.equal(r.result.steps, STEPS);
      assert.equal(r.progress, 100);
      assert.ok(r.attempt >= 1 && r.attempt <= 3, `${id}: attempt ${r.attempt}`);
      // No attempt ran to the end after the one that completed it.
      const attempts = ran.get(id) ?? [];
      assert.ok(attempts.includes(r.attempt), `${id}: attempt ${r.attempt} completed but never reached the end (markers: ${attempts})`);
      assert.ok(Math.max(...attempts) === r.attempt, `${id}: an attempt after the completing one ran (markers: ${attempts})`);
    }
    for (const id of surelyInterrupted) {
      assert.ok(final.get(id).attempt >= 2, `${id} was processing at the kill but completed in attempt ${final.get(id).attempt}`);
    }
    for (const [id, completedAt] of completedBefore) {
      const r = final.get(id);
      assert.equal(r.attempt, 1, `${id} had completed before the kill but was run again`);
      assert.equal(r.completed_at, completedAt, `${id} completed a second time after the restart`);
    }

    const open = await http('GET', `${second.url}/v1/requests?status=pending,processing&limit=100`);
    assert.equal(open.status, 200);
    assert.deepEqual(open.body.data, []);
    const all = await http('GET', `${second.url}/v1/requests?limit=100`);
    assert.equal(all.body.data.length, REQUESTS, 'no request appeared twice or went missing in the listing');
    assert.equal(new Set(all.body.data.map((r: Listed) => r.request_id)).size, REQUESTS);

    second.kill('SIGTERM');
    assert.equal((await second.waitExit()).code, 0, second.diagnostics());
  });

  test('max_attempts 1: a request interrupted by the crash fails with lease_expired', async (t) => {
    const { dir, cleanup } = makeTempDir('errand-crash1-');
    t.after(cleanup);
    writeStepsOperation(dir);
    const configPath = config(dir, 1);

    const first = await startServer({ config: configPath });
    const ids = await submitAll(first);
    const { surelyInterrupted, completedBefore } = await crashMidFlight(first);

    const second = await startServer({ config: configPath });
    const final = await waitAllTerminal(second, ids);

    for (const id of surelyInterrupted) {
      const r = final.get(id);
      assert.equal(r.status, 'failed', `${id} was processing at the kill: ${JSON.stringify(r)}`);
      assert.equal(r.error?.type, 'lease_expired');
      assert.equal(r.error?.retryable, false);
      assert.equal(r.attempt, 1);
    }
    for (const [id, completedAt] of completedBefore) {
      assert.equal(final.get(id).status, 'completed');
      assert.equal(final.get(id).completed_at, completedAt);
    }
    let failed = 0;
    for (const id of ids) {
      const r = final.get(id);
      assert.ok(r.status === 'completed' || (r.status === 'failed' && r.error?.type === 'lease_expired'), `${id}: ${JSON.stringify(r)}`);
      assert.equal(r.attempt, 1, `${id}: max_attempts is 1 but attempt is ${r.attempt}`);
      if (r.status === 'completed') assert.equal(r.result.request_id, id);
      else failed += 1;
    }
    t.diagnostic(
      `at the kill: ${completedBefore.size} completed, ${surelyInterrupted.size} surely processing; ${failed} failed with lease_expired`,
    );
    assert.ok(failed >= surelyInterrupted.size);
    assert.ok(failed <= 8, `at most concurrency (8) requests can be interrupted, got ${failed}`);

    second.kill('SIGTERM');
    assert.equal((await second.waitExit()).code, 0, second.diagnostics());
  });
});
