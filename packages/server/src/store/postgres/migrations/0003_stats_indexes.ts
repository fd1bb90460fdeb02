/**
 * 0003: indexes for `requestStatsByOperation` (GET /v1/stats): windows by
 * creation time (all tenants, one tenant) and the open requests, carrying the
 * small columns the aggregates read (index-only scans where the visibility
 * map allows; big values live in TOAST and are never read either way).
 */
export const migration0003 = {
  version: 3,
  name: 'stats_indexes',
  sql: `
CREATE INDEX requests_created        ON requests (created_at) INCLUDE (operation, status, started_at, completed_at);
CREATE INDEX requests_tenant_created ON requests (tenant, created_at) INCLUDE (operation, status, started_at, completed_at);
CREATE INDEX requests_open           ON requests (status, tenant, operation) WHERE status IN ('pending', 'processing');
`,
} as const;
