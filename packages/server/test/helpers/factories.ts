/** Test fixtures with state-consistent defaults. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newBatchId, newRequestId, type Batch } from '../../src/model/index.js';
import type { NewRequest } from '../../src/store/index.js';

export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

let counter = 0;

/** A new request as the engine would insert it, at `created_at` (default T0 + a counter so ids sort). */
export function makeNewRequest(overrides: Partial<NewRequest> = {}): NewRequest {
  const created = overrides.created_at ?? T0 + counter++;
  return {
    id: newRequestId(created),
    tenant: 'alpha',
    operation: 'echo',
    input: { hello: 'world' },
    mode: 'async',
    max_attempts: 3,
    run_at: created,
    task_timeout_ms: 300_000,
    deadline: created + 3_600_000,
    webhook_url: null,
    idempotency_key: null,
    priority: 0,
    estimated_ms: null,
    metadata: null,
    retry_of: null,
    batch_id: null,
    created_at: created,
    ...overrides,
  };
}

/** A batch of `tenant` alpha's `echo` (no webhook, concurrency 10) created at `created_at` (default T0). */
export function makeBatch(overrides: Partial<Batch> = {}): Batch {
  const created = overrides.created_at ?? T0;
  return {
    id: newBatchId(created),
    tenant: 'alpha',
    operation: 'echo',
    concurrency: 10,
    total: 1,
    webhook_url: null,
    metadata: null,
    created_at: created,
    ...overrides,
  };
}

/** A fresh temp folder removed when `t.after` runs. */
export function tempDir(prefix = 'errand-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
