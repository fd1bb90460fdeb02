/**
 * 0006: covering indexes for `requestStatsByOperation` (GET /v1/stats), so it
 * is answered from small columns without opening a row — in SQLite, reading a
 * column stored after `input` walks that input's overflow pages. Windows by
 * creation time (all tenants, one tenant) and the open requests.
 */
export const migration0006 = {
  version: 6,
  name: 'stats_indexes',
  sql: `
CREATE INDEX requests_created        ON requests (created_at, operation, status, started_at, completed_at);
CREATE INDEX requests_tenant_created ON requests (tenant, created_at, operation, status, started_at, completed_at);
CREATE INDEX requests_open           ON requests (status, tenant, operation) WHERE status IN ('pending', 'processing');
`,
} as const;
