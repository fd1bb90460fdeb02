/**
 * A bounded, seeded fuzz of the whole HTTP surface (fast-check). The routes are
 * read from the app's own OpenAPI document, so a new route is fuzzed without
 * touching this file. Each generated input picks a route (documented path
 * parameters filled with real ids, names or junk, sometimes mangled), a method
 * (mostly the documented one), a query, headers (API keys of two tenants and
 * an admin, bad keys, content types, Prefer, Idempotency-Key, If-None-Match,
 * Last-Event-ID, Origin, Host, Accept) and a body (random JSON, shapes close to
 * the real payloads with wrong types, large strings within and beyond the body
 * limit, invalid UTF-8, forms, deep nesting, nothing at all).
 *
 * Asserted on every answer: never a 5xx; every 4xx carries the one error
 * envelope `{"error":{"type","message",…}}`; nothing hangs. At the end: the
 * server answers `/health` over a real port within 100 ms, and the store holds
 * nothing half-written (every request's event log is gapless and agrees with
 * its status, terminal requests carry their outcome, batch items point at a
 * stored batch).
 *
 * Runs on SQLite with auth on (two tenants + an admin key) and auth off, and
 * on PostgreSQL when it is reachable. A `.fuzz.ts` file, outside the
 * `*.test.ts` glob: `npm test` runs it on its own after the other files
 * (`npm run test:fuzz`), so its 10,000+ inputs get the machine rather than a
 * share of it (about a minute on two busy cores). Reproduce a failure with the seed (and
 * path) printed in the failure: `FUZZ_SEED=<seed> [FUZZ_PATH=<path>]`;
 * `FUZZ_RUNS` changes the number of inputs per configuration (`FUZZ_PG_RUNS` on
 * PostgreSQL); `FUZZ_PROFILE=1` reports the slowest inputs.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { REQUEST_STATUSES, isTerminal } from '../../src/model/index.js';
import { openStore, type RequestSummary, type Store } from '../../src/store/index.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http.js';
import { freshSchema, dropSchema, pgSkipReason, schemaUrl } from '../helpers/pg.js';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : 20261202;
const PATH = process.env.FUZZ_PATH;
/** Inputs per configuration: SQLite auth on + SQLite auth off alone make 10,000+. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 5200);
const PG_RUNS = Number(process.env.FUZZ_PG_RUNS ?? Math.min(RUNS, 1000));
/** Longest any one answer may take to start (headers): a hang is a failure, not a slow test. */
const ANSWER_DEADLINE_MS = 10_000;
const BODY_LIMIT = 16 * 1024;

const KEYS = { alpha: 'fuzz-key-tenant-alpha', beta: 'fuzz-key-tenant-beta', admin: 'fuzz-key-admin-0001' } as const;
const AUTH_ON = {
  keys: [
    { key: KEYS.alpha, tenant: 'alpha' },
    { key: KEYS.beta, tenant: 'beta' },
  ],
  admin_keys: [KEYS.admin],
};
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
type Method = (typeof METHODS)[number];

interface Route {
  path: string;
  methods: Method[];
}

/** One generated input, before the run-time pools (ids seen so far) fill it in. */
interface FuzzInput {
  route: number;
  method: Method | null;
  params: ParamChoice[];
  mangle: string | null;
  query: [string, string][];
  headers: Record<string, string>;
  body: BodyChoice;
}

type ParamChoice = { pool: number } | { literal: string };
type BodyChoice = { kind: 'none' } | { kind: 'text'; text: string } | { kind: 'bytes'; bytes: number[] } | { kind: 'json'; value: unknown };

// ---------------------------------------------------------------------------
// Arbitraries

const junk = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(
    '',
    '..',
    '.',
    '%',
    '%00',
    '%ZZ',
    'null',
    'undefined',
    '0',
    '-1',
    '1e309',
    'req_',
    'req_00000000000000000000000000',
    '__proto__',
    'constructor',
  ),
  fc.constantFrom('echo', 'slow', 'fail', 'progress', 'bigint', 'cycle', 'echo-trigger', 'slow-trigger', 'missing'),
  fc.nat({ max: 1e9 }).map(String),
  fc.integer({ min: 60, max: 300 }).map((n) => 'x'.repeat(n)),
);

const param: fc.Arbitrary<ParamChoice> = fc.oneof(
  { weight: 3, arbitrary: fc.nat().map((pool) => ({ pool })) },
  { weight: 2, arbitrary: junk.map((literal) => ({ literal })) },
);

const mangle = fc.oneof(
  { weight: 8, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constantFrom('/', '//', '/../x', '/%2e%2e', '/%', '/%zz', '/extra', '?', '#frag', '/;a=b', '/%C0%AF') },
);

const queryKeys = fc.constantFrom(
  'mode',
  'async',
  'wait',
  'timeout',
  'status',
  'operation',
  'limit',
  'cursor',
  'before',
  'after',
  'tenant',
  'stream',
  'include',
  'since',
  'window',
  'last_event_id',
  'x',
);
const queryValue = fc.oneof(
  fc.constantFrom(
    'sync',
    'async',
    'auto',
    'true',
    'false',
    '0',
    '1',
    '0.1',
    '-1',
    '1e9',
    'NaN',
    '',
    'completed',
    'pending,failed',
    'processing',
    'echo',
    'req_x',
    '%zz',
  ),
  fc.string({ maxLength: 30 }),
  fc.integer({ min: -5, max: 100_000 }).map(String),
);

const validKey = fc.constantFrom(...Object.values(KEYS));
const authHeader = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Record<string, string>>({}) },
  { weight: 6, arbitrary: validKey.map((k) => ({ authorization: `Bearer ${k}` })) },
  { weight: 2, arbitrary: validKey.map((k) => ({ 'x-client-key': k })) },
  { weight: 1, arbitrary: validKey.map((k) => ({ 'x-muxi-client-key': k })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('Bearer', 'Bearer ', 'Basic Zm9vOmJhcg==', 'bearer wrong-key-123', `Bearer ${KEYS.alpha}x`, `Bearer  ${KEYS.beta} `)
      .map((v) => ({ authorization: v })),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((v) => ({ authorization: `Bearer ${v}` })) },
);

const optionalHeader = (name: string, values: fc.Arbitrary<string>): fc.Arbitrary<Record<string, string>> =>
  fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: values.map((v) => ({ [name]: v })) });

const headerText = fc.string({ maxLength: 80 }).map((s) => s.trim());

const headers: fc.Arbitrary<Record<string, string>> = fc
  .tuple(
    authHeader,
    optionalHeader(
      'content-type',
      fc.oneof(
        fc.constantFrom(
          'application/json',
          'application/json; charset=utf-8',
          'application/json; charset=latin1',
          'application/x-www-form-urlencoded',
          'text/plain',
          'multipart/form-data; boundary=xyz',
          'application/octet-stream',
          'text/event-stream',
          '*/*',
          ';',
        ),
        headerText,
      ),
    ),
    optionalHeader(
      'prefer',
      fc.oneof(
        fc.constantFrom('respond-async', 'wait=0', 'wait=1', 'wait=-3', 'wait=abc', 'respond-async, wait=1', 'handling=strict'),
        headerText,
      ),
    ),
    optionalHeader(
      'idempotency-key',
      fc.oneof(
        fc.constantFrom('k1', 'k2', 'same-key'),
        headerText,
        fc.integer({ min: 200, max: 400 }).map((n) => 'i'.repeat(n)),
      ),
    ),
    optionalHeader('if-none-match', fc.oneof(fc.constantFrom('*', '"x"', 'W/"x"', '""', '"a", "b"'), headerText)),
    optionalHeader('last-event-id', fc.oneof(fc.nat({ max: 50 }).map(String), fc.constantFrom('-1', '1e99', 'abc', ''), headerText)),
    optionalHeader(
      'origin',
      fc.constantFrom(
        'http://evil.example',
        'null',
        'http://127.0.0.1:8001',
        'http://localhost:8001',
        'https://rebind.attacker.test',
        'file://',
      ),
    ),
    optionalHeader(
      'host',
      fc.oneof(fc.constantFrom('127.0.0.1:8001', 'localhost', '[::1]:8001', 'evil.example', 'rebind.attacker.test:8001', ''), headerText),
    ),
    optionalHeader('accept', fc.constantFrom('text/event-stream', 'application/json', '*/*', 'text/html', 'application/xml', '')),
  )
  .map((parts) => Object.assign({}, ...parts) as Record<string, string>);

const url = fc.oneof(
  fc.constantFrom(
    'http://127.0.0.1:9/hook',
    'https://example.com/hook',
    'http://[::1]/',
    'http://169.254.169.254/latest',
    'ftp://x',
    'not a url',
    '',
    'http://',
  ),
  fc.webUrl(),
);
const anyScalar = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
const shaped = fc.record(
  {
    input: fc.jsonValue({ maxDepth: 3 }),
    message: fc.oneof(fc.string({ maxLength: 50 }), anyScalar),
    async: fc.oneof(fc.boolean(), anyScalar),
    mode: fc.oneof(fc.constantFrom('sync', 'async', 'auto'), anyScalar),
    webhook_url: fc.oneof(url, anyScalar),
    metadata: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 5 }), anyScalar),
    priority: fc.oneof(fc.integer({ min: -20, max: 20 }), anyScalar),
    delay_seconds: fc.oneof(fc.double({ min: -1, max: 1e6, noNaN: true }), anyScalar),
    run_at: fc.oneof(
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      anyScalar,
    ),
    operation: fc.oneof(fc.constantFrom('echo', 'fail', 'progress', 'slow', 'nope'), anyScalar),
    items: fc.oneof(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 6 }), anyScalar),
    concurrency: fc.oneof(fc.integer({ min: -1, max: 20 }), anyScalar),
    model: fc.oneof(fc.constantFrom('echo', 'slow', 'missing'), anyScalar),
    messages: fc.oneof(
      fc.array(
        fc.record({
          role: fc.oneof(fc.constantFrom('system', 'user', 'assistant', 'tool'), anyScalar),
          content: fc.oneof(fc.string({ maxLength: 40 }), anyScalar),
        }),
        { maxLength: 4 },
      ),
      anyScalar,
    ),
    stream: fc.oneof(fc.boolean(), anyScalar),
    data: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);

/** Payloads every submission route accepts, so the run reaches deep (running, cancelling, retrying real requests). */
const wellFormed = fc.record(
  {
    input: fc.jsonValue({ maxDepth: 3 }),
    message: fc.string({ minLength: 1, maxLength: 40 }),
    priority: fc.integer({ min: -10, max: 10 }),
    metadata: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
    webhook_url: fc.constantFrom('https://example.com/hook', 'http://hooks.example.org/x'),
    items: fc.array(fc.record({ input: fc.jsonValue({ maxDepth: 2 }) }), { minLength: 1, maxLength: 4 }),
    operation: fc.constantFrom('echo', 'fail', 'progress', 'slow'),
    messages: fc.constant([{ role: 'user', content: 'hello' }]),
    model: fc.constantFrom('echo'),
  },
  { requiredKeys: ['input', 'message'] },
);

const body: fc.Arbitrary<BodyChoice> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 5, arbitrary: wellFormed.map((value) => ({ kind: 'json' as const, value })) },
  { weight: 6, arbitrary: shaped.map((value) => ({ kind: 'json' as const, value })) },
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value) => ({ kind: 'json' as const, value })) },
  { weight: 2, arbitrary: fc.string({ maxLength: 200 }).map((text) => ({ kind: 'text' as const, text })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        '{',
        '{"input": {...}}',
        '[...]',
        'message=hi&async=true',
        'input=1&input=2',
        'null',
        '"just a string"',
        '1e999',
        '{"__proto__": {"polluted": true}, "input": {}}',
        '{"constructor": {"prototype": {"x": 1}}}',
        '['.repeat(200) + ']'.repeat(200),
        '{"a":'.repeat(150) + '1' + '}'.repeat(150),
        '\u0000',
        '  ',
      )
      .map((text) => ({ kind: 'text' as const, text })),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 64 })
      .map((bytes) => ({ kind: 'bytes' as const, bytes: [0xc3, 0x28, 0xff, ...bytes] })),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: BODY_LIMIT - 64, max: BODY_LIMIT + 2048 })
      .map((n) => ({ kind: 'text' as const, text: JSON.stringify({ input: { text: 'x'.repeat(Math.max(0, n - 20)) }, message: 'big' }) })),
  },
);

function inputArbitrary(routes: Route[]): fc.Arbitrary<FuzzInput> {
  return fc.record({
    route: fc.nat({ max: routes.length - 1 }),
    method: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
    params: fc.array(param, { minLength: 3, maxLength: 3 }),
    mangle,
    query: fc.array(fc.tuple(queryKeys, queryValue), { maxLength: 4 }),
    headers,
    body,
  });
}

// ---------------------------------------------------------------------------
// Running one input

/** Names the run-time pools draw from, per path parameter. */
interface Pools {
  ids: string[];
  deliveries: string[];
}

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
  streamed: boolean;
}

function concretePath(route: Route, input: FuzzInput, pools: Pools): string {
  let i = 0;
  const path = route.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const choice = input.params[i++ % input.params.length]!;
    if ('literal' in choice) return encodeURIComponent(choice.literal);
    const pool = name === 'delivery_id' ? pools.deliveries : name === 'id' ? pools.ids : null;
    if (pool && pool.length > 0) return pool[choice.pool % pool.length]!;
    const names = ['echo', 'slow', 'fail', 'progress', 'echo-trigger', 'slow-trigger', 'app.js', 'missing'];
    return names[choice.pool % names.length]!;
  });
  const query = input.query.length > 0 ? `?${input.query.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}` : '';
  return `${path}${input.mangle ?? ''}${query}`;
}

function payloadOf(choice: BodyChoice): string | Buffer | undefined {
  switch (choice.kind) {
    case 'none':
      return undefined;
    case 'text':
      return choice.text;
    case 'bytes':
      return Buffer.from(choice.bytes);
    case 'json':
      return JSON.stringify(choice.value) ?? 'null';
  }
}

/** Sends one input through `inject`; streams (SSE) are cut off once their headers arrived. */
async function send(
  server: TestHttpServer,
  method: Method,
  url: string,
  headers: Record<string, string>,
  payload: string | Buffer | undefined,
): Promise<Answer> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ANSWER_DEADLINE_MS} ms`)), ANSWER_DEADLINE_MS);
  });
  try {
    const res = await Promise.race([
      server.server.app.inject({
        method,
        url,
        headers,
        ...(payload === undefined ? {} : { payload }),
        payloadAsStream: true,
        signal: abort.signal,
      }),
      deadline,
    ]);
    const stream = res.stream() as Readable;
    const type = String(res.headers['content-type'] ?? '');
    if (type.startsWith('text/event-stream')) {
      abort.abort();
      stream.destroy();
      return { status: res.statusCode, headers: res.headers, body: '', streamed: true };
    }
    const chunks: Buffer[] = [];
    const read = (async () => {
      for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
    })();
    await Promise.race([read, deadline]);
    return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), streamed: false };
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

function checkAnswer(method: Method, url: string, answer: Answer): void {
  const where = `${method} ${url} → ${answer.status}\n${answer.body.slice(0, 500)}`;
  assert.ok(answer.status < 500, `a 5xx: ${where}`);
  if (answer.status >= 400 && method !== 'HEAD') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.body);
    } catch {
      assert.fail(`a ${answer.status} without a JSON body: ${where}`);
    }
    const error = (parsed as { error?: { type?: unknown; message?: unknown } } | null)?.error;
    assert.ok(
      error && typeof error.type === 'string' && typeof error.message === 'string',
      `a ${answer.status} without the error envelope: ${where}`,
    );
  }
}

/** Collects ids from answers so later inputs hit real requests, batches and deliveries. */
function harvest(answer: Answer, pools: Pools): void {
  if (answer.status >= 300 || answer.body === '' || pools.ids.length >= 400) return;
  for (const match of answer.body.matchAll(/"(?:request_id|id|batch_id|delivery_id)":"((?:req|bat|batch|dlv|del)_[0-9A-Za-z]+)"/g)) {
    const id = match[1]!;
    const pool = /^(dlv|del)_/.test(id) ? pools.deliveries : pools.ids;
    if (!pool.includes(id)) pool.push(id);
  }
}

// ---------------------------------------------------------------------------
// Checks after the run

/** Nothing half-written: read every stored request and its event log straight from the store. */
async function checkStore(store: Store, requestIds: string[]): Promise<number> {
  const requests: RequestSummary[] = [];
  let beforeId: string | undefined;
  for (let page = 0; page < 200; page++) {
    const batch = await store.requestList({ tenant: null, beforeId, limit: 200 });
    requests.push(...batch);
    if (batch.length < 200) break;
    beforeId = batch[batch.length - 1]!.id;
  }
  for (const id of requestIds) {
    if (!id.startsWith('req_')) continue;
    assert.ok(
      requests.some((r) => r.id === id) || (await store.tombstoneGet({ id })) !== null,
      `request ${id} was acknowledged but is not stored`,
    );
  }
  for (const request of requests) {
    const what = `request ${request.id} (${request.operation}, ${request.status}, attempt ${request.attempt})`;
    assert.ok((REQUEST_STATUSES as readonly string[]).includes(request.status), `${what}: unknown status`);
    assert.ok(request.attempt >= 0 && request.attempt <= request.max_attempts, `${what}: attempt outside 0..${request.max_attempts}`);
    if (isTerminal(request.status)) assert.notEqual(request.completed_at, null, `${what}: terminal without completed_at`);
    if (request.status === 'completed') assert.equal(request.error, null, `${what}: completed with an error`);
    if (request.status === 'failed') assert.notEqual(request.error, null, `${what}: failed without an error`);
    if (request.status === 'processing')
      assert.ok(request.attempt >= 1 && request.started_at !== null, `${what}: processing without a started attempt`);
    if (request.batch_id !== null)
      assert.notEqual(await store.batchGetById({ id: request.batch_id }), null, `${what}: its batch ${request.batch_id} is missing`);
    const events = await store.eventListAfter({ id: request.id, afterSeq: 0, limit: 100_000 });
    events.forEach((event, i) => assert.equal(event.seq, i + 1, `${what}: event log has a gap at ${i + 1}`));
    const statuses = events.filter((e) => e.type === 'status').map((e) => (e.data as { status?: unknown } | null)?.status);
    assert.ok(statuses.length > 0, `${what}: no status event`);
    assert.equal(
      statuses[statuses.length - 1],
      request.status,
      `${what}: its last status event says ${String(statuses[statuses.length - 1])}`,
    );
  }
  return requests.length;
}

/** `/health` over a real socket: best of three, so one scheduling hiccup on a busy machine is not a verdict. */
async function healthLatencyMs(server: TestHttpServer): Promise<number> {
  const base = await server.server.listen(0);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

// ---------------------------------------------------------------------------

interface Setup {
  name: string;
  runs: number;
  auth: boolean;
  storeUrl?: () => Promise<{ url: string; cleanup: () => Promise<void> }>;
  skip?: string | false;
}

const pgSkip = await pgSkipReason();
const SETUPS: Setup[] = [
  { name: 'SQLite, auth on (two tenants + admin)', runs: RUNS, auth: true },
  { name: 'SQLite, auth off', runs: RUNS, auth: false },
  {
    name: 'PostgreSQL, auth on',
    runs: PG_RUNS,
    auth: true,
    skip: pgSkip,
    storeUrl: async () => {
      const schema = freshSchema();
      return { url: schemaUrl(schema), cleanup: () => dropSchema(schema) };
    },
  },
];

describe('fuzz: every route, method, header and body shape', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  });

  for (const setup of SETUPS) {
    test(
      `${setup.name}: ${setup.runs} inputs, no 5xx, the envelope on every 4xx, alive and consistent after`,
      { skip: setup.skip ?? false, timeout: 240_000 },
      async (t) => {
        const external = setup.storeUrl ? await setup.storeUrl() : undefined;
        const server = await startHttpServer({
          overrides: {
            server: { body_limit: BODY_LIMIT, sync_wait_limit: 0.2, long_poll_max: 0.2, sse_keep_alive: 60 },
            ...(external ? { store: { url: external.url } } : { store: { synchronous: 'normal' } }),
            ...(setup.auth ? { auth: AUTH_ON } : {}),
            engine: { concurrency: 8 },
            // The throttles stop a flood at the door (test/abuse/limits.test.ts covers them): off here, so
            // the generated inputs reach the routes behind them instead of mostly answering 429.
            limits: { failed_auth: { max: 0 }, submissions: { rate: 1_000_000, burst: 1_000_000 } },
            // `slow` holds until aborted: a short timeout and no retries keep it from taking every slot.
            operations: { slow: { timeout: 0.3, retry: { max_attempts: 1 } } },
            workflow: { retry: { max_attempts: 2, initial_delay: 0.05, jitter: 0 } },
            // Every webhook target resolves to loopback, which the guard refuses: nothing leaves the machine.
            webhooks: { backoff: ['1h'] },
          },
          test: { resolve: () => Promise.resolve([{ address: '127.0.0.1', family: 4 }]) },
        });
        cleanups.push(async () => {
          await server.close();
          await external?.cleanup();
        });

        const doc = JSON.parse((await server.inject({ method: 'GET', url: '/openapi.json' })).body) as {
          paths: Record<string, Record<string, unknown>>;
        };
        const routes: Route[] = Object.entries(doc.paths).map(([path, ops]) => ({
          path,
          methods: Object.keys(ops)
            .map((m) => m.toUpperCase())
            .filter((m): m is Method => (METHODS as readonly string[]).includes(m)),
        }));
        assert.ok(routes.length >= 20, `the OpenAPI document lists the routes (${routes.length})`);

        const pools: Pools = { ids: [], deliveries: [] };
        const acknowledged: string[] = [];
        let sent = 0;
        let streamed = 0;
        const statusCounts = new Map<number, number>();
        const slowest: [number, string][] = [];
        const started = performance.now();
        const property = fc.asyncProperty(inputArbitrary(routes), async (input) => {
          const route = routes[input.route]!;
          const method = input.method ?? route.methods[input.params.length % route.methods.length] ?? 'GET';
          const url = concretePath(route, input, pools);
          const t0 = performance.now();
          const answer = await send(server, method, url, input.headers, payloadOf(input.body));
          const took = performance.now() - t0;
          if (process.env.FUZZ_PROFILE) slowest.push([took, `${method} ${url} ${answer.status}`]);
          sent += 1;
          if (answer.streamed) streamed += 1;
          statusCounts.set(answer.status, (statusCounts.get(answer.status) ?? 0) + 1);
          checkAnswer(method, url, answer);
          if (answer.status === 202 || answer.status === 200 || answer.status === 201) {
            const before = pools.ids.length;
            harvest(answer, pools);
            if (method === 'POST') acknowledged.push(...pools.ids.slice(before));
          }
        });
        try {
          await fc.assert(property, { seed: SEED, numRuns: setup.runs, endOnFailure: true, ...(PATH ? { path: PATH } : {}) });
        } catch (err) {
          throw new Error(
            `fuzz failed; reproduce with FUZZ_SEED=${SEED} (and FUZZ_PATH from the report below)\n${(err as Error).message}`,
            { cause: err },
          );
        }
        const elapsed = Math.round(performance.now() - started);
        if (process.env.FUZZ_PROFILE) {
          slowest.sort((a, b) => b[0] - a[0]);
          const total = slowest.reduce((n, [ms]) => n + ms, 0);
          t.diagnostic(
            `in requests ${Math.round(total)} ms; slowest ${slowest
              .slice(0, 15)
              .map(([ms, what]) => `${Math.round(ms)} ${what.slice(0, 100)}`)
              .join('\n')}`,
          );
        }
        t.diagnostic(
          `seed ${SEED}: ${sent} inputs in ${elapsed} ms, ${streamed} streams; statuses ${JSON.stringify(Object.fromEntries([...statusCounts].sort((a, b) => a[0] - b[0])))}`,
        );
        assert.ok(sent >= setup.runs, `ran ${sent} inputs`);
        assert.ok(
          [...statusCounts.keys()].some((s) => s >= 200 && s < 300),
          'some inputs were accepted (the fuzz reaches past validation)',
        );

        const latency = await healthLatencyMs(server);
        t.diagnostic(`/health over a real port: ${latency.toFixed(1)} ms`);
        assert.ok(latency < 100, `/health answered in ${latency.toFixed(1)} ms after the fuzz`);

        // Stop the node (handlers aborted, claims given back), then read what it left in the store with a fresh connection.
        await server.server.close(0);
        const store = await openStore({ url: server.server.config.store.url });
        try {
          const count = await checkStore(store, acknowledged);
          t.diagnostic(`${count} stored requests checked`);
        } finally {
          await store.close();
        }
      },
    );
  }
});
