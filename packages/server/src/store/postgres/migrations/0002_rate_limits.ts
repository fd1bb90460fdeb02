/**
 * 0002: token buckets of submission rate limits, shared by every node
 * (rateLimits.ts). One row per bucket key (`tenant:NAME`,
 * `operation:TENANT:NAME`); keys come from configured tenants and operations,
 * so the table stays small. `granted` is the outcome of the row's latest take,
 * returned by the same statement that made it.
 */
export const migration0002 = {
  version: 2,
  name: 'rate_limits',
  sql: `
CREATE TABLE rate_limits (
  key        TEXT COLLATE "C" PRIMARY KEY,
  tokens     DOUBLE PRECISION NOT NULL,  -- may be negative: debt left by a take bigger than the burst
  updated_at BIGINT NOT NULL,            -- epoch ms of the latest refill
  granted    BOOLEAN NOT NULL
);
`,
};
