import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrandError } from '../../src/model/index.js';
import { openStore, SqliteStore } from '../../src/store/index.js';
import { rowFromNewRequest } from '../../src/store/rows.js';
import { makeNewRequest, tempDir } from '../helpers/factories.js';
import { exerciseStore } from './conformance.js';

exerciseStore('sqlite', async () => {
  const { dir, cleanup } = tempDir();
  const store = await openStore({ url: `sqlite:${join(dir, 'errand.db')}` });
  return {
    store,
    cleanup: async () => {
      await store.close();
      cleanup();
    },
  };
});

test('sqlite: committed requests survive closing and reopening the file', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const url = `sqlite:${join(dir, 'nested', 'errand.db')}`;
  const first = await openStore({ url });
  const { request } = await first.requestInsert({ request: makeNewRequest() });
  await first.close();
  const second = await openStore({ url });
  assert.equal((await second.requestGetById({ id: request.id }))?.status, 'pending');
  await second.migrate(); // idempotent
  await second.close();
});

test('sqlite: a store used before migrate() says so', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const store = new SqliteStore({ path: join(dir, 'x.db') });
  await assert.rejects(() => store.requestCounts(), /migrate/);
  await store.close();
});

test('sqlite: an unopenable database file is a store_unavailable error', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  assert.throws(
    () => new SqliteStore({ path: dir }), // a directory, not a file
    (err: unknown) => err instanceof ErrandError && err.type === 'store_unavailable',
  );
});

test('sqlite: a second process (connection) cannot open a database file in use', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const url = `sqlite:${join(dir, 'errand.db')}`;
  const first = await openStore({ url });
  await assert.rejects(
    () => openStore({ url }),
    (err: unknown) => err instanceof ErrandError && err.type === 'store_unavailable' && /in use by another process/.test(err.message),
  );
  await first.close();
  const again = await openStore({ url });
  await again.close();
});

test('sqlite group commit: a write that loses the transaction fails the whole batch, and nothing of it holds', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const { default: Database } = await import('better-sqlite3');
  const { GroupCommit } = await import('../../src/store/sqlite/groupCommit.js');
  const db = new Database(join(dir, 'g.db'));
  t.after(() => db.close());
  db.exec('CREATE TABLE t (v INTEGER)');
  const commits = new GroupCommit(db, (err) => err);
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const a = commits.write(() => insert.run(1));
  const b = commits.write(() => db.exec('ROLLBACK')); // as SQLite does on I/O errors or a full disk
  const c = commits.write(() => insert.run(3));
  const results = await Promise.allSettled([a, b, c]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected', 'rejected'],
  );
  assert.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof ErrandError && r.reason.type === 'store_unavailable'));
  assert.deepEqual(db.prepare('SELECT v FROM t').all(), [], 'neither the earlier nor the later write holds');
  // A write that merely throws fails alone.
  const ok = commits.write(() => insert.run(4));
  const bad = commits.write(() => {
    throw new Error('constraint');
  });
  const [r1, r2] = await Promise.allSettled([ok, bad]);
  assert.equal(r1.status, 'fulfilled');
  assert.equal(r2.status, 'rejected');
  assert.deepEqual(db.prepare('SELECT v FROM t').all(), [{ v: 4 }]);
});

test('sqlite 0005: input and result are stored last, the stats read only covering indexes, and existing rows survive the rebuild', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const file = join(dir, 'errand.db');
  const { default: Database } = await import('better-sqlite3');
  const { MIGRATIONS } = await import('../../src/store/sqlite/migrations/index.js');
  const sql = await import('../../src/store/sqlite/statements.js');

  // A database as an older Errand left it (migrations before 0005), holding a request.
  const old = new Database(file);
  old.exec('CREATE TABLE errand_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
  for (const m of MIGRATIONS.filter((m) => m.version < 5)) {
    old.exec(m.sql);
    old.prepare('INSERT INTO errand_migrations VALUES (?, ?, 0)').run(m.version, m.name);
  }
  const fresh = makeNewRequest({ input: { big: 'x'.repeat(10_000) }, metadata: { k: 1 } });
  old.prepare(sql.REQUEST_INSERT).run(rowFromNewRequest(fresh));
  old.close();

  const store = await openStore({ url: `sqlite:${file}` });
  const read = await store.requestGetById({ id: fresh.id });
  assert.deepEqual([read?.input, read?.metadata, read?.status], [fresh.input, { k: 1 }, 'pending']);
  await store.close();

  const db = new Database(file, { readonly: true });
  t.after(() => db.close());
  const columns = (db.prepare('PRAGMA table_info(requests)').all() as { name: string }[]).map((c) => c.name);
  assert.deepEqual(columns.slice(-2), ['result', 'input'], 'reading a small column never walks a big value’s overflow pages');
  const values = { tenant: 'alpha', from: 0, bucket_ms: 1000, buckets: 30, scan_max: 5000 };
  for (const name of [
    'STATS_WINDOW',
    'STATS_WINDOW_TENANT',
    'STATS_OPEN',
    'STATS_OPEN_TENANT',
    'STATS_WINDOW_COUNT',
    'STATS_WINDOW_COUNT_TENANT',
  ] as const) {
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql[name]}`).all(values) as { detail: string }[])
      .map((p) => p.detail)
      .filter((d) => / requests\b/.test(d));
    assert.ok(plan.length > 0 && plan.every((d) => d.includes('USING COVERING INDEX')), `${name} opens rows: ${plan.join('; ')}`);
  }
});
