#!/usr/bin/env node
/**
 * The notify suite (issue 4): in one run, on this machine, measures
 *
 *   1. webhook deliveries per second to a local receiver (a node:http server
 *      in this process on 127.0.0.1 that answers 200, counts, and checks the
 *      Standard Webhooks signature of a sample with the `standardwebhooks`
 *      package), on an Errand child that allowlists 127.0.0.1 and signs with a
 *      fresh `whsec_` secret, once per `webhooks.concurrency` value:
 *        (a) live: N no-ops submitted at once, each with `webhook_url`; the
 *            deliveries follow the completions. Deliveries per second from the
 *            first to the last receipt, and completion → receipt latency
 *            (`completed_at` in the payload; both processes read one clock);
 *        (b) backlog: the receiver holds the first `concurrency` deliveries
 *            unanswered (every slot of the deliverer busy) until the engine has
 *            completed N more no-ops, then answers everything at once; the
 *            deliverer drains a full outbox at its own pace;
 *   2. SSE fan-out: one request whose operation waits on a gate (a file the
 *      harness creates) and then emits M output chunks as fast as `ctx.emit`
 *      returns, with S subscribers (default 1,000) on
 *      `GET /v1/requests/{id}/events` connected (each has the replay of event 1)
 *      before the gate opens; the same with 1 subscriber as the reference.
 *      Events per second delivered in total, every subscriber's completeness
 *      (every seq, in order, terminal last), lag behind the first subscriber,
 *      the server's CPU time (/proc/<pid>/stat) and RSS.
 *
 *   npm run build -w errand && npm run bench -- --suite notify
 *   node bench/notify.mjs --help
 *
 * Everything listens on and targets 127.0.0.1; every wait is bounded in time
 * and every loop in count; every child is stopped at the end, also on error,
 * Ctrl-C or when the run overruns its budget. Linux only (reads /proc).
 */
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Webhook } from 'standardwebhooks';
import {
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
  utcNow,
  spawnErrand,
} from './lib.mjs';

const require = createRequire(import.meta.url);

const HELP = `Usage: npm run bench -- --suite notify [options]   (or: node bench/notify.mjs [options]; run \`npm run build -w errand\` first)

Part 1, webhook deliveries to a local receiver:
  --deliveries N    requests (so deliveries) per phase (default 2000)
  --concurrency L   webhooks.concurrency values, comma-separated, one Errand each (default 16,64; 16 is the default)
  --sample N        deliveries per phase whose signature is verified with standardwebhooks (default 200)

Part 2, SSE fan-out:
  --subscribers N   subscribers to the one request (default 1000; a 1-subscriber reference run comes first)
  --chunks N        output chunks the operation emits (default 200)
  --chunk-bytes N   characters of text per chunk (default 32)
  --pace-ms N       wait N ms between chunks (default 0: as fast as ctx.emit returns)

  --cpu-prof        run the Errand children under --cpu-prof; .cpuprofile files are kept in temp dirs (paths printed)

  --no-record       print the results but do not append them to bench/RESULTS.md
  --help            this text
`;

/** Submissions in flight at once. */
const SUBMIT_CONCURRENCY = 32;
/** Longest wait for a phase's deliveries, or for a fan-out to finish, ms. */
const PHASE_TIMEOUT_MS = 60_000;
/** Longest the receiver holds the first deliveries of the backlog phase (below async.webhook_timeout, 10 s). */
const HOLD_MAX_MS = 7_000;
/** Subscribers connecting at once. */
const CONNECT_BATCH = 100;

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
        deliveries: { type: 'string', default: '2000' },
        concurrency: { type: 'string', default: '16,64' },
        sample: { type: 'string', default: '200' },
        subscribers: { type: 'string', default: '1000' },
        chunks: { type: 'string', default: '200' },
        'chunk-bytes': { type: 'string', default: '32' },
        'pace-ms': { type: 'string', default: '0' },
        'cpu-prof': { type: 'boolean', default: false },
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
  const settings = {
    deliveries: intFlag('--deliveries', flags.deliveries, 10, 20_000),
    concurrency: flags.concurrency.split(',').map((c) => intFlag('--concurrency', c.trim(), 1, 1000)),
    sample: intFlag('--sample', flags.sample, 0, 20_000),
    subscribers: intFlag('--subscribers', flags.subscribers, 1, 5000),
    chunks: intFlag('--chunks', flags.chunks, 1, 5000),
    chunkBytes: intFlag('--chunk-bytes', flags['chunk-bytes'], 1, 10_000),
    paceMs: intFlag('--pace-ms', flags['pace-ms'], 0, 1000),
    cpuProf: flags['cpu-prof'],
  };
  if (settings.chunks * settings.paceMs > 30_000) {
    process.stderr.write('bench: --chunks × --pace-ms must be at most 30 s\n');
    return 2;
  }
  if (settings.concurrency.length > 4) {
    process.stderr.write('bench: --concurrency takes at most 4 values\n');
    return 2;
  }
  if (!existsSync(CLI)) {
    process.stderr.write(`bench: ${path.relative(ROOT, CLI)} is missing; run \`npm run build -w errand\` first\n`);
    return 2;
  }
  if (!existsSync('/proc/self/stat')) {
    process.stderr.write('bench: the notify suite reads /proc/<pid>/stat for the server CPU time; it runs on Linux only\n');
    return 2;
  }
  const fdLimit = openFileLimit();
  const fdNeeded = settings.subscribers + 250;
  if (fdLimit !== null && fdLimit < fdNeeded) {
    process.stderr.write(
      `bench: ${settings.subscribers} subscribers need about ${fdNeeded} open files in this process and in the server; \`ulimit -n\` is ${fdLimit}. Raise it (ulimit -n ${fdNeeded}) or pass a smaller --subscribers\n`,
    );
    return 2;
  }

  const group = createProcessGroup({ keepTempDirs: settings.cpuProf });
  const budgetMs = settings.concurrency.length * (2 * PHASE_TIMEOUT_MS + 20_000) + 2 * (PHASE_TIMEOUT_MS + 30_000) + 30_000;
  installSafetyNet(group, budgetMs);
  const receiver = await startReceiver();
  const stopReceiver = { stop: () => receiver.close() };
  const untrackReceiver = group.track(stopReceiver);

  try {
    const startedAt = utcNow();
    const loadStart = loadAvg();
    const info = machine();
    process.stderr.write(
      `bench: notify suite on ${info.nproc} CPU(s) ${info.cpu}, Node ${info.node}; open-file limit ${fdLimit ?? 'unknown'}; budget ${Math.round(budgetMs / 1000)} s (normally under 2 min)\n`,
    );
    const webhooks = [];
    for (const concurrency of settings.concurrency) webhooks.push(await webhookRun(group, settings, receiver, concurrency));
    // The fan-out: a 1-subscriber reference first (the producer alone), then the many.
    const fanout = [await fanoutRun(group, settings, 1)];
    if (settings.subscribers > 1) fanout.push(await fanoutRun(group, settings, settings.subscribers));
    const finishedAt = utcNow();
    const section = report({ startedAt, finishedAt, loadStart, info, settings, fdLimit, webhooks, fanout });
    process.stdout.write(`\n${section}\n`);
    if (!flags['no-record']) {
      if (!existsSync(RESULTS)) writeFileSync(RESULTS, '# Benchmark results\n');
      appendFileSync(RESULTS, `\n${section}`);
      process.stderr.write(`bench: appended to ${path.relative(process.cwd(), RESULTS) || RESULTS}\n`);
    }
    for (const warning of warnings(settings, webhooks, fanout)) process.stderr.write(`bench: WARNING ${warning}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`bench: ${err.stack ?? err}\n`);
    return 1;
  } finally {
    untrackReceiver();
    receiver.close();
    await group.cleanup();
  }
}

// ---------------------------------------------------------------------------
// Servers

/** A fresh Errand child with `operations` (name → module source) and extra top-level YAML; `logLines()` counts warn+ lines after start-up. */
async function startErrand(group, settings, label, { operations, yaml = [] }) {
  const dir = group.tempDir(`errand-bench-notify-${label}-`);
  const lines = [
    'server:',
    '  host: 127.0.0.1',
    '  port: 0',
    '  shutdown_grace: 5',
    'store:',
    '  url: sqlite:./errand.db',
    'logging:',
    '  level: warn',
    ...yaml,
    'operations:',
  ];
  for (const [name, source] of Object.entries(operations)) {
    writeFileSync(path.join(dir, `${name}.mjs`), source);
    lines.push(`  ${name}:`, `    module: ./${name}.mjs`);
  }
  writeFileSync(path.join(dir, 'errand.yaml'), `${lines.join('\n')}\n`);
  const server = await spawnErrand(group, { label, dir, cpuProf: settings.cpuProf });
  return { ...server, dir };
}

/** Submits `count` requests `POST <reqPath>` with `body`, SUBMIT_CONCURRENCY at a time; resolves with the ids and the span. */
async function submitMany(url, count, reqPath, body) {
  const { hostname, port } = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: SUBMIT_CONCURRENCY });
  const ids = [];
  let next = 0;
  const startedAt = Date.now();
  try {
    const worker = async () => {
      while (next < count) {
        next += 1;
        const res = await request(agent, {
          hostname,
          port,
          method: 'POST',
          path: reqPath,
          headers: { 'content-type': 'application/json' },
          body,
          timeoutMs: 10_000,
        });
        if (res.status !== 202) throw new Error(`a submission answered ${res.status}: ${res.body.slice(0, 500)}`);
        ids.push(JSON.parse(res.body).request_id);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SUBMIT_CONCURRENCY, count) }, worker));
  } finally {
    agent.destroy();
  }
  return { ids, ms: Date.now() - startedAt };
}

/** `GET /ready`: `{pending, processing}`, or null. */
async function readiness(url) {
  try {
    const res = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(5_000) });
    const body = await res.json();
    return typeof body.pending === 'number' ? { pending: body.pending, processing: body.processing } : null;
  } catch {
    return null;
  }
}

async function getJson(url, reqPath) {
  const res = await fetch(`${url}${reqPath}`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${reqPath} answered ${res.status}: ${(await res.text()).slice(0, 500)}`);
  return res.json();
}

/** Resolves true once `condition()` holds (checked every `everyMs`), false after `timeoutMs`. */
async function waitFor(condition, timeoutMs, everyMs = 20) {
  const end = Date.now() + timeoutMs;
  for (let i = 0; i < Math.ceil(timeoutMs / everyMs) + 1; i++) {
    if (await condition()) return true;
    if (Date.now() >= end) return false;
    await delay(everyMs);
  }
  return false;
}

// ---------------------------------------------------------------------------
// Part 1: webhook deliveries

/**
 * The receiver: a node:http server on 127.0.0.1 that records every POST into
 * the current phase and answers 200 at once, or holds the answer while the
 * phase says so.
 */
async function startReceiver() {
  let phase = null;
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const at = Date.now();
      if (!phase) {
        res.writeHead(503, { 'content-length': '0' }).end();
        return;
      }
      phase.record(req.headers, Buffer.concat(chunks).toString('utf8'), at, res);
    });
  });
  server.keepAliveTimeout = 10_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  let closed = false;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    /** Every connection the deliverer has open to us now. */
    connections: () => sockets.size,
    setPhase(p) {
      phase = p;
    },
    close() {
      if (closed) return;
      closed = true;
      phase?.release();
      server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** What the receiver records in one phase; `done` resolves once `expected` distinct deliveries arrived. */
function newPhase({ expected, secret, sample }) {
  const verifier = new Webhook(secret);
  let resolveDone;
  const p = {
    expected,
    ids: new Set(),
    duplicates: 0,
    /** Receipt times (epoch ms) of first deliveries, in arrival order. */
    times: [],
    /** completed_at → receipt, ms. */
    lags: [],
    completedAts: [],
    verified: 0,
    badSignatures: 0,
    unsigned: 0,
    otherErrors: [],
    hold: false,
    held: [],
    done: new Promise((resolve) => (resolveDone = resolve)),
    record(headers, body, at, res) {
      const id = headers['webhook-id'];
      if (typeof id !== 'string' || p.ids.has(id)) p.duplicates += typeof id === 'string' ? 1 : 0;
      else {
        p.ids.add(id);
        p.times.push(at);
        try {
          const payload = JSON.parse(body);
          const completedAt = Date.parse(payload.completed_at);
          if (Number.isFinite(completedAt)) {
            p.completedAts.push(completedAt);
            p.lags.push(at - completedAt);
          }
          if (payload.status !== 'completed' && p.otherErrors.length < 5) p.otherErrors.push(`status ${payload.status}`);
        } catch (err) {
          if (p.otherErrors.length < 5) p.otherErrors.push(`payload: ${err.message}`);
        }
        if (p.ids.size <= sample) {
          if (headers['webhook-signature'] === undefined) p.unsigned += 1;
          else {
            try {
              verifier.verify(body, headers);
              p.verified += 1;
            } catch {
              p.badSignatures += 1;
            }
          }
        }
        if (p.ids.size >= p.expected) resolveDone();
      }
      if (p.hold) p.held.push(res);
      else res.writeHead(200, { 'content-length': '0' }).end();
    },
    /** Answers the held deliveries and stops holding. */
    release() {
      p.hold = false;
      for (const res of p.held.splice(0)) if (!res.destroyed) res.writeHead(200, { 'content-length': '0' }).end();
    },
  };
  return p;
}

/** A fresh Errand with `webhooks.concurrency: concurrency`; the live phase, then the backlog phase. */
async function webhookRun(group, settings, receiver, concurrency) {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const server = await startErrand(group, settings, `webhooks-${concurrency}`, {
    operations: { noop: 'export default { run: () => null };\n' },
    yaml: ['webhooks:', `  secret: "${secret}"`, '  allow: ["127.0.0.1"]', `  concurrency: ${concurrency}`],
  });
  const pid = server.proc.pid;
  const n = settings.deliveries;
  const submitPath = `/v1/operations/noop?async=true&webhook_url=${encodeURIComponent(receiver.url)}`;
  try {
    // (a) live: the deliveries follow the completions.
    process.stderr.write(`bench: webhooks, concurrency ${concurrency}: ${n} no-ops, deliveries as they complete…\n`);
    const live = newPhase({ expected: n, secret, sample: settings.sample });
    receiver.setPhase(live);
    let cpu0 = cpuMs(pid);
    const submitted = await submitMany(server.url, n, submitPath, '{"bench":"notify"}');
    const liveDone = await Promise.race([live.done.then(() => true), delay(PHASE_TIMEOUT_MS).then(() => false)]);
    const liveCpu = cpuMs(pid) - cpu0;
    const liveConnections = receiver.connections();
    // Late duplicates would land here: give them a moment, then close the phase.
    await delay(200);
    receiver.setPhase(null);

    // (b) backlog: hold the first `concurrency` deliveries until the engine has completed all n.
    process.stderr.write(`bench: webhooks, concurrency ${concurrency}: ${n} no-ops, a full outbox drained…\n`);
    const backlog = newPhase({ expected: n, secret, sample: settings.sample });
    backlog.hold = true;
    receiver.setPhase(backlog);
    const holdStart = Date.now();
    await submitMany(server.url, n, submitPath, '{"bench":"notify"}');
    const engineDone = await waitFor(
      async () => {
        const r = await readiness(server.url);
        return r !== null && r.pending === 0 && r.processing === 0 && backlog.held.length >= Math.min(concurrency, n);
      },
      Math.max(0, HOLD_MAX_MS - (Date.now() - holdStart)),
    );
    const held = backlog.held.length;
    const heldMs = Date.now() - holdStart;
    cpu0 = cpuMs(pid);
    const releasedAt = Date.now();
    backlog.release();
    const backlogDone = await Promise.race([backlog.done.then(() => true), delay(PHASE_TIMEOUT_MS).then(() => false)]);
    const backlogCpu = cpuMs(pid) - cpu0;
    await delay(200);
    receiver.setPhase(null);

    // One request's delivery log, as a check that the server saw what the receiver saw.
    const sampleLog = await getJson(server.url, `/v1/requests/${submitted.ids[0]}/deliveries`);
    const first = sampleLog.data?.[0];
    return {
      concurrency,
      live: { ...live, ok: liveDone, submitMs: submitted.ms, cpuMs: liveCpu, connections: liveConnections },
      backlog: { ...backlog, ok: backlogDone, engineDone, held, heldMs, releasedAt, cpuMs: backlogCpu },
      sampleDelivery: first
        ? `${first.status}, ${first.attempts?.length ?? '?'} attempt(s), status code ${first.last_status_code}`
        : 'none',
      rss: rssMiB(pid),
      logLines: server.logLines(),
    };
  } finally {
    receiver.setPhase(null);
    await group.stopChild(server);
  }
}

// ---------------------------------------------------------------------------
// Part 2: SSE fan-out

/** The operation: waits (bounded) for the gate file, then emits `chunks` chunks, `pace` ms apart (0: as fast as ctx.emit returns). */
const STREAM_OPERATION = `import { existsSync } from 'node:fs';
export default {
  async run(input, ctx) {
    for (let i = 0; i < 12_000 && !existsSync(input.gate); i++) await new Promise((r) => setTimeout(r, 5));
    if (!existsSync(input.gate)) throw new Error('the gate never opened');
    const text = 'x'.repeat(input.bytes);
    for (let i = 0; i < input.chunks; i++) {
      if (i > 0 && input.pace > 0) await new Promise((r) => setTimeout(r, input.pace));
      await ctx.emit({ i, text });
    }
    return { chunks: input.chunks };
  },
};
`;

/** A fresh Errand with one gated streaming request and `subscribers` subscribers to its events. */
async function fanoutRun(group, settings, subscribers) {
  const label = `fanout-${subscribers}`;
  const server = await startErrand(group, settings, label, { operations: { stream: STREAM_OPERATION } });
  const pid = server.proc.pid;
  const { hostname, port } = new URL(server.url);
  const gate = path.join(server.dir, 'gate');
  const { chunks } = settings;
  const terminalSeq = chunks + 3; // 1 pending, 2 processing, the chunks, the terminal event
  const abort = new AbortController();
  setMaxListeners(subscribers + 100, abort.signal);
  const untrack = group.track({ stop: () => abort.abort() });
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  try {
    const input = JSON.stringify({ gate, chunks, bytes: settings.chunkBytes, pace: settings.paceMs });
    const res = await request(agent, {
      hostname,
      port,
      method: 'POST',
      path: '/v1/operations/stream?async=true',
      headers: { 'content-type': 'application/json' },
      body: input,
      timeoutMs: 10_000,
    });
    if (res.status !== 202) throw new Error(`the submission answered ${res.status}: ${res.body.slice(0, 500)}`);
    const id = JSON.parse(res.body).request_id;
    // The request is claimed and waits at the gate (event 2, processing) before anyone listens; that is fine: each
    // subscriber replays it. What is measured is everything after the gate opens.
    const rssBefore = rssMiB(pid);
    process.stderr.write(`bench: SSE fan-out: ${subscribers} subscriber(s) connecting…\n`);
    const connectStart = performance.now();
    const cpuConnect0 = cpuMs(pid);
    const subs = [];
    for (let i = 0; i < subscribers; i += CONNECT_BATCH) {
      const batch = [];
      for (let k = i; k < Math.min(subscribers, i + CONNECT_BATCH); k++) {
        const sub = subscribe({ hostname, port, id, agent, signal: abort.signal, maxSeq: terminalSeq + 10 });
        subs.push(sub);
        batch.push(sub.connected);
      }
      await Promise.race([Promise.all(batch), delay(15_000)]);
    }
    const connectMs = performance.now() - connectStart;
    const cpuConnect = cpuMs(pid) - cpuConnect0;
    const connected = subs.filter((s) => s.last >= 1).length;
    await delay(300); // let the replays settle (events 1 and 2)
    const rssConnected = rssMiB(pid);
    const fdsConnected = openFds(pid);

    process.stderr.write(
      `bench: SSE fan-out: ${connected}/${subscribers} connected in ${fmt(connectMs)} ms; opening the gate (${chunks} chunks)…\n`,
    );
    let rssPeak = rssConnected;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMiB(pid))), 100);
    const harness0 = process.cpuUsage();
    const cpu0 = cpuMs(pid);
    const t0 = performance.now();
    writeFileSync(gate, 'open\n');
    const finished = await Promise.race([
      Promise.all(subs.map((s) => s.ended)).then(() => true),
      delay(PHASE_TIMEOUT_MS).then(() => false),
    ]);
    const tEnd = performance.now();
    const cpuSpan = cpuMs(pid) - cpu0;
    const harnessCpu = process.cpuUsage(harness0);
    clearInterval(sampler);
    const rssEnd = rssMiB(pid);
    abort.abort();

    const status = await getJson(server.url, `/v1/requests/${id}`);
    return {
      subscribers,
      id,
      finished,
      status: status.status,
      connectMs,
      cpuConnect,
      connected,
      rssBefore,
      rssConnected,
      rssPeak,
      rssEnd,
      fdsConnected,
      cpuSpan,
      harnessCpuMs: (harnessCpu.user + harnessCpu.system) / 1000,
      spanMs: tEnd - t0,
      analysis: analyse(subs, t0, terminalSeq, chunks),
      logLines: server.logLines(),
    };
  } finally {
    abort.abort();
    untrack();
    agent.destroy();
    await group.stopChild(server);
  }
}

/**
 * One subscriber: `GET /v1/requests/{id}/events`, parsed as it arrives. Keeps
 * the receipt time (performance.now) of every seq, whether they came in order,
 * and how the stream ended. `connected` resolves at the first event (or failure);
 * `ended` when the stream ends, fails, or is aborted.
 */
function subscribe({ hostname, port, id, agent, signal, maxSeq }) {
  const sub = {
    last: 0,
    outputs: 0,
    outOfOrder: 0,
    terminal: null,
    terminalSeq: 0,
    eventsAfterTerminal: 0,
    endedByServer: false,
    error: null,
    times: new Float64Array(maxSeq + 1),
  };
  let onFirst;
  sub.connected = new Promise((resolve) => (onFirst = resolve));
  sub.ended = new Promise((resolve) => {
    const finish = (err) => {
      if (err && !sub.error && !signal.aborted) sub.error = err.message;
      onFirst();
      resolve();
    };
    const req = http.request(
      { hostname, port, path: `/v1/requests/${id}/events`, agent, signal, headers: { accept: 'text/event-stream' } },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          finish(new Error(`answered ${res.statusCode}`));
          return;
        }
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (text) => {
          const now = performance.now();
          buffer += text;
          let end;
          for (let guard = 0; guard < 100_000 && (end = buffer.indexOf('\n\n')) >= 0; guard++) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            onEvent(block, now);
          }
        });
        res.on('end', () => {
          sub.endedByServer = true;
          finish();
        });
        res.on('error', finish);
        res.on('close', () => finish());
      },
    );
    req.on('error', finish);
    req.end();
  });

  function onEvent(block, now) {
    let seq = NaN;
    let type = 'message';
    for (const line of block.split('\n')) {
      if (line.startsWith('id: ')) seq = Number(line.slice(4));
      else if (line.startsWith('event: ')) type = line.slice(7);
    }
    if (!Number.isFinite(seq)) return; // a keep-alive comment
    if (sub.terminal !== null) sub.eventsAfterTerminal += 1;
    if (seq !== sub.last + 1) sub.outOfOrder += 1;
    sub.last = seq;
    if (seq < sub.times.length) sub.times[seq] = now;
    if (type === 'output') sub.outputs += 1;
    if (type === 'completed' || type === 'failed' || type === 'cancelled') {
      sub.terminal = type;
      sub.terminalSeq = seq;
    }
    if (seq === 1) onFirst();
  }
  return sub;
}

/** Totals over the subscribers: completeness, events after the gate, the spans, and each event's lag behind its first receipt. */
function analyse(subs, t0, terminalSeq, chunks) {
  const firstReceipt = new Float64Array(terminalSeq + 1).fill(Infinity);
  let complete = 0;
  let delivered = 0;
  let lastTerminal = -Infinity;
  let firstTerminal = Infinity;
  let firstOutput = Infinity;
  const problems = { outOfOrder: 0, missingTerminal: 0, wrongCount: 0, notEndedByServer: 0, afterTerminal: 0, errors: [] };
  for (const s of subs) {
    for (let seq = 1; seq <= terminalSeq; seq++) {
      const t = s.times[seq];
      if (t > 0 && t < firstReceipt[seq]) firstReceipt[seq] = t;
      if (t >= t0) delivered += 1;
    }
    if (s.times[3] > 0) firstOutput = Math.min(firstOutput, s.times[3]);
    const terminalAt = s.times[terminalSeq];
    if (s.terminal !== null && terminalAt > 0) {
      lastTerminal = Math.max(lastTerminal, terminalAt);
      firstTerminal = Math.min(firstTerminal, terminalAt);
    }
    const ok =
      s.outOfOrder === 0 &&
      s.terminal === 'completed' &&
      s.terminalSeq === terminalSeq &&
      s.outputs === chunks &&
      s.endedByServer &&
      s.eventsAfterTerminal === 0;
    if (ok) complete += 1;
    if (s.outOfOrder > 0) problems.outOfOrder += 1;
    if (s.terminal === null) problems.missingTerminal += 1;
    if (s.outputs !== chunks) problems.wrongCount += 1;
    if (!s.endedByServer) problems.notEndedByServer += 1;
    if (s.eventsAfterTerminal > 0) problems.afterTerminal += 1;
    if (s.error && problems.errors.length < 5) problems.errors.push(s.error);
  }
  // Lag of each receipt of an event after the gate behind that event's first receipt by any subscriber.
  const lags = [];
  for (const s of subs) {
    for (let seq = 3; seq <= terminalSeq; seq++) {
      const t = s.times[seq];
      if (t > 0) lags.push(t - firstReceipt[seq]);
    }
  }
  return {
    complete,
    delivered,
    problems,
    firstOutputMs: firstOutput - t0,
    producerMs: firstTerminal - t0,
    lastTerminalMs: lastTerminal - t0,
    lags,
  };
}

// ---------------------------------------------------------------------------
// Report

const perS = (n, ms) => (ms > 0 ? (n * 1000) / ms : NaN);

function span(times) {
  if (times.length < 2) return NaN;
  let lo = Infinity;
  let hi = -Infinity;
  for (const t of times) {
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  return hi - lo;
}

function signatures(p, settings) {
  const checked = Math.min(settings.sample, p.ids.size);
  return `${p.verified} / ${checked}${p.badSignatures > 0 ? ` (**${p.badSignatures} bad**)` : ''}${p.unsigned > 0 ? ` (**${p.unsigned} unsigned**)` : ''}`;
}

function report({ startedAt, finishedAt, loadStart, info, settings, fdLimit, webhooks, fanout }) {
  const undiciVersion = require('undici/package.json').version;
  const lines = [];
  lines.push(`## Notify run ${startedAt}`, '');
  lines.push(
    '`npm run bench -- --suite notify` (bench/notify.mjs): webhook deliveries per second, and SSE events fanned out to many subscribers.',
    '',
  );
  lines.push(
    `- Machine: ${info.nproc} CPU(s), ${info.cpu}; ${info.memGiB} GiB RAM; ${info.os}; Node ${info.node}; open-file limit ${fdLimit ?? 'unknown'}`,
  );
  lines.push(`- Code: commit ${info.commit}; dist built ${info.built}; run finished ${finishedAt}`);
  lines.push(`- Load average (1/5/15 min) at start: ${loadStart}; at end: ${loadAvg()} (other work on the machine skews the numbers)`);
  lines.push(
    `- Errand: a fresh child process per row (\`node packages/server/dist/cli/main.js serve\`), fresh SQLite file in ${os.tmpdir()} on ${info.tmpFs}; config defaults (\`store.synchronous: full\`, engine concurrency 16, \`async.webhook_timeout\` 10 s) unless the row says otherwise; \`logging.level: warn\`${settings.cpuProf ? '; **under --cpu-prof (slower)**' : ''}`,
  );
  lines.push('');

  // Part 1
  const n = settings.deliveries;
  lines.push('### Webhook deliveries to a local receiver', '');
  lines.push(
    `Errand signs (\`webhooks.secret\`: a fresh \`whsec_\` + 32 random bytes), allowlists the receiver (\`webhooks.allow: ["127.0.0.1"]\`) and sends with undici ${undiciVersion}; the receiver is a node:http server in the harness process on 127.0.0.1 that reads each body and answers \`200\` with no body, and verifies the first ${settings.sample} signatures of each phase with \`standardwebhooks\`. Operation \`noop\` = \`export default { run: () => null }\`; each phase submits ${fmt(n)} requests \`POST /v1/operations/noop?async=true&webhook_url=…\` over ${SUBMIT_CONCURRENCY} connections.`,
    '',
  );
  lines.push(
    `- **live**: the deliveries go out as the requests complete, while the submissions go on. deliveries/s = distinct deliveries ÷ (last receipt − first receipt); completions/s the same over the payloads' \`completed_at\`; completion → receipt = receipt time − \`completed_at\` (one clock, ms resolution).`,
  );
  lines.push(
    `- **backlog**: the receiver holds its first \`webhooks.concurrency\` deliveries unanswered (every send slot busy) until the engine has completed all ${fmt(n)} (\`GET /ready\`: nothing pending or processing; at most ${HOLD_MAX_MS / 1000} s), then answers them; deliveries/s = deliveries received after the release ÷ (last receipt − release): the deliverer emptying a full outbox at its own pace.`,
  );
  lines.push('');
  lines.push(
    '| webhooks.concurrency | phase | deliveries (duplicates) | deliveries/s | completions/s | completion → receipt p50 / p99 / max ms | signatures verified | server CPU, ms (µs per delivery) | notes |',
  );
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---|');
  for (const w of webhooks) {
    const label = `${w.concurrency}${w.concurrency === 16 ? ' (default)' : ''}`;
    const l = w.live;
    const liveSpan = span(l.times);
    const liveNotes = `submitting took ${fmt(l.submitMs)} ms; ${l.connections} connection(s) to the receiver${l.ok ? '' : '; **timed out**'}${l.otherErrors.length ? `; ${l.otherErrors.join(', ')}` : ''}`;
    lines.push(
      `| ${label} | live | ${fmt(l.ids.size)} (${l.duplicates}) | ${fmt(perS(l.ids.size, liveSpan))} | ${fmt(perS(l.completedAts.length, span(l.completedAts)))} | ${fmtMs(percentile(l.lags, 50))} / ${fmtMs(percentile(l.lags, 99))} / ${fmtMs(percentile(l.lags, 100))} | ${signatures(l, settings)} | ${fmt(l.cpuMs)} (${fmt((l.cpuMs * 1000) / Math.max(1, l.ids.size))}) | ${liveNotes} |`,
    );
    const b = w.backlog;
    const after = b.times.filter((t) => t >= b.releasedAt);
    const drainMs = after.length > 0 ? Math.max(...after) - b.releasedAt : NaN;
    const backlogNotes = `${b.held} held for ${fmt(b.heldMs)} ms${b.engineDone ? '' : ' (**released before the engine was done**)'}${b.ok ? '' : '; **timed out**'}${b.otherErrors.length ? `; ${b.otherErrors.join(', ')}` : ''}`;
    lines.push(
      `| ${label} | backlog | ${fmt(b.ids.size)} (${b.duplicates}) | ${fmt(perS(after.length, drainMs))} | – | – | ${signatures(b, settings)} | ${fmt(b.cpuMs)} (${fmt((b.cpuMs * 1000) / Math.max(1, after.length))}) | ${backlogNotes} |`,
    );
  }
  lines.push('');
  for (const w of webhooks) {
    lines.push(
      `- concurrency ${w.concurrency}: server RSS at the end ${fmt(w.rss, 1)} MiB; the first request's delivery log: ${w.sampleDelivery}; warn+ log lines ${w.logLines}`,
    );
  }
  if (webhooks.length > 1) {
    const rate = (w) => {
      const after = w.backlog.times.filter((t) => t >= w.backlog.releasedAt);
      return perS(after.length, after.length > 0 ? Math.max(...after) - w.backlog.releasedAt : NaN);
    };
    const [a, ...rest] = webhooks;
    for (const b of rest)
      lines.push(`- backlog deliveries/s, concurrency ${b.concurrency} ÷ ${a.concurrency}: **${ratio(rate(b), rate(a))}**`);
  }
  lines.push('');

  // Part 2
  lines.push(`### SSE fan-out: one request's events to ${fmt(settings.subscribers)} subscribers`, '');
  lines.push(
    `One request whose operation waits for a gate (a file the harness creates) and then emits ${settings.chunks} chunks \`{i, text}\` (${settings.chunkBytes} characters of text) ${settings.paceMs > 0 ? `${settings.paceMs} ms apart` : 'as fast as \`ctx.emit\` returns'} (each is a committed event-log write). The subscribers are node:http clients in the harness process, one connection each, on \`GET /v1/requests/{id}/events\`, connected in batches of ${CONNECT_BATCH} before the gate opens (each has the replay of events 1–2 first). Measured from the gate on: the ${settings.chunks} outputs and the \`completed\` event, per subscriber. events/s = events received by all subscribers ÷ (gate → last subscriber has \`completed\`). A subscriber is complete when it got every seq 1…${settings.chunks + 3}, in order, \`completed\` last, and then the server closed the stream. Lag = receipt − the first receipt of the same event by any subscriber. Server CPU = utime + stime of the Errand child (${1000 / CLK_TCK} ms ticks) from the gate to the end.`,
    '',
  );
  lines.push(
    '| subscribers | connected (ms to connect) | complete, in order | events after the gate | gate → first output / first `completed` / last `completed`, ms | events/s delivered | lag behind first receipt p50 / p99 / max ms | server CPU, ms (µs per event) | server RSS before → connected → peak MiB | harness CPU, ms |',
  );
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const f of fanout) {
    const a = f.analysis;
    lines.push(
      `| ${fmt(f.subscribers)} | ${fmt(f.connected)} (${fmt(f.connectMs)}) | ${fmt(a.complete)} | ${fmt(a.delivered)} | ${fmt(a.firstOutputMs)} / ${fmt(a.producerMs)} / ${fmt(a.lastTerminalMs)} | **${fmt(perS(a.delivered, a.lastTerminalMs))}** | ${fmtMs(percentile(a.lags, 50))} / ${fmtMs(percentile(a.lags, 99))} / ${fmtMs(percentile(a.lags, 100))} | ${fmt(f.cpuSpan)} (${fmt((f.cpuSpan * 1000) / Math.max(1, a.delivered), 1)}) | ${fmt(f.rssBefore, 1)} → ${fmt(f.rssConnected, 1)} → ${fmt(f.rssPeak, 1)} | ${fmt(f.harnessCpuMs)} |`,
    );
  }
  lines.push('');
  for (const f of fanout) {
    const p = f.analysis.problems;
    const issues = [
      p.outOfOrder && `${p.outOfOrder} out of order`,
      p.missingTerminal && `${p.missingTerminal} without a terminal event`,
      p.wrongCount && `${p.wrongCount} with a wrong number of outputs`,
      p.notEndedByServer && `${p.notEndedByServer} not closed by the server`,
      p.afterTerminal && `${p.afterTerminal} with events after the terminal one`,
      p.errors.length > 0 && `errors: ${p.errors.join('; ')}`,
      !f.finished && `**not finished within ${PHASE_TIMEOUT_MS / 1000} s**`,
    ].filter(Boolean);
    lines.push(
      `- ${fmt(f.subscribers)} subscriber(s): request ${f.status}; server CPU while they connected ${fmt(f.cpuConnect)} ms; open descriptors with them connected ${fmt(f.fdsConnected)}; RSS at the end ${fmt(f.rssEnd, 1)} MiB; ${issues.length > 0 ? issues.join(', ') : 'no problems'}; warn+ log lines ${f.logLines}`,
    );
  }
  if (fanout.length > 1) {
    const [one, many] = fanout;
    lines.push(
      `- gate → first \`completed\` (the producer), ${fmt(many.subscribers)} ÷ 1 subscriber: ${ratio(many.analysis.producerMs, one.analysis.producerMs)}; gate → last \`completed\`: ${ratio(many.analysis.lastTerminalMs, one.analysis.lastTerminalMs)}`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

function warnings(settings, webhooks, fanout) {
  const out = [];
  for (const w of webhooks) {
    for (const [name, p] of [
      ['live', w.live],
      ['backlog', w.backlog],
    ]) {
      if (p.ids.size < settings.deliveries)
        out.push(`webhooks ${w.concurrency} ${name}: ${p.ids.size} of ${settings.deliveries} deliveries arrived`);
      if (p.badSignatures > 0 || p.unsigned > 0)
        out.push(`webhooks ${w.concurrency} ${name}: ${p.badSignatures} bad and ${p.unsigned} missing signatures`);
      if (p.otherErrors.length > 0) out.push(`webhooks ${w.concurrency} ${name}: ${p.otherErrors.join(', ')}`);
    }
    if (!w.backlog.engineDone)
      out.push(`webhooks ${w.concurrency} backlog: released after ${HOLD_MAX_MS} ms, before the engine had completed every request`);
  }
  for (const f of fanout) {
    if (f.analysis.complete < f.subscribers)
      out.push(`SSE ${f.subscribers}: only ${f.analysis.complete} of ${f.subscribers} subscribers got every event in order`);
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exit(await main(process.argv.slice(2)));
}
