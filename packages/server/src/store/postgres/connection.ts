/**
 * Connecting: the store URL (with Errand's own `schema` parameter), the pool,
 * and the transaction helper every write goes through.
 */
import pg from 'pg';
import { ErrandError } from '../../model/index.js';
import { storeCommits } from '../commits.js';
import { translatePgError } from './errors.js';

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/db?schema=name`; every other parameter is node-postgres'. */
  url: string;
  /** Schema holding Errand's tables (overrides `?schema=`); default: the connection's search_path (`public`). */
  schema?: string | undefined;
  /** Most connections this node opens (default 10). */
  poolSize?: number | undefined;
  /** How long to wait for a connection (new or from the pool) before answering `store_unavailable`, in ms (default 5000). */
  connectTimeoutMs?: number | undefined;
  /** This node's id, set as each connection's `application_name` (the `n` of NOTIFY payloads). */
  nodeId?: string | undefined;
}

export interface ConnectionSettings {
  connectionString: string;
  schema: string | undefined;
  /** Server options sent at connect (`-c search_path=…`). */
  options: string | undefined;
}

const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;

/** Splits Errand's `schema` parameter off a store URL; the rest goes to node-postgres. */
export function connectionSettings(url: string, schemaOption?: string): ConnectionSettings {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`store.url: "${url}" is not a valid postgres:// URL`);
  }
  const schema = schemaOption ?? parsed.searchParams.get('schema') ?? undefined;
  parsed.searchParams.delete('schema');
  if (schema !== undefined && !SCHEMA.test(schema)) {
    throw new Error(`store.url: schema "${schema}" must be a lower-case SQL identifier (letters, digits, _; at most 63)`);
  }
  const extra = parsed.searchParams.get('options');
  parsed.searchParams.delete('options');
  const options =
    [schema === undefined ? undefined : `-c search_path=${schema}`, extra ?? undefined].filter(Boolean).join(' ') || undefined;
  return { connectionString: parsed.toString(), schema, options };
}

/** PostgreSQL keeps at most 63 bytes of application_name; the `n` of NOTIFY payloads is this. */
export function applicationName(nodeId: string): string {
  const bytes = Buffer.from(nodeId, 'utf8');
  if (bytes.length <= 63) return nodeId;
  let end = 63;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // never cut a UTF-8 sequence
  return bytes.subarray(0, end).toString('utf8');
}

/** Our transactions are never idle between statements for more than a moment of JavaScript. */
const IDLE_IN_TRANSACTION_MS = 15_000;

// BIGINT (epoch ms, counts) as numbers: every value the store keeps fits in 2^53.
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export function createPool(options: PostgresStoreOptions, settings: ConnectionSettings): pg.Pool {
  const pool = new pg.Pool({
    connectionString: settings.connectionString,
    options: settings.options,
    application_name: applicationName(options.nodeId ?? 'errand'),
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    // TCP keepalives notice a database host that vanished without closing the socket (a partition).
    keepAlive: true,
    // A node frozen mid-transaction (stopped, swapping) must not hold its row and advisory locks, and so
    // stall every other node, for longer than this: the server ends its session and the locks go.
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    types,
  });
  // An idle connection that dies (database restart) is dropped by the pool and
  // replaced on next use; without a listener the error would crash the process.
  pool.on('error', () => undefined);
  return pool;
}

/** A connection borrowed for one transaction. */
export type Tx = pg.PoolClient;

/**
 * Runs `fn` in a transaction on one pooled connection and commits; resolves
 * only after COMMIT succeeded. Any failure rolls back; connection failures
 * become `store_unavailable`, and the broken connection is discarded.
 */
export async function transaction<T>(pool: pg.Pool, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const client = await connect(pool);
  let broken: Error | undefined;
  // A checked-out connection that dies emits 'error' with no pool listener attached: without
  // this one the process would crash. The failing query rejects too; we discard the connection.
  const onError = (err: Error) => {
    broken = err;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    storeCommits.inc();
    return result;
  } catch (cause) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError as Error;
    }
    throw translatePgError(cause);
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/** Commands whose single statement is a commit of its own (counted in `errand_store_commits_total`). */
const WRITE_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

/** One statement outside a transaction (reads, and single-statement writes that are atomic on their own). */
export async function query<R extends pg.QueryResultRow>(pool: pg.Pool, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
  try {
    const result = await pool.query<R>(text, values);
    if (WRITE_COMMANDS.has(result.command)) storeCommits.inc();
    return result;
  } catch (cause) {
    throw translatePgError(cause);
  }
}

async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (cause) {
    throw translatePgError(cause);
  }
}

export function closedError(): ErrandError {
  return new ErrandError('store_unavailable', 'The store is closed.');
}
