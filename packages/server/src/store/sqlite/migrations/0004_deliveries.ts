/** 0004: the webhook outbox — deliveries (written with the terminal transition) and their attempts. */
export const migration0004 = {
  version: 4,
  name: 'deliveries',
  sql: `
CREATE TABLE deliveries (
  id               TEXT    PRIMARY KEY,        -- dlv_…, the webhook-id header
  request_id       TEXT    NOT NULL,
  tenant           TEXT    NOT NULL,
  event            TEXT    NOT NULL,           -- request.completed | request.failed | request.cancelled
  url              TEXT    NOT NULL,
  payload          TEXT    NOT NULL,           -- the exact JSON bytes signed and sent
  status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
  series           INTEGER NOT NULL DEFAULT 1, -- +1 per redelivery
  attempt          INTEGER NOT NULL DEFAULT 0, -- attempts started in the current series
  next_attempt_at  INTEGER,                    -- epoch ms; NULL once ended
  lease_owner      TEXT,
  lease_expires_at INTEGER,
  last_status_code INTEGER,
  last_error       TEXT,                       -- JSON DeliveryError
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  finished_at      INTEGER
) STRICT;
CREATE INDEX deliveries_due     ON deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX deliveries_leases  ON deliveries (lease_expires_at)    WHERE status = 'delivering';
CREATE INDEX deliveries_request ON deliveries (request_id, id);

CREATE TABLE delivery_attempts (
  delivery_id      TEXT    NOT NULL,
  seq              INTEGER NOT NULL,           -- 1, 2, … across every series
  series           INTEGER NOT NULL,
  attempt          INTEGER NOT NULL,
  started_at       INTEGER NOT NULL,
  duration_ms      INTEGER NOT NULL,
  status_code      INTEGER,
  error            TEXT,                       -- JSON DeliveryError
  response_excerpt TEXT,
  PRIMARY KEY (delivery_id, seq)
) STRICT, WITHOUT ROWID;
`,
} as const;
