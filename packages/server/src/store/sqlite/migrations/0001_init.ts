/** 0001: requests and their event log. */
export const migration0001 = {
  version: 1,
  name: 'init',
  sql: `
CREATE TABLE requests (
  id               TEXT PRIMARY KEY,
  tenant           TEXT    NOT NULL,
  operation        TEXT    NOT NULL,
  input            TEXT    NOT NULL,           -- JSON
  mode             TEXT    NOT NULL CHECK (mode IN ('sync', 'async')),
  status           TEXT    NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
  progress         TEXT,                       -- JSON Progress
  result           TEXT,                       -- JSON; NULL until completed
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
  created_at       INTEGER NOT NULL,
  started_at       INTEGER,
  completed_at     INTEGER,
  updated_at       INTEGER NOT NULL,
  last_seq         INTEGER NOT NULL DEFAULT 0  -- seq of the newest event
) STRICT;

CREATE INDEX requests_ready    ON requests (priority DESC, run_at, id) WHERE status = 'pending';
CREATE INDEX requests_leases   ON requests (lease_expires_at)          WHERE status = 'processing';
CREATE INDEX requests_tenant   ON requests (tenant, id);
CREATE INDEX requests_status   ON requests (status, id);
CREATE INDEX requests_finished ON requests (completed_at)              WHERE completed_at IS NOT NULL;

CREATE TABLE request_events (
  request_id TEXT    NOT NULL,
  seq        INTEGER NOT NULL,
  type       TEXT    NOT NULL CHECK (type IN ('status', 'progress', 'output')),
  data       TEXT    NOT NULL,                 -- JSON
  created_at INTEGER NOT NULL,
  PRIMARY KEY (request_id, seq)
) STRICT, WITHOUT ROWID;
`,
} as const;
