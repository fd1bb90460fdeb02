/**
 * A node on PostgreSQL, in process: `store.url: postgres://…?schema=` opens
 * and migrates the store, the engine keeps time on the database clock, and a
 * request runs end to end through the HTTP API.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { DatabaseClock } from '../../src/clock/index.js';
import { PostgresStore } from '../../src/store/index.js';
import { json, startHttpServer } from '../helpers/http.js';
import { dropSchema, freshSchema, pgClient, pgSkipReason, schemaUrl } from '../helpers/pg.js';

const skip = await pgSkipReason();

test('a node on a postgres:// URL migrates its schema, follows the database clock, and runs requests', { skip }, async () => {
  const schema = freshSchema();
  after(() => dropSchema(schema));
  const t = await startHttpServer({ overrides: { store: { url: schemaUrl(schema), pool_size: 3 } } });
  after(() => t.close());
  assert.ok(t.server.store instanceof PostgresStore);
  assert.ok(t.server.engine.clock instanceof DatabaseClock, 'nodes sharing a database keep time on its clock');
  const res = await t.inject({ method: 'POST', url: '/v1/operations/echo', payload: { hello: 'pg', async: true } });
  assert.equal(res.statusCode, 202, res.body);
  const id = json(res).request_id as string;
  const done = await t.waitTerminal(id, 10_000);
  assert.equal(done.status, 'completed');
  assert.equal((done.result as { hello?: string }).hello, 'pg');
  // The pool's connections carry the node's id, as the NOTIFY payloads do.
  const observer = await pgClient();
  after(() => observer.end());
  const { rows } = await observer.query<{ name: string }>(
    'SELECT DISTINCT application_name AS name FROM pg_stat_activity WHERE application_name = $1',
    [t.server.engine.nodeId],
  );
  assert.deepEqual(rows, [{ name: t.server.engine.nodeId }]);
});
