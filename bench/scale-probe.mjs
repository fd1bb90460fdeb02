/**
 * Loaded into the Errand child of the scale suite with `node --import`
 * (bench/scale.mjs): counts what the store driver is asked to do, without
 * changing it, and writes the counts as JSON to $BENCH_SCALE_PROBE_OUT when
 * the process exits (the suite stops the server with SIGTERM, so 'exit' runs).
 *
 * - node-postgres: every `Client.query` (pool queries go through it), split
 *   into explicit transactions (BEGIN … COMMIT on one client), statements
 *   inside them, and statements outside any (autocommit; `SELECT …` counted
 *   apart, as they write no WAL).
 * - better-sqlite3: every statement run (`run`, `get`, `all`, `iterate`),
 *   `exec` calls, `COMMIT`s (each one a WAL commit, fsynced under
 *   `synchronous = FULL`), and rows changed (`run().changes`).
 *
 * The counts are per process since start; the suite reads them after a stop,
 * so a measurement is one server's whole life (start-up, the jobs, idle polls).
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const out = process.env.BENCH_SCALE_PROBE_OUT;
const counts = {
  pg: { statements: 0, transactions: 0, inTransaction: 0, autocommitWrites: 0, autocommitReads: 0 },
  sqlite: { statements: 0, execs: 0, commits: 0, changes: 0 },
};

try {
  const pg = require('pg');
  const query = pg.Client.prototype.query;
  const open = new WeakSet();
  pg.Client.prototype.query = function probedQuery(config, ...rest) {
    const text = (typeof config === 'string' ? config : (config?.text ?? '')).trimStart().slice(0, 12).toUpperCase();
    const c = counts.pg;
    c.statements += 1;
    if (text.startsWith('BEGIN')) {
      open.add(this);
      c.transactions += 1;
    } else if (text.startsWith('COMMIT') || text.startsWith('ROLLBACK')) {
      open.delete(this);
    } else if (open.has(this)) {
      c.inTransaction += 1;
    } else if (text.startsWith('SELECT') || text.startsWith('SHOW') || text.startsWith('LISTEN')) {
      c.autocommitReads += 1;
    } else {
      c.autocommitWrites += 1;
    }
    return query.call(this, config, ...rest);
  };
} catch {
  /* not installed: nothing to count */
}

try {
  const Database = require('better-sqlite3');
  const scratch = new Database(':memory:');
  const Statement = Object.getPrototypeOf(scratch.prepare('SELECT 1'));
  scratch.close();
  const c = counts.sqlite;
  for (const method of ['get', 'all', 'iterate']) {
    const original = Statement[method];
    Statement[method] = function probed(...args) {
      c.statements += 1;
      return original.apply(this, args);
    };
  }
  const run = Statement.run;
  Statement.run = function probedRun(...args) {
    c.statements += 1;
    const info = run.apply(this, args);
    c.changes += info.changes;
    return info;
  };
  const exec = Database.prototype.exec;
  Database.prototype.exec = function probedExec(sql) {
    c.execs += 1;
    if (/^\s*COMMIT/i.test(sql)) c.commits += 1;
    return exec.call(this, sql);
  };
} catch {
  /* not installed: nothing to count */
}

if (out) process.on('exit', () => writeFileSync(out, JSON.stringify(counts)));
