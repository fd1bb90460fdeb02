/** 0002: learned duration estimates, idempotency keys, tombstones of purged requests, and retry links. */
export const migration0002 = {
  version: 2,
  name: 'estimates_idempotency_tombstones',
  sql: `
CREATE TABLE operation_stats (
  operation  TEXT    PRIMARY KEY,
  histogram  TEXT    NOT NULL,                 -- JSON DurationHistogram (model/histogram.ts)
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE idempotency_keys (
  tenant      TEXT    NOT NULL,
  key         TEXT    NOT NULL,
  fingerprint TEXT    NOT NULL,                -- hash of what was submitted (endpoint + body)
  request_id  TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  PRIMARY KEY (tenant, key)
) STRICT;
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

CREATE TABLE request_tombstones (
  id           TEXT    PRIMARY KEY,
  tenant       TEXT    NOT NULL,
  status       TEXT    NOT NULL,
  completed_at INTEGER NOT NULL,
  purged_at    INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX request_tombstones_expiry ON request_tombstones (expires_at);

ALTER TABLE requests ADD COLUMN retry_of TEXT;
CREATE UNIQUE INDEX requests_retry_of ON requests (retry_of) WHERE retry_of IS NOT NULL;
CREATE INDEX requests_pending_operation ON requests (operation) WHERE status = 'pending';
`,
} as const;
