/** 0003: batches — many requests of one operation submitted together, with a concurrency limit. */
export const migration0003 = {
  version: 3,
  name: 'batches',
  sql: `
CREATE TABLE batches (
  id          TEXT    PRIMARY KEY,
  tenant      TEXT    NOT NULL,
  operation   TEXT    NOT NULL,
  concurrency INTEGER NOT NULL,
  total       INTEGER NOT NULL,
  webhook_url TEXT,
  metadata    TEXT,                             -- JSON
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX batches_tenant ON batches (tenant, id);

ALTER TABLE requests ADD COLUMN batch_id TEXT;
CREATE INDEX requests_batch ON requests (batch_id, status) WHERE batch_id IS NOT NULL;
`,
} as const;
