/**
 * The config file schema: the one source of types, defaults and validation for
 * `errand.yaml`. Unknown keys are rejected; every problem is reported together
 * (see load.ts). Durations accept seconds or strings ("30s", "5m"); the parsed
 * values are milliseconds. docs/config.md documents every key and default.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDurationMs, parseSizeBytes } from './units.js';

/** A duration in config (seconds or "5m"), parsed to milliseconds. */
function duration() {
  return z.union([z.number(), z.string()]).transform((value, ctx) => {
    const ms = parseDurationMs(value);
    if (typeof ms === 'string') {
      ctx.addIssue({ code: 'custom', message: ms });
      return z.NEVER;
    }
    return ms;
  });
}

/** Longest duration a timer can wait (2^31 − 1 ms, about 24.8 days). */
const DURATION_MAX_MS = 2_147_483_647;

function nonNegativeDuration() {
  return duration()
    .refine((ms) => ms >= 0, { message: 'must be 0 or more' })
    .refine((ms) => ms <= DURATION_MAX_MS, { message: 'must be at most 24 days ("24d")' });
}

function positiveDuration() {
  return duration()
    .refine((ms) => ms > 0, { message: 'must be greater than 0' })
    .refine((ms) => ms <= DURATION_MAX_MS, { message: 'must be at most 24 days ("24d")' });
}

/**
 * A number of seconds in config (the file format of `async.threshold_seconds`
 * and `async.webhook_timeout`: a plain number, no unit strings), parsed to
 * milliseconds like every other duration. `prefault` (not `default`) so a
 * default goes through the conversion too.
 */
function secondsAsMs(seconds: z.ZodNumber) {
  return seconds.transform((value) => Math.round(value * 1000));
}

function size() {
  return z.union([z.number(), z.string()]).transform((value, ctx) => {
    const bytes = parseSizeBytes(value);
    if (typeof bytes === 'string') {
      ctx.addIssue({ code: 'custom', message: bytes });
      return z.NEVER;
    }
    return bytes;
  });
}

/** A Standard Webhooks signing secret: `whsec_` + base64 of 24–64 random bytes. */
const WEBHOOK_SECRET = /^whsec_[A-Za-z0-9+/]+={0,2}$/;
function webhookSecrets() {
  const one = z
    .string()
    .regex(WEBHOOK_SECRET, 'must be "whsec_" followed by base64 (e.g. whsec_$(openssl rand -base64 32))')
    .refine((s) => {
      const bytes = Buffer.from(s.slice('whsec_'.length), 'base64').length;
      return bytes >= 24 && bytes <= 64;
    }, 'must encode 24 to 64 random bytes (openssl rand -base64 32)');
  // One secret, or several while rotating (every one signs; receivers accept any).
  return z.union([one, z.array(one).min(1).max(5)]);
}

/** An IP address or a CIDR (`10.0.0.0/8`, `fd00::/8`). */
function isAddressOrCidr(entry: string): boolean {
  const [address = '', bits, extra] = entry.split('/');
  if (extra !== undefined) return false;
  const family = isIP(address);
  if (bits === undefined) return family !== 0;
  return family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/** A `webhooks.allow` entry: a host name, an IP address, or a CIDR (`10.0.0.0/8`, `fd00::/8`). */
function isAllowEntry(entry: string): boolean {
  if (entry.includes('/')) return isAddressOrCidr(entry);
  return (
    isIP(entry) !== 0 || /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,62}[a-z0-9_])?)*\.?$/i.test(entry)
  );
}

/** An allowlist of the SSRF guard (`webhooks.allow`, `fetch.allow`). */
const allowList = () =>
  z.array(z.string().min(1).max(253).refine(isAllowEntry, 'must be a host name, an IP address or a CIDR such as 10.0.0.0/8')).default([]);

/** Names of operations, triggers and tenants: what may appear in a URL path segment. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const name = (what: string) =>
  z.string().regex(NAME_PATTERN, `${what} must be 1-64 letters, digits, "_", "." or "-", starting with a letter or digit`);

/** Tenant every request is filed under when auth is off (no keys). */
export const OPEN_TENANT = 'default';
/** Tenant that admin-key submissions are filed under. */
export const ADMIN_TENANT = 'admin';
/**
 * Tenant names no key may hold: a key of tenant `admin` or `default` would read,
 * cancel and retry what admins and auth-off callers submitted. Compared without
 * case, so `Admin` is refused too.
 */
export const RESERVED_TENANTS: readonly string[] = [ADMIN_TENANT, OPEN_TENANT];

function isReservedTenant(tenant: string): boolean {
  return RESERVED_TENANTS.includes(tenant.toLowerCase());
}

const retryFields = {
  /** Attempts in all, the first included. */
  max_attempts: z.number().int().min(1).max(100),
  /** Seconds before the first retry. */
  initial_delay: duration(),
  /** Cap on any one retry delay, seconds. */
  max_delay: duration(),
  /** Each retry waits `backoff_factor` times longer than the one before. */
  backoff_factor: z.number().min(1).max(10),
  /** Random spread of each delay, as a fraction (0.1 = ±10%); 0 for exact delays. */
  jitter: z.number().min(0).max(1),
};

const retrySchema = z.strictObject({
  max_attempts: retryFields.max_attempts.default(3),
  initial_delay: retryFields.initial_delay.prefault(1.0),
  max_delay: retryFields.max_delay.prefault(60.0),
  backoff_factor: retryFields.backoff_factor.default(2.0),
  jitter: retryFields.jitter.default(0.1),
});

/** An environment variable's name (for `command.env` keys and `llm.api_key_env`). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const httpUrl = () => z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** `http` kind: forwards the input to an upstream URL (see operations/kinds/http.ts). */
const httpKindSchema = z.strictObject({
  url: httpUrl(),
  method: z.enum(['POST', 'PUT', 'PATCH', 'GET', 'DELETE']).default('POST'),
  /** Sent with every call; `${VAR}` in values is read from the environment at start-up. */
  headers: z.record(z.string().regex(HEADER_NAME, 'must be an HTTP header name'), z.string()).default({}),
  /** Limit on one upstream call; unset: only the operation's task timeout. */
  timeout: positiveDuration().optional(),
  /** Most of the upstream's answer read; a bigger one fails the attempt. */
  max_response: size().prefault('10mb'),
});

/** `command` kind: runs a local program, input on stdin (see operations/kinds/command.ts). */
const commandKindSchema = z.strictObject({
  run: z
    .array(z.string().min(1, 'must not be empty'), {
      error: 'must be a list: the program and its arguments, e.g. [node, ./script.mjs] (no shell is used; write [sh, -c, "…"] for one)',
    })
    .min(1, 'must name the program to run, e.g. [node, ./script.mjs]'),
  /** Working folder, relative to the config file's folder (default: that folder). */
  cwd: z.string().min(1).optional(),
  /** Set in the program's environment, over the base (PATH, HOME, LANG, LC_*, TZ, TMPDIR) and the pass-through. */
  env: z.record(z.string().regex(ENV_NAME, 'must be an environment variable name'), z.string()).default({}),
  /** Errand's own environment variables copied to the program when set; nothing else of Errand's environment is. */
  env_passthrough: z
    .array(
      z
        .string()
        .regex(ENV_NAME, 'must be an environment variable name')
        .refine(
          (name) => !name.startsWith('ERRAND_'),
          "ERRAND_* variables hold Errand's own settings and keys and are never passed to programs",
        ),
    )
    .max(200)
    .default([]),
  /** How long the program has to exit after SIGTERM (cancel, timeout) before its process group gets SIGKILL. */
  grace: positiveDuration().prefault('5s'),
  /** Most bytes of stdout captured; more fails the attempt and stops the program. */
  max_output: size().prefault('1mb'),
});

/** `llm` kind: an OpenAI-compatible chat completions endpoint, streamed (see operations/kinds/llm.ts). */
const llmKindSchema = z
  .strictObject({
    /** Up to and including the API version, e.g. https://api.openai.com/v1; `/chat/completions` is appended. */
    base_url: httpUrl(),
    model: z.string().min(1).max(200),
    /** Name of the environment variable holding the API key (sent as a bearer token); unset: no key is sent. */
    api_key_env: z.string().regex(ENV_NAME, 'must be an environment variable name such as OPENAI_API_KEY').optional(),
    system: z.string().max(100_000).optional(),
    temperature: z.number().min(0).max(2).optional(),
    max_tokens: z.number().int().min(1).max(1_000_000).optional(),
    /** Limit on one upstream call, stream included; unset: only the operation's task timeout. */
    timeout: positiveDuration().optional(),
  })
  // The key itself is filled in by load.ts from api_key_env: it is never written in the file.
  .transform((llm) => ({ ...llm, api_key: undefined as string | undefined }));

/** The ways an operation can be implemented; exactly one is given. */
const OPERATION_KINDS = ['module', 'http', 'command', 'llm'] as const;

const operationSchema = z
  .strictObject({
    /** Path to a .js, .mjs or .ts file whose default export is the operation (relative to the config file). */
    module: z.string().min(1, 'module must name a .js, .mjs or .ts file').optional(),
    http: httpKindSchema.optional(),
    command: commandKindSchema.optional(),
    llm: llmKindSchema.optional(),
    description: z.string().max(500).optional(),
    /** Per-attempt timeout (overrides workflow.timeouts.task_timeout). */
    timeout: positiveDuration().optional(),
    /** Whole-request timeout across attempts (overrides workflow.timeouts.workflow_timeout). */
    workflow_timeout: positiveDuration().optional(),
    retry: z
      .strictObject({
        max_attempts: retryFields.max_attempts.optional(),
        initial_delay: retryFields.initial_delay.optional(),
        max_delay: retryFields.max_delay.optional(),
        backoff_factor: retryFields.backoff_factor.optional(),
        jitter: retryFields.jitter.optional(),
      })
      .optional(),
    /** Most requests of this operation running at once on this node. */
    concurrency: z.number().int().min(1).max(10_000).optional(),
    /** Prior guess of the run time in seconds, used until the operation has history. */
    estimate_seconds: z
      .number()
      .min(0)
      .max(86_400 * 24)
      .optional(),
  })
  .superRefine((op, ctx) => {
    const given = OPERATION_KINDS.filter((kind) => op[kind] !== undefined);
    if (given.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'needs one of module (a .js/.mjs/.ts file), http, command or llm' });
    }
    for (const extra of given.slice(1)) {
      ctx.addIssue({
        code: 'custom',
        path: [extra],
        message: `cannot be combined with ${given[0]}: an operation has exactly one of module, http, command or llm`,
      });
    }
  });

/** A token bucket of submissions: `rate` per second, at most `burst` at once. */
const submissionBucket = z.strictObject({
  /** Submissions per second, sustained (decimals allowed: 0.5 is one every 2 s). */
  rate: z.number().positive().max(1_000_000),
  /** Submissions accepted at once from a full bucket (a batch counts its items). */
  burst: z.number().int().min(1).max(10_000_000),
});

/** `limits`: the one limits layer (http/limits/): connection timeouts and cap, per-caller caps, key throttling, submission rates. */
const limitsSchema = z.strictObject({
  /** Most connections open at once on this node; further ones are closed as they arrive. */
  max_connections: z.number().int().min(1).max(1_000_000).default(4096),
  /** Longest a client may take to send a request's headers. */
  headers_timeout: positiveDuration().prefault('10s'),
  /** Longest a client may take to send a whole request, headers and body. */
  request_timeout: positiveDuration().prefault('60s'),
  /** How long a kept-alive connection may sit idle between requests. */
  keep_alive_timeout: positiveDuration().prefault('72s'),
  /** A connection silent this long while a non-streaming answer is sent is closed (event streams, long-polls and sync waits are exempt). */
  idle_timeout: positiveDuration().prefault('60s'),
  /** Event streams one caller (a tenant key; admin keys share one) may hold open on this node. */
  streams_per_caller: z.number().int().min(1).max(1_000_000).default(100),
  /** Long-polls (`?wait=`) and sync waits one caller may hold open at once on this node. */
  waits_per_caller: z.number().int().min(1).max(1_000_000).default(100),
  failed_auth: z
    .strictObject({
      /** Requests with a missing or unknown key one client address may make per window; past it, the address gets 429 until the window ends. 0 turns the throttle off. */
      max: z.number().int().min(0).max(1_000_000).default(20),
      window: positiveDuration().prefault('1m'),
    })
    .prefault({}),
  submissions: z
    .strictObject({
      /** Per tenant, every operation together: submissions per second. */
      rate: submissionBucket.shape.rate.default(100),
      /** Per tenant: submissions accepted at once from a full bucket. */
      burst: submissionBucket.shape.burst.default(200),
      /** Per-tenant overrides of rate and burst. */
      tenants: z.record(name('tenant'), submissionBucket).default({}),
      /** Per-operation buckets, each tenant its own, on top of the tenant's. */
      operations: z.record(name('operation'), submissionBucket).default({}),
    })
    .prefault({}),
});

const workflowSchema = z.strictObject({
  timeouts: z
    .strictObject({
      task_timeout: positiveDuration().prefault(300),
      workflow_timeout: positiveDuration().prefault(3600),
    })
    .prefault({}),
  retry: retrySchema.prefault({}),
});

export const configSchema = z
  .strictObject({
    server: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8001),
        /** Largest request body accepted; bigger bodies get 413. */
        body_limit: size().prefault('1mb'),
        /**
         * Which peers are trusted proxies whose `X-Forwarded-For` names the client (Fastify's `trustProxy`):
         * false (the TCP peer is the client), true (any peer), a hop count, or a list of addresses / CIDRs.
         */
        trust_proxy: z
          .union([
            z.boolean(),
            z.number().int().min(1).max(100),
            z.array(z.string().min(1).max(64).refine(isAddressOrCidr, 'must be an IP address or a CIDR such as 10.0.0.0/8')).min(1),
          ])
          .default(false),
        /** How long SIGTERM waits for running handlers before exiting. */
        shutdown_grace: duration().prefault(30),
        /** Longest a sync request holds its HTTP call before answering 202 (default: the workflow timeout). */
        sync_wait_limit: positiveDuration().optional(),
        /** Cap on `GET /v1/requests/{id}?wait=N` long-polls. */
        long_poll_max: positiveDuration().prefault(30),
        /** Interval of `: keep-alive` comments on idle Server-Sent Events streams. */
        sse_keep_alive: positiveDuration().prefault(15),
        /** Bytes an SSE stream may leave unread in its socket buffer before the client is cut off as too slow. */
        sse_max_buffer: size().prefault('1mb'),
      })
      .prefault({}),
    store: z
      .strictObject({
        /** `sqlite:PATH` (relative to the config file), `sqlite::memory:`, or later `postgres://…`. */
        url: z.string().min(1).default('sqlite:./data/errand.db'),
        /** SQLite fsync policy: `full` survives power loss, `normal` only process crashes. */
        synchronous: z.enum(['full', 'normal']).default('full'),
        /** PostgreSQL: how long a starting node keeps retrying an unreachable database before it exits (0: no retry). */
        startup_timeout: duration()
          .refine((ms) => ms >= 0 && ms <= DURATION_MAX_MS, { message: 'must be between 0 and 24 days ("24d")' })
          .prefault('60s'),
        /** PostgreSQL: most connections this node opens (the pool). */
        pool_size: z.number().int().min(1).max(1000).default(10),
        /** PostgreSQL: how long a query waits for a connection before answering `store_unavailable`. */
        connect_timeout: positiveDuration().prefault('5s'),
      })
      .prefault({}),
    auth: z
      .strictObject({
        keys: z
          .array(z.strictObject({ key: z.string().min(8, 'an API key must be at least 8 characters'), tenant: name('tenant') }))
          .default([]),
        admin_keys: z.array(z.string().min(8, 'an admin key must be at least 8 characters')).default([]),
      })
      .prefault({}),
    async: z
      .strictObject({
        mode: z.enum(['auto', 'sync', 'async']).default('auto'),
        /** Written in seconds; parsed to milliseconds (the key keeps its file name). */
        threshold_seconds: secondsAsMs(z.number().min(0)).prefault(30),
        webhook_url: z
          .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
          .nullable()
          .default(null),
        webhook_retries: z.number().int().min(0).max(50).default(3),
        /** Longest one webhook attempt may take. Written in seconds; parsed to milliseconds. */
        webhook_timeout: secondsAsMs(z.number().positive().max(300)).prefault(10),
      })
      .prefault({}),
    workflow: workflowSchema.prefault({}),
    engine: z
      .strictObject({
        /** Handlers running at once on this node. */
        concurrency: z.number().int().min(1).max(10_000).default(16),
        /** How long a claim is valid without a heartbeat. */
        lease_duration: positiveDuration().prefault(30),
        /** How often a running request's lease is renewed. */
        heartbeat_interval: positiveDuration().prefault(10),
        /** How often the dispatcher looks for due work when nothing woke it. */
        poll_interval: positiveDuration().prefault(1),
        /**
         * On a shared store (PostgreSQL): how long a node's database session must stay gone before other nodes take
         * its running requests back, without waiting for their leases to expire; 0 = lease expiry only.
         */
        dead_node_timeout: nonNegativeDuration().prefault(2),
        /** This node's name in lease_owner and logs (default: the hostname); a per-process suffix is always added. */
        node_id: z.string().min(1).max(128).optional(),
      })
      .prefault({}),
    operations: z.record(name('operation name'), operationSchema).default({}),
    chat: z.strictObject({ operation: name('chat.operation').optional() }).prefault({}),
    openai: z
      .strictObject({
        /** Operations exposed as models by /v1/chat/completions and /v1/models (default: chat.operation when set). */
        models: z.array(name('openai.models[]')).max(1000).optional(),
      })
      .prefault({}),
    triggers: z
      .record(name('trigger name'), z.strictObject({ operation: name('operation'), description: z.string().max(500).optional() }))
      .default({}),
    retention: z
      .strictObject({
        /** Finished requests older than this are purged with their events. */
        ttl: positiveDuration().prefault('7d'),
        /** How long a purged request's id keeps answering 410 Gone (with its final status) instead of 404. */
        tombstone_ttl: positiveDuration().prefault('7d'),
        sweep_interval: positiveDuration().prefault('1m'),
      })
      .prefault({}),
    estimator: z
      .strictObject({
        /** Completed requests an operation needs before its history replaces its prior. */
        min_samples: z.number().int().min(1).max(1000).default(5),
        /** Weight an older sample keeps per newer one (0.97: halves after ~23 samples). */
        decay: z.number().gt(0).max(1).default(0.97),
      })
      .prefault({}),
    batches: z
      .strictObject({
        /** Most items one batch may hold; larger batches are refused with 422. */
        max_items: z.number().int().min(1).max(100_000).default(1000),
        /** Items of one batch running at once when the submission does not say. */
        default_concurrency: z.number().int().min(1).max(10_000).default(10),
      })
      .prefault({}),
    idempotency: z
      .strictObject({
        /** How long an Idempotency-Key is remembered (at least 24 h is recommended). */
        ttl: positiveDuration().prefault('24h'),
      })
      .prefault({}),
    webhooks: z
      .strictObject({
        /** Default signing secret(s) for tenants without their own; null sends deliveries unsigned. */
        secret: webhookSecrets().nullable().default(null),
        /** Per-tenant signing secrets (two while rotating). */
        secrets: z.record(name('tenant'), webhookSecrets()).default({}),
        /** Hosts or CIDRs deliveries may reach although they are loopback, private, link-local or metadata addresses. */
        allow: allowList(),
        /** Host names resolved from this map (name → IP address) instead of DNS, like curl's --resolve; still checked against the guard. */
        hosts: z.record(z.string().min(1).max(253), z.union([z.ipv4(), z.ipv6()], { error: 'must be an IP address' })).default({}),
        /** Wait before each retry (the last entry repeats). */
        backoff: z.array(positiveDuration()).min(1).max(50).prefault(['5s', '30s', '2m', '10m', '1h']),
        /** Deliveries sent at once by this node. */
        concurrency: z.number().int().min(1).max(1000).default(16),
        /** Most of a receiver's response body read; then the connection is dropped. */
        max_response_bytes: size().prefault('64kb'),
        /** How long a node's claim on a delivery lasts; another node takes it over after that. Must exceed async.webhook_timeout. */
        lease: positiveDuration().prefault('1m'),
      })
      .prefault({}),
    fetch: z
      .strictObject({
        /** Hosts or CIDRs operations' fetches (ctx.fetch, http and llm redirects) may reach although they are loopback, private, link-local or metadata addresses. */
        allow: allowList(),
        /** Redirects one fetch follows, each hop checked by the guard; 0 follows none. */
        max_redirects: z.number().int().min(0).max(20).default(5),
        /** Longest one fetch may take, connect to last body byte. */
        timeout: positiveDuration().prefault('30s'),
        /** Most of a response body one fetch reads; more fails with fetch_response_too_large. */
        max_response_bytes: size().prefault('10mb'),
      })
      .prefault({}),
    limits: limitsSchema.prefault({}),
    logging: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .prefault({}),
    observability: z
      .strictObject({
        /** Request, queue, duration and estimator metrics (the seeds' switch); off leaves process and webhook metrics. */
        track_async_tasks: z.boolean().default(true),
        metrics: z
          .strictObject({
            /** Serve Prometheus metrics at all. */
            enabled: z.boolean().default(true),
            /** Who may read /metrics on the API port: `admin` (an admin key; open when auth is off) or `none` (anyone). */
            auth: z.enum(['admin', 'none']).default('admin'),
            /** Serve /metrics on this separate port instead of the API port (no key asked there; bind it privately). */
            port: z.number().int().min(0).max(65535).optional(),
            /** Interface of the separate metrics listener. */
            host: z.string().min(1).default('127.0.0.1'),
            /** Distinct values kept per label (operation, tenant); later values are counted as `other`. */
            max_label_values: z.number().int().min(1).max(10_000).default(100),
          })
          .prefault({}),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    if (config.engine.heartbeat_interval >= config.engine.lease_duration) {
      ctx.addIssue({
        code: 'custom',
        path: ['engine', 'heartbeat_interval'],
        message: 'must be shorter than engine.lease_duration (a third of it is a good choice)',
      });
    }
    if (config.chat.operation !== undefined && !Object.hasOwn(config.operations, config.chat.operation)) {
      ctx.addIssue({
        code: 'custom',
        path: ['chat', 'operation'],
        message: `names operation "${config.chat.operation}", which is not declared under operations`,
      });
    }
    for (const [i, model] of (config.openai.models ?? []).entries()) {
      if (!Object.hasOwn(config.operations, model)) {
        ctx.addIssue({
          code: 'custom',
          path: ['openai', 'models', i],
          message: `names operation "${model}", which is not declared under operations`,
        });
      }
    }
    for (const [trigger, spec] of Object.entries(config.triggers)) {
      if (!Object.hasOwn(config.operations, spec.operation)) {
        ctx.addIssue({
          code: 'custom',
          path: ['triggers', trigger, 'operation'],
          message: `names operation "${spec.operation}", which is not declared under operations`,
        });
      }
    }
    if (config.webhooks.lease <= config.async.webhook_timeout) {
      ctx.addIssue({
        code: 'custom',
        path: ['webhooks', 'lease'],
        message: 'must be longer than async.webhook_timeout (twice as long is a good choice)',
      });
    }
    if (config.limits.headers_timeout > config.limits.request_timeout) {
      ctx.addIssue({ code: 'custom', path: ['limits', 'headers_timeout'], message: 'must not be longer than limits.request_timeout' });
    }
    for (const operation of Object.keys(config.limits.submissions.operations)) {
      if (!Object.hasOwn(config.operations, operation)) {
        ctx.addIssue({
          code: 'custom',
          path: ['limits', 'submissions', 'operations', operation],
          message: `names operation "${operation}", which is not declared under operations`,
        });
      }
    }
    const seen = new Set<string>();
    for (const [i, { key, tenant }] of config.auth.keys.entries()) {
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['auth', 'keys', i, 'key'], message: 'is listed twice' });
      seen.add(key);
      if (isReservedTenant(tenant)) {
        ctx.addIssue({
          code: 'custom',
          path: ['auth', 'keys', i, 'tenant'],
          message: `"${tenant}" is reserved (${RESERVED_TENANTS.join(', ')}: admin submissions and auth-off traffic are filed under these names); choose another tenant name`,
        });
      }
    }
    for (const [i, key] of config.auth.admin_keys.entries()) {
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['auth', 'admin_keys', i], message: 'is also a tenant key or listed twice' });
      seen.add(key);
    }
  });

/** The config file as written (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** The validated config with defaults applied; durations in ms, sizes in bytes. */
export type ConfigFile = z.output<typeof configSchema>;
export type OperationConfig = ConfigFile['operations'][string];
export type HttpKindConfig = NonNullable<OperationConfig['http']>;
export type CommandKindConfig = NonNullable<OperationConfig['command']>;
export type LlmKindConfig = NonNullable<OperationConfig['llm']>;
export type LimitsConfig = ConfigFile['limits'];
