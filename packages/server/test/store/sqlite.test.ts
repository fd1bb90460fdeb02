import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrandError } from '../../src/model/index.js';
import { openStore, SqliteStore } from '../../src/store/index.js';
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
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
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
