/**
 * 0001: the whole schema of the SQLite migrations 0001–0004 (requests, events,
 * estimates, idempotency keys, tombstones, batches, the webhook outbox), in
 * PostgreSQL types, plus the NOTIFY triggers other nodes listen to.
 *
 * Times are epoch milliseconds (BIGINT) from the caller's clock, as in SQLite.
 * JSON is stored as TEXT, byte for byte what the model serialised: a webhook
 * payload is signed over its exact bytes, and JSONB would reorder keys.
 * Ids are `COLLATE "C"` so ORDER BY id and `id < $before` follow byte order
 * (ULIDs), whatever the database's collation.
 *
 * NOTIFY contract (read by ../notifications.ts, PostgresStore.listen(); keep the two in step and the contract stable):
 * - Channel `errand_events`: one notification per row inserted into
 *   `request_events`, sent when its transaction commits (never for a rolled
 *   back one). Payload, a JSON object:
 *     {"r": request id, "s": event seq, "t": event type ('status' | 'progress' | 'output'),
 *      "st": the request's status after the event, "o": its operation,
 *      "n": current_setting('application_name') of the writer: the writing node's id, at most 63 bytes,
 *      "sc": the schema holding the tables}
 *   Channels are per database, not per schema: nodes of another schema in the
 *   same database hear these too, and ignore a payload whose "sc" is not theirs.
 *   No event data: payloads stay far below PostgreSQL's 8000-byte limit; a
 *   listener reads the event itself with eventListAfter.
 * - Channel `errand_deliveries`: one notification when a delivery becomes
 *   pending (inserted, redelivered, retried, released or rescued). Payload:
 *     {"d": delivery id, "at": next_attempt_at (epoch ms), "n": application_name, "sc": schema}
 */
export const migration0001 = {
  version: 1,
  name: 'init',
  sql: `
CREATE TABLE requests (
  id               TEXT COLLATE "C" PRIMARY KEY,
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
  run_at           BIGINT  NOT NULL,           -- epoch ms
  lease_owner      TEXT,
  lease_expires_at BIGINT,
  task_timeout_ms  BIGINT  NOT NULL,
  deadline         BIGINT  NOT NULL,
  webhook_url      TEXT,
  idempotency_key  TEXT,
  priority         INTEGER NOT NULL DEFAULT 0,
  estimated_ms     BIGINT,
  metadata         TEXT,                       -- JSON
  retry_of         TEXT COLLATE "C",
  batch_id         TEXT COLLATE "C",
  created_at       BIGINT  NOT NULL,
  started_at       BIGINT,
  completed_at     BIGINT,
  updated_at       BIGINT  NOT NULL,
  last_seq         INTEGER NOT NULL DEFAULT 0  -- seq of the newest event
);
CREATE INDEX requests_ready     ON requests (priority DESC, run_at, id) WHERE status = 'pending';
CREATE INDEX requests_leases    ON requests (lease_expires_at)          WHERE status = 'processing';
CREATE INDEX requests_running   ON requests (operation)                 WHERE status = 'processing';
CREATE INDEX requests_pending_operation ON requests (operation)         WHERE status = 'pending';
CREATE INDEX requests_tenant    ON requests (tenant, id);
CREATE INDEX requests_status    ON requests (status, id);
CREATE INDEX requests_finished  ON requests (completed_at)              WHERE completed_at IS NOT NULL;
CREATE UNIQUE INDEX requests_retry_of ON requests (retry_of)            WHERE retry_of IS NOT NULL;
CREATE INDEX requests_batch     ON requests (batch_id, status)          WHERE batch_id IS NOT NULL;

CREATE TABLE request_events (
  request_id TEXT COLLATE "C" NOT NULL,
  seq        INTEGER NOT NULL,
  type       TEXT    NOT NULL CHECK (type IN ('status', 'progress', 'output')),
  data       TEXT    NOT NULL,                 -- JSON
  created_at BIGINT  NOT NULL,
  PRIMARY KEY (request_id, seq)
);

CREATE TABLE operation_stats (
  operation  TEXT   PRIMARY KEY,
  histogram  TEXT   NOT NULL,                  -- JSON DurationHistogram (model/histogram.ts)
  updated_at BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
  tenant      TEXT   NOT NULL,
  key         TEXT   NOT NULL,
  fingerprint TEXT   NOT NULL,                 -- hash of what was submitted (endpoint + body)
  request_id  TEXT COLLATE "C" NOT NULL,
  created_at  BIGINT NOT NULL,
  expires_at  BIGINT NOT NULL,
  PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

CREATE TABLE request_tombstones (
  id           TEXT COLLATE "C" PRIMARY KEY,
  tenant       TEXT   NOT NULL,
  status       TEXT   NOT NULL,
  completed_at BIGINT NOT NULL,
  purged_at    BIGINT NOT NULL,
  expires_at   BIGINT NOT NULL
);
CREATE INDEX request_tombstones_expiry ON request_tombstones (expires_at);

CREATE TABLE batches (
  id          TEXT COLLATE "C" PRIMARY KEY,
  tenant      TEXT    NOT NULL,
  operation   TEXT    NOT NULL,
  concurrency INTEGER NOT NULL,
  total       INTEGER NOT NULL,
  webhook_url TEXT,
  metadata    TEXT,                            -- JSON
  created_at  BIGINT  NOT NULL
);
CREATE INDEX batches_tenant ON batches (tenant, id);

CREATE TABLE deliveries (
  id               TEXT COLLATE "C" PRIMARY KEY, -- dlv_…, the webhook-id header
  request_id       TEXT COLLATE "C" NOT NULL,    -- a request id, or a batch id for batch.completed
  tenant           TEXT    NOT NULL,
  event            TEXT    NOT NULL,
  url              TEXT    NOT NULL,
  payload          TEXT    NOT NULL,           -- the exact JSON bytes signed and sent
  status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
  series           INTEGER NOT NULL DEFAULT 1, -- +1 per redelivery
  attempt          INTEGER NOT NULL DEFAULT 0, -- attempts started in the current series
  next_attempt_at  BIGINT,                     -- epoch ms; NULL once ended
  lease_owner      TEXT,
  lease_expires_at BIGINT,
  last_status_code INTEGER,
  last_error       TEXT,                       -- JSON DeliveryError
  created_at       BIGINT  NOT NULL,
  updated_at       BIGINT  NOT NULL,
  finished_at      BIGINT
);
CREATE INDEX deliveries_due     ON deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX deliveries_leases  ON deliveries (lease_expires_at)    WHERE status = 'delivering';
CREATE INDEX deliveries_request ON deliveries (request_id, id);

CREATE TABLE delivery_attempts (
  delivery_id      TEXT COLLATE "C" NOT NULL,
  seq              INTEGER NOT NULL,           -- 1, 2, … across every series
  series           INTEGER NOT NULL,
  attempt          INTEGER NOT NULL,
  started_at       BIGINT  NOT NULL,
  duration_ms      BIGINT  NOT NULL,
  status_code      INTEGER,
  error            TEXT,                       -- JSON DeliveryError
  response_excerpt TEXT,
  PRIMARY KEY (delivery_id, seq)
);

-- The NOTIFY contract (see the header of this file).
CREATE FUNCTION errand_notify_event() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  req RECORD;
BEGIN
  SELECT status, operation INTO req FROM requests WHERE id = NEW.request_id;
  PERFORM pg_notify('errand_events', json_build_object(
    'r', NEW.request_id, 's', NEW.seq, 't', NEW.type, 'st', req.status, 'o', req.operation,
    'n', current_setting('application_name'), 'sc', current_schema())::text);
  RETURN NULL;
END
$fn$;
CREATE TRIGGER request_events_notify AFTER INSERT ON request_events
  FOR EACH ROW EXECUTE FUNCTION errand_notify_event();

CREATE FUNCTION errand_notify_delivery() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
  PERFORM pg_notify('errand_deliveries', json_build_object(
    'd', NEW.id, 'at', NEW.next_attempt_at, 'n', current_setting('application_name'), 'sc', current_schema())::text);
  RETURN NULL;
END
$fn$;
CREATE TRIGGER deliveries_notify AFTER INSERT OR UPDATE OF status, series, next_attempt_at ON deliveries
  FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION errand_notify_delivery();
`,
} as const;
