/**
 * The OpenAPI document (`GET /openapi.json`): valid OpenAPI 3.1; in step with
 * the routes the app registers (every route documented, every documented
 * route registered); describes the async contract (202 + Location +
 * Retry-After, states, webhook callbacks and their signature headers, SSE
 * event types, Prefer, Idempotency-Key, error types per status, key schemes,
 * the /v1/tasks alias); and is served, with the /docs page, without a key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { ERROR_CATALOG, REQUEST_STATUSES } from '../../src/model/index.js';
import { startHttpServer, type TestHttpServer } from '../helpers/http.js';

/** A parsed JSON document, walked freely by the assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
const KEY = { authorization: 'Bearer fmc_alpha_key' };

let t: TestHttpServer;
let doc: Json;

before(async () => {
  t = await startHttpServer({ overrides: { auth: { keys: [{ key: 'fmc_alpha_key', tenant: 'alpha' }], admin_keys: ['adm_secret_key'] } } });
  const res = await t.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(res.statusCode, 200, res.body);
  doc = res.json();
});
after(() => t.close());

/** `METHOD /path` of every route the app registers, from Fastify's route tree (HEAD, added for every GET, left out). */
function registeredRoutes(tree: string): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+)(?: \(([^)]*)\))?/.exec(line);
    if (!match?.[2]) continue;
    stack.length = (match[1] ?? '').length / 4;
    stack.push(match[2]);
    const path = stack.join('').replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
    for (const method of (match[3] ?? '').split(',').map((m) => m.trim())) {
      if (method !== '' && method !== 'HEAD') routes.push(`${method} ${path}`);
    }
  }
  return routes;
}

/** Swagger UI's own files (`/docs/json`, `/docs/static/…`): part of the /docs page, not of the API. */
function isDocsAsset(route: string): boolean {
  const path = route.split(' ')[1] ?? '';
  return path !== '/docs' && path.startsWith('/docs');
}

function documentedRoutes(): string[] {
  return Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    METHODS.filter((m) => (item as Json)[m] !== undefined).map((m) => `${m.toUpperCase()} ${path}`),
  );
}

function operations(): { route: string; op: Json }[] {
  return Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    METHODS.filter((m) => (item as Json)[m] !== undefined).map((m) => ({
      route: `${m.toUpperCase()} ${path}`,
      op: (item as Json)[m] as Json,
    })),
  );
}

describe('GET /openapi.json', () => {
  test('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2)?.slice(0, 4000));
    assert.equal(validator.version, '3.1');
  });

  test('documents every registered route, and every documented route is registered', () => {
    const registered = registeredRoutes(t.server.app.printRoutes({ commonPrefix: false })).filter((r) => !isDocsAsset(r));
    assert.ok(
      registered.includes('GET /v1/requests/{id}') && registered.includes('POST /v1/chat'),
      `route tree not understood: ${registered.join('; ')}`,
    );
    const documented = documentedRoutes();
    const undocumented = registered.filter((r) => !documented.includes(r));
    assert.deepEqual(undocumented, [], `routes missing from the OpenAPI document: ${undocumented.join(', ')}`);
    const phantom = documented.filter((r) => {
      const [method, path] = r.split(' ') as [string, string];
      return !t.server.app.hasRoute({ method, url: path.replace(/\{([^}]+)\}/g, ':$1') });
    });
    assert.deepEqual(phantom, [], `documented routes the app does not register: ${phantom.join(', ')}`);
  });

  test('operation ids are unique and every path parameter is declared', () => {
    const ids = operations().map(({ op }) => op.operationId as string);
    assert.equal(new Set(ids).size, ids.length, `duplicate operationIds: ${ids.filter((id, i) => ids.indexOf(id) !== i).join(', ')}`);
  });

  test('the submission endpoints answer 200 (sync) or 202 with Location and Retry-After, take Prefer and Idempotency-Key, and call back', () => {
    const submissions = ['/v1/chat', '/v1/triggers/{name}', '/v1/operations/{name}', '/v1/bots/{bot_id}/actions/{action}'];
    for (const path of submissions) {
      const op = doc.paths[path].post as Json;
      assert.deepEqual(op.responses['200'].content['application/json'].schema, { $ref: '#/components/schemas/StatusResource' }, path);
      const accepted = op.responses['202'] as Json;
      assert.deepEqual(accepted.content['application/json'].schema, { $ref: '#/components/schemas/AcceptedResource' }, path);
      assert.equal(doc.components.headers[accepted.headers.Location.$ref.split('/').pop()].required, true, `${path}: Location`);
      assert.equal(doc.components.headers[accepted.headers['Retry-After'].$ref.split('/').pop()].required, true, `${path}: Retry-After`);
      const params = (op.parameters as Json[]).map((p) => (p.$ref ? doc.components.parameters[p.$ref.split('/').pop()] : p).name);
      assert.ok(params.includes('Prefer') && params.includes('Idempotency-Key'), `${path}: ${params.join(', ')}`);
      const callback = doc.components.callbacks[(op.callbacks.requestFinished.$ref as string).split('/').pop()!] as Json;
      const [expression, item] = Object.entries(callback)[0] as [string, Json];
      assert.match(expression, /webhook_url/);
      const headers = (item.post.parameters as Json[]).map((p) => p.name);
      assert.deepEqual(headers, ['webhook-id', 'webhook-timestamp', 'webhook-signature']);
      assert.deepEqual(item.post.requestBody.content['application/json'].schema, { $ref: '#/components/schemas/WebhookPayload' });
    }
    assert.ok(doc.paths['/v1/chat'].post.responses['200'].content['text/event-stream'], 'streamed chat');
    assert.ok(doc.paths['/v1/batches'].post.callbacks.batchFinished, 'the batch.completed webhook');
  });

  test('the status resource lists every state, each described', () => {
    const status = doc.components.schemas.RequestStatus as Json;
    assert.deepEqual(status.enum, [...REQUEST_STATUSES]);
    for (const state of REQUEST_STATUSES) assert.match(status.description as string, new RegExp(`\`${state}\``));
    assert.deepEqual(doc.components.schemas.StatusResource.properties.status, { $ref: '#/components/schemas/RequestStatus' });
  });

  test('each error status lists exactly the catalog types of that status, and operations only use those statuses', () => {
    const byStatus = new Map<number, string[]>();
    for (const [type, entry] of Object.entries(ERROR_CATALOG)) {
      if (entry.scope === 'http') byStatus.set(entry.status, [...(byStatus.get(entry.status) ?? []), type]);
    }
    for (const [status, types] of byStatus) {
      const response = doc.components.responses[`Error${status}`] as Json;
      assert.ok(response, `no Error${status} response`);
      const schema = response.content['application/json'].schema as Json;
      assert.deepEqual(schema.allOf[1].properties.error.properties.type.enum, types, `Error${status}`);
      for (const type of types) assert.match(response.description as string, new RegExp(`\`${type}\``));
    }
    for (const { route, op } of operations()) {
      for (const [code, response] of Object.entries(op.responses as Json)) {
        const ref = (response as Json).$ref as string | undefined;
        if (ref?.startsWith('#/components/responses/Error')) assert.equal(ref, `#/components/responses/Error${code}`, `${route} ${code}`);
      }
      if (route.startsWith('POST /v1/') || route.startsWith('GET /v1/') || route.startsWith('DELETE /v1/')) {
        assert.ok(op.responses['401'], `${route} documents no 401`);
      }
    }
  });

  test('the SSE endpoints describe each event type and its data', () => {
    const events = (doc.components.schemas.RequestEventMessage.oneOf as Json[]).map((alt) => alt.properties.event.const as string);
    assert.deepEqual(events.sort(), ['cancelled', 'completed', 'failed', 'output', 'progress', 'status']);
    for (const path of ['/v1/requests/{id}/events', '/v1/tasks/{id}/events']) {
      assert.deepEqual(doc.paths[path].get.responses['200'].content['text/event-stream'].schema, {
        $ref: '#/components/schemas/RequestEventMessage',
      });
    }
    const chat = (doc.components.schemas.ChatStreamMessage.oneOf as Json[]).map((alt) => alt.properties.event.const as string);
    assert.ok(chat.includes('request') && chat.includes('output') && chat.includes('completed'), chat.join(', '));
    assert.ok(doc.paths['/v1/events'].get.responses['200'].content['text/event-stream']);
  });

  test('the three key headers are security schemes; health, readiness and the document need none', () => {
    const schemes = doc.components.securitySchemes as Json;
    assert.equal(schemes.bearerAuth.scheme, 'bearer');
    assert.deepEqual([schemes.clientKey.name, schemes.muxiClientKey.name], ['X-Client-Key', 'X-Muxi-Client-Key']);
    assert.deepEqual(doc.security, [{ bearerAuth: [] }, { clientKey: [] }, { muxiClientKey: [] }]);
    for (const path of ['/health', '/ready', '/openapi.json', '/docs']) assert.deepEqual(doc.paths[path].get.security, [], path);
  });

  test('every /v1/requests endpoint is also documented under /v1/tasks', () => {
    for (const path of Object.keys(doc.paths as Json).filter((p) => p.startsWith('/v1/requests'))) {
      const alias = path.replace('/v1/requests', '/v1/tasks');
      const methods = METHODS.filter((m) => doc.paths[path][m]);
      assert.deepEqual(
        METHODS.filter((m) => doc.paths[alias]?.[m]),
        methods,
        alias,
      );
    }
  });
});

describe('served without a key', () => {
  test('/openapi.json and /docs answer without a key while /v1 needs one', async () => {
    assert.equal((await t.inject({ method: 'GET', url: '/v1/requests' })).statusCode, 401);
    assert.equal((await t.inject({ method: 'GET', url: '/v1/requests', headers: KEY })).statusCode, 200);
    const json = await t.inject({ method: 'GET', url: '/openapi.json' });
    assert.match(String(json.headers['content-type']), /^application\/json/);
    const page = await t.inject({ method: 'GET', url: '/docs' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    // Offline: every script and stylesheet comes from this server, none from a CDN.
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '');
    assert.ok(assets.length > 0);
    for (const asset of assets) {
      assert.doesNotMatch(asset, /^(https?:)?\/\//, `external asset ${asset}`);
      const url = asset.startsWith('/') ? asset : `/docs/${asset.replace(/^\.\//, '')}`;
      const res = await t.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, `${url}: ${res.statusCode}`);
    }
    // The page reads the same document.
    const served = await t.inject({ method: 'GET', url: '/docs/json' });
    assert.deepEqual(served.json(), doc);
  });
});
