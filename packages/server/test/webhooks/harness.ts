/**
 * An in-process Errand server for webhook tests: temp SQLite file, a manual
 * clock that starts at the real time (so `standardwebhooks` accepts the
 * signatures' timestamps), a resolver stub (no DNS, no packet but to
 * 127.0.0.1), test secrets, and 127.0.0.1 allowlisted unless the test says
 * otherwise. Operations: `echo` returns its input; `fail` throws a
 * non-retryable `tool_error`.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import { createServer, type ErrandServer } from '../../src/server.js';
import type { Resolver } from '../../src/net/index.js';
import type { DeliveryEventMap, DeliveryEventName } from '../../src/webhooks/index.js';
import { ManualClock } from '../helpers/clock.js';
import { tempDir } from '../helpers/factories.js';
import { SAFETY_NET_MS } from '../helpers/timing.js';

export const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

/** Keys: `alpha-key-1` → tenant alpha, `beta-key-1` → tenant beta. */
export const ALPHA = { authorization: 'Bearer alpha-key-1' };
export const BETA = { authorization: 'Bearer beta-key-1' };

export interface WebhookHarness {
  server: ErrandServer;
  clock: ManualClock;
  /** Host names the resolver stub was asked for, in order. */
  lookups: string[];
  inject(options: InjectOptions): Promise<LightMyRequestResponse>;
  /** Submits `input` to `operation` async; returns the request id. */
  submit(operation: string, input: unknown, webhookUrl: string, query?: string, headers?: Record<string, string>): Promise<string>;
  /** The next deliverer event `name` matching `predicate` (bounded real-time wait). */
  waitFor<K extends DeliveryEventName>(
    name: K,
    predicate?: (p: DeliveryEventMap[K]) => boolean,
    timeoutMs?: number,
  ): Promise<DeliveryEventMap[K]>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  overrides?: Record<string, unknown>;
  /** Name → addresses the resolver stub answers (anything else: ENOTFOUND). */
  dns?: Record<string, string[] | (() => string[])>;
}

export async function startWebhookServer(options: HarnessOptions = {}): Promise<WebhookHarness> {
  const { dir, cleanup } = tempDir('errand-hooks-');
  writeFileSync(join(dir, 'echo.mjs'), 'export default { async run(input) { return input; } };\n');
  writeFileSync(
    join(dir, 'fail.mjs'),
    "export default { async run() { throw Object.assign(new Error('boom'), { retryable: false, type: 'tool_error' }); } };\n",
  );
  const base: Record<string, unknown> = {
    store: { url: `sqlite:${join(dir, 'errand.db')}` },
    logging: { level: 'silent' },
    auth: {
      keys: [
        { key: 'alpha-key-1', tenant: 'alpha' },
        { key: 'beta-key-1', tenant: 'beta' },
      ],
    },
    operations: { echo: { module: './echo.mjs' }, fail: { module: './fail.mjs' } },
    workflow: { retry: { jitter: 0 } },
    async: { webhook_timeout: 2 },
    webhooks: { allow: ['127.0.0.1'], backoff: ['5s', '30s'], lease: '10s' },
  };
  const merged = merge(base, options.overrides ?? {});
  const config = loadConfig({ overrides: merged, baseDir: dir, env: {} });
  const lookups: string[] = [];
  const resolve: Resolver = async (hostname) => {
    lookups.push(hostname);
    const entry = options.dns?.[hostname];
    const addresses = typeof entry === 'function' ? entry() : entry;
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (test resolver)`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  const clock = new ManualClock(Date.now());
  const server = await createServer({ config, log: pino({ level: 'silent' }), test: { clock, random: () => 0.5, resolve } });
  const keep = <T>(p: Promise<T>) => {
    const timer = setTimeout(() => {}, 30_000);
    return p.finally(() => clearTimeout(timer));
  };
  const harness: WebhookHarness = {
    server,
    clock,
    lookups,
    inject: (o) => keep(server.app.inject(o)),
    async submit(operation, input, webhookUrl, query = '', headers = ALPHA) {
      const res = await harness.inject({
        method: 'POST',
        url: `/v1/operations/${operation}?async=true&webhook_url=${encodeURIComponent(webhookUrl)}${query}`,
        payload: input as Record<string, unknown>,
        headers,
      });
      if (res.statusCode !== 202) throw new Error(`submit answered ${res.statusCode}: ${res.body}`);
      return (JSON.parse(res.body) as { request_id: string }).request_id;
    },
    waitFor(name, predicate = () => true, timeoutMs = SAFETY_NET_MS) {
      return keep(
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            off();
            reject(new Error(`timed out after ${timeoutMs} ms waiting for ${name}`));
          }, timeoutMs);
          const off = server.engine.webhooks.events.on(name, (payload) => {
            if (!predicate(payload)) return;
            clearTimeout(timer);
            off();
            resolve(payload);
          });
        }),
      );
    },
    async close() {
      await server.close(0);
      cleanup();
    },
  };
  return harness;
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    const plain = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
    out[k] = plain(v) && plain(cur) ? merge(cur, v) : v;
  }
  return out;
}
