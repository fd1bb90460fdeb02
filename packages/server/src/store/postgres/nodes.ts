/**
 * Node sessions: how a node proves it is alive, and how rescuers tell a dead
 * node from a live one without waiting for its leases to expire
 * (docs/decisions/0017-dead-node-from-its-session.md).
 *
 * - **Register.** Each node keeps one dedicated connection (application_name
 *   `<node id>:node`) holding a session-level advisory lock keyed by its owner
 *   id (schema-qualified hash, like locks.ts), then upserts its `nodes` row
 *   (clearing `lost_at`). PostgreSQL releases the lock when the session ends:
 *   at once when the process dies (its socket closes), within about 11 s when
 *   its host vanishes (the TCP keepalives this session sets). The connection
 *   reconnects by itself (backoff 100 to 500 ms) and re-registers.
 * - **Probe** (in the rescue transaction, leases.ts). `pg_try_advisory_xact_lock_shared`
 *   on each registered owner's key succeeds only when no session holds the
 *   lock; held until commit, it also keeps that owner from re-registering
 *   until the rescue has committed. The first sweep to see a free lock writes
 *   `lost_at`; a sweep `deadNodeAfterMs` later, the lock still free, rescues
 *   the owner's running requests (store/rules.ts `rescueOutcome`, as for an
 *   expired lease) and deletes the row once none is left. The delay is what
 *   keeps a database restart (every session ends at once, every live node
 *   re-registers within about a second) from handing live work around.
 * - Rows are locked `FOR UPDATE SKIP LOCKED`: two rescuers never wait on each
 *   other; one handles a given node per sweep.
 */
import type pg from 'pg';
import type { NodeRegisterParams, NodeRegistration } from '../nodes.js';
import type { ConnectionSettings, Tx } from './connection.js';
import { NotifyListener } from './listener.js';

/** The advisory lock key of an owner (bigint), in SQL: `$1` is the owner. */
const NODE_KEY = `hashtextextended(current_schema() || ':node:' || $1, 0)`;

/**
 * Server-side TCP keepalives of the node's session (user-settable): the server
 * notices a node whose host vanished (no FIN, e.g. a partition or a lost
 * machine) after 5 s idle plus 3 unanswered probes 2 s apart, about 11 s,
 * instead of the operating system's default of hours.
 */
const KEEPALIVES = 'SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3';

export interface NodeSessionTarget {
  settings: ConnectionSettings;
  /** The session's application_name (shown in `pg_stat_activity`). */
  applicationName: string;
}

/** Opens the node's session and registers it (see the file header); resolves after the first attempt. */
export async function registerNode(target: NodeSessionTarget, params: NodeRegisterParams): Promise<NodeRegistration> {
  const log = params.log.child({ component: 'node-session', owner: params.owner });
  let held = false;
  let live: pg.Client | undefined;
  const listener = new NotifyListener({
    url: target.settings.connectionString,
    options: target.settings.options,
    channels: [],
    applicationName: target.applicationName,
    timers: params.timers,
    log,
    what: 'node session',
    // Retry at least twice a second: a live node must be registered again well before other nodes' timeout
    // (measured after a database restart: 0.7 to 1.3 s with a 1 s cap, against the 2 s default timeout).
    maxBackoffMs: 500,
    // A slow answer is not a dead session: dropping it would free the lock and hand this live node's work to others
    // (a database busy for 5 s must not cost duplicate runs). A broken connection errors at once anyway; this
    // deadline only catches one that went silent (a partition), which the server ends on its side by keepalives.
    pingDeadlineMs: 30_000,
    // After a database restart a connect whose SYN was lost waits for its retransmit: give up on it and try a fresh
    // one well within other nodes' dead-node timeout (default 2 s) instead of waiting out the 5 s default.
    connectTimeoutMs: 1000,
    onNotification: () => undefined,
    onSession: async (client) => {
      await client.query(KEEPALIVES);
      // Waited for (briefly), not tried: rescuers probe this lock with a shared try-lock for the length of their
      // sweep, and with several nodes sweeping a bare try could keep failing while this node's `lost_at` ages. A
      // queued exclusive request also makes the probes that come after it fail, so they count this node alive.
      await client.query(`SELECT set_config('lock_timeout', '1500', false)`);
      try {
        await client.query(`SELECT pg_advisory_lock(${NODE_KEY})`, [params.owner]);
      } catch (err) {
        // 55P03: its own previous session the server has not closed yet still holds it: try again shortly.
        if ((err as { code?: unknown }).code !== '55P03') throw err;
        throw new Error(`another session holds node ${params.owner}'s lock (its previous session, not closed yet by the server?)`, {
          cause: err,
        });
      } finally {
        await client.query(`SELECT set_config('lock_timeout', '0', false)`).catch(() => {});
      }
      await client.query(
        `INSERT INTO nodes (owner, registered_at, lost_at)
         VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, NULL)
         ON CONFLICT (owner) DO UPDATE SET registered_at = EXCLUDED.registered_at, lost_at = NULL`,
        [params.owner],
      );
      live = client;
    },
    onConnected: () => {
      held = true;
      params.onChange(true);
    },
    onDisconnected: () => {
      live = undefined;
      if (!held) return;
      held = false;
      params.onChange(false);
    },
  });
  await listener.start();
  return {
    get held() {
      return held;
    },
    async stop() {
      held = false;
      // Unlocked before the connection closes, so other nodes see it at once (not when the server notices the close).
      await live?.query(`SELECT pg_advisory_unlock(${NODE_KEY})`, [params.owner]).catch(() => undefined);
      live = undefined;
      await listener.stop();
    },
  };
}

/** A registered node whose session is gone (its lock free), as one rescue sweep sees it. */
interface FreeNode {
  owner: string;
  lost_at: number | null;
}

/**
 * In a rescue transaction: the owners whose session has been gone at least
 * `afterMs` at `now` (their requests are to be rescued). Marks newly lost ones.
 */
export async function deadOwners(tx: Tx, now: number, afterMs: number): Promise<string[]> {
  const { rows } = await tx.query<FreeNode>(
    `SELECT owner, lost_at FROM nodes
     WHERE pg_try_advisory_xact_lock_shared(${NODE_KEY.replace('$1', 'owner')})
     ORDER BY owner
     FOR UPDATE SKIP LOCKED`,
  );
  if (rows.length === 0) return [];
  const newlyLost = rows.filter((r) => r.lost_at === null).map((r) => r.owner);
  if (newlyLost.length > 0) await tx.query('UPDATE nodes SET lost_at = $2 WHERE owner = ANY($1)', [newlyLost, now]);
  return rows.filter((r) => r.lost_at !== null && r.lost_at <= now - afterMs).map((r) => r.owner);
}

/** In a rescue transaction, after rescuing: forgets dead owners that hold no running request any more. */
export async function forgetDeadOwners(tx: Tx, owners: readonly string[]): Promise<void> {
  if (owners.length === 0) return;
  await tx.query(
    `DELETE FROM nodes n WHERE n.owner = ANY($1)
     AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.status = 'processing' AND r.lease_owner = n.owner)`,
    [owners],
  );
}
