/**
 * 0004: the nodes whose database session proves they are alive
 * (docs/decisions/0017-dead-node-from-its-session.md). A node holds a
 * session-level advisory lock keyed by its owner id on a dedicated connection
 * and registers here once it holds it; a row whose lock is free belongs to a
 * node that lost its session (died, or its connection broke): `lost_at` is
 * when a rescuer first saw that, and `engine.dead_node_timeout` after it the
 * node's running requests are taken back. Nodes of an older version never
 * register, so they are only ever rescued by lease expiry (rolling upgrades).
 */
export const migration0004 = {
  version: 4,
  name: 'nodes',
  sql: `
CREATE TABLE nodes (
  owner         TEXT PRIMARY KEY,
  registered_at BIGINT NOT NULL,
  lost_at       BIGINT
);
`,
} as const;
