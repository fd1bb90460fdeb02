/**
 * `errand_store_commits_total`: the commits this process made to its store —
 * one per SQLite group transaction (GroupCommit.flush), one per PostgreSQL
 * `transaction()` and one per single-statement write outside a transaction.
 * Reads and failed commits are not counted. It is the number behind "commits
 * per job" in bench/peers.mjs: batching shows up here first.
 *
 * A process-wide counter registered in no registry; metrics/ adds it to the
 * node's registry. One process runs one store, so it is that store's count.
 */
import { Counter } from 'prom-client';

export const storeCommits = new Counter({
  name: 'errand_store_commits_total',
  help: 'Commits this process made to its store (SQLite group transactions, PostgreSQL transactions and single-statement writes).',
  registers: [],
});
