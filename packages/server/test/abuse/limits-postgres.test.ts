/**
 * Submission rate limits across nodes: two servers on one PostgreSQL schema
 * draw on the same token bucket (`rate_limits`), so a tenant spreading its
 * flood over both nodes still gets only its burst.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startHttpServer } from '../helpers/http.js';
import { dropSchema, freshSchema, pgSkipReason, schemaUrl } from '../helpers/pg.js';

const skip = await pgSkipReason();

test('two nodes on one database share a tenant bucket: 20 submissions spread over both, burst 10 → 10 accepted', { skip }, async () => {
  const schema = freshSchema();
  after(() => dropSchema(schema));
  const overrides = {
    store: { url: schemaUrl(schema), pool_size: 3 },
    auth: { keys: [{ key: 'key_alpha_123', tenant: 'alpha' }] },
    // 0.001/s: no token comes back while the test runs, whatever the machine's speed.
    limits: { submissions: { rate: 0.001, burst: 10 } },
  };
  const a = await startHttpServer({ overrides });
  after(() => a.close());
  const b = await startHttpServer({ overrides });
  after(() => b.close());
  const headers = { authorization: 'Bearer key_alpha_123' };
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) {
    for (const node of [a, b]) {
      const res = await node.inject({ method: 'POST', url: '/v1/operations/echo?async=true', headers, payload: { i } });
      statuses.push(res.statusCode);
      if (res.statusCode === 429) assert.equal(JSON.parse(res.body).error.type, 'rate_limited');
    }
  }
  assert.equal(statuses.filter((s) => s === 202).length, 10, `statuses: ${statuses.join(' ')}`);
  assert.equal(statuses.filter((s) => s === 429).length, 10);
  assert.deepEqual(statuses.slice(0, 10), Array(10).fill(202), 'the first ten, alternating between the nodes, took the burst');
});
