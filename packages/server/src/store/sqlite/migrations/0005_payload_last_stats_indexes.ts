/**
 * 0005: keep the cost of reading a request's small columns independent of its
 * input and result.
 *
 * 1. The `requests` table is rebuilt with `result` and `input` as its last
 *    columns. SQLite stores a row's values in column order and a long value
 *    spills into a chain of overflow pages; reading any column stored after it
 *    (`status`, `created_at`, …) walks that chain page by page. With the big
 *    values last, filters, lists, claims and status reads stop at the row's
 *    first page. Every index is recreated as it was.
 * 2. Covering indexes for `requestStatsByOperation` (GET /v1/stats), so it is
 *    answered without opening a row at all: windows by creation time (all
 *    tenants, one tenant) and the open requests.
 */
const COLUMNS = `id, tenant, operation, mode, status, progress, error, attempt, max_attempts, run_at, lease_owner, lease_expires_at,
  task_timeout_ms, deadline, webhook_url, idempotency_key, priority, estimated_ms, metadata, retry_of, batch_id, created_at, started_at,
  completed_at, updated_at, last_seq, result, input`;

export const migration0005 = {
  version: 5,
  name: 'payload_last_stats_indexes',
  sql: `
CREATE TABLE requests_rebuilt (
  id               TEXT PRIMARY KEY,
  tenant           TEXT    NOT NULL,
  operation        TEXT    NOT NULL,
  mode             TEXT    NOT NULL CHECK (mode IN ('sync', 'async')),
  status           TEXT    NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
  progress         TEXT,                       -- JSON Progress
  error            TEXT,                       -- JSON RequestError
  attempt          INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  run_at           INTEGER NOT NULL,           -- epoch ms
  lease_owner      TEXT,
  lease_expires_at INTEGER,
  task_timeout_ms  INTEGER NOT NULL,
  deadline         INTEGER NOT NULL,
  webhook_url      TEXT,
  idempotency_key  TEXT,
  priority         INTEGER NOT NULL DEFAULT 0,
  estimated_ms     INTEGER,
  metadata         TEXT,                       -- JSON
  retry_of         TEXT,
  batch_id         TEXT,
  created_at       INTEGER NOT NULL,
  started_at       INTEGER,
  completed_at     INTEGER,
  updated_at       INTEGER NOT NULL,
  last_seq         INTEGER NOT NULL DEFAULT 0, -- seq of the newest event
  result           TEXT,                       -- JSON; NULL until completed. Big values last (see above).
  input            TEXT    NOT NULL            -- JSON
) STRICT;
INSERT INTO requests_rebuilt (${COLUMNS}) SELECT ${COLUMNS} FROM requests;
DROP TABLE requests;
ALTER TABLE requests_rebuilt RENAME TO requests;

CREATE INDEX requests_ready    ON requests (priority DESC, run_at, id) WHERE status = 'pending';
CREATE INDEX requests_leases   ON requests (lease_expires_at)          WHERE status = 'processing';
CREATE INDEX requests_tenant   ON requests (tenant, id);
CREATE INDEX requests_status   ON requests (status, id);
CREATE INDEX requests_finished ON requests (completed_at)              WHERE completed_at IS NOT NULL;
CREATE UNIQUE INDEX requests_retry_of ON requests (retry_of) WHERE retry_of IS NOT NULL;
CREATE INDEX requests_pending_operation ON requests (operation) WHERE status = 'pending';
CREATE INDEX requests_batch ON requests (batch_id, status) WHERE batch_id IS NOT NULL;

CREATE INDEX requests_created        ON requests (created_at, operation, status, started_at, completed_at);
CREATE INDEX requests_tenant_created ON requests (tenant, created_at, operation, status, started_at, completed_at);
CREATE INDEX requests_open           ON requests (status, tenant, operation) WHERE status IN ('pending', 'processing');
`,
} as const;
