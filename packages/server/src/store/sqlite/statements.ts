/**
 * Every SQLite statement the store runs, one named constant each. Parameters are
 * named (`@now`); "0 rows" on a guarded update means the claim is stale (lease lost)
 * or the request already moved on.
 *
 * The request writes have no `RETURNING`: SQLite runs a `RETURNING` clause
 * through a temporary table per execution, which made an insert cost about 3×
 * and a claim about 5× what the bare statement plus a primary-key read of the
 * row (REQUEST_GET, in the same transaction) costs (measured with
 * better-sqlite3 on this schema: claim 138 µs vs 25 µs, complete 56 µs vs 20 µs,
 * insert 105 µs vs 33 µs). So an update reports `changes` (1 = done, 0 = lease
 * lost / moved on) and the store reads the row after it.
 */
import { requestStatsStatements, type StatsParamName } from '../requestStats.js';
import { STATE_COLUMNS, summaryColumns } from '../rows.js';

/** @after → the earliest pending run_at later than @after. */
export const REQUEST_NEXT_RUN_AT = `SELECT MIN(run_at) AS run_at FROM requests WHERE status = 'pending' AND run_at > @after`;

/** Inserts a pending request with last_seq = 1 (its first status event): the row `insertedRow()` (../rows.ts) describes. */
export const REQUEST_INSERT = `
INSERT INTO requests (id, tenant, operation, input, mode, status, attempt, max_attempts, run_at, task_timeout_ms,
  deadline, webhook_url, idempotency_key, priority, estimated_ms, metadata, retry_of, batch_id, created_at, updated_at, last_seq)
VALUES (@id, @tenant, @operation, @input, @mode, 'pending', 0, @max_attempts, @run_at, @task_timeout_ms,
  @deadline, @webhook_url, @idempotency_key, @priority, @estimated_ms, @metadata, @retry_of, @batch_id, @created_at, @created_at, 1)`;

/** @id → the request row (also read after each guarded update, in its transaction). */
export const REQUEST_GET = `SELECT * FROM requests WHERE id = @id`;

/** @id, @result_max → the request row without its input (a status read). */
export const REQUEST_GET_SUMMARY = `SELECT ${summaryColumns('@result_max')} FROM requests WHERE id = @id`;

/** @id → the request's small changing columns (a conditional status read). */
export const REQUEST_GET_STATE = `SELECT ${STATE_COLUMNS.join(', ')} FROM requests WHERE id = @id`;

/**
 * @now, @excluded (JSON array of operations to skip), @scan → due pending candidates in claim order,
 * leaving out items of batches already running `concurrency` items.
 */
export const REQUEST_CLAIM_CANDIDATES = `
SELECT id, operation, batch_id FROM requests INDEXED BY requests_ready
WHERE status = 'pending' AND run_at <= @now
  AND operation NOT IN (SELECT value FROM json_each(@excluded))
  AND (batch_id IS NULL OR batch_id NOT IN (
    SELECT b.id FROM batches b
    WHERE (SELECT COUNT(*) FROM requests r WHERE r.batch_id = b.id AND r.status = 'processing') >= b.concurrency))
ORDER BY priority DESC, run_at, id
LIMIT @scan`;

/** @batch_id → free slots of a batch (its concurrency minus its processing items). */
export const BATCH_FREE_SLOTS = `
SELECT b.concurrency - (SELECT COUNT(*) FROM requests r WHERE r.batch_id = b.id AND r.status = 'processing') AS free
FROM batches b WHERE b.id = @batch_id`;

/** @id, @tenant, @operation, @concurrency, @total, @webhook_url, @metadata, @created_at. */
export const BATCH_INSERT = `
INSERT INTO batches (id, tenant, operation, concurrency, total, webhook_url, metadata, created_at)
VALUES (@id, @tenant, @operation, @concurrency, @total, @webhook_url, @metadata, @created_at)`;

/** @id → the batch row. */
export const BATCH_GET = `SELECT * FROM batches WHERE id = @id`;

/** @batch_id → how many of its items are in each state. */
export const BATCH_STATUS_COUNTS = `SELECT status, COUNT(*) AS n FROM requests WHERE batch_id = @batch_id GROUP BY status`;

/** @request_id → 1 when a delivery exists for this request (or batch) id. */
export const DELIVERY_EXISTS_FOR = `SELECT 1 AS found FROM deliveries WHERE request_id = @request_id LIMIT 1`;

/** @id, @result_max → its items without inputs (results longer than @result_max bytes left out), in submission order. */
export const BATCH_ITEMS = `SELECT ${summaryColumns('@result_max')} FROM requests WHERE batch_id = @id ORDER BY id`;

/** @before → ids of batches created before @before whose items are all gone (purged by retention) and whose webhook is not pending or being sent. */
export const BATCH_PURGEABLE = `
SELECT id FROM batches
WHERE created_at < @before
  AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.batch_id = batches.id)
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.request_id = batches.id AND d.status IN ('pending', 'delivering'))`;

export const BATCH_DELETE = `DELETE FROM batches WHERE id = @id`;

/** @id, @owner, @now, @lease_expires_at → 1 row claimed; 0 rows if no longer pending. */
export const REQUEST_CLAIM_ONE = `
UPDATE requests
SET status = 'processing', attempt = attempt + 1, lease_owner = @owner, lease_expires_at = @lease_expires_at,
    started_at = COALESCE(started_at, @now), progress = NULL, updated_at = @now, last_seq = last_seq + 1
WHERE id = @id AND status = 'pending'`;

/** Guarded on the claim: @id, @attempt, @owner, @now, @result → 1 row changed; 0 rows = lease lost. */
export const REQUEST_COMPLETE = `
UPDATE requests
SET status = 'completed', result = @result, error = NULL, lease_owner = NULL, lease_expires_at = NULL,
    completed_at = @now, updated_at = @now, last_seq = last_seq + 1
WHERE id = @id AND status = 'processing' AND attempt = @attempt AND lease_owner = @owner`;

/** Guarded on the claim: @id, @attempt, @owner, @now, @error → 1 row changed; 0 rows = lease lost. */
export const REQUEST_FAIL = `
UPDATE requests
SET status = 'failed', error = @error, lease_owner = NULL, lease_expires_at = NULL,
    completed_at = @now, updated_at = @now, last_seq = last_seq + 1
WHERE id = @id AND status = 'processing' AND attempt = @attempt AND lease_owner = @owner`;

/** Guarded on the claim: @id, @attempt, @owner, @now, @error, @run_at → 1 row back in pending; 0 rows = lease lost. */
export const REQUEST_RETRY = `
UPDATE requests
SET status = 'pending', error = @error, run_at = @run_at, lease_owner = NULL, lease_expires_at = NULL,
    updated_at = @now, last_seq = last_seq + 1
WHERE id = @id AND status = 'processing' AND attempt = @attempt AND lease_owner = @owner`;

/** Guarded on the claim: @id, @attempt, @owner, @now → 1 row back in pending with the attempt given back; 0 rows = lease lost. */
export const REQUEST_RELEASE = `
UPDATE requests
SET status = 'pending', attempt = attempt - 1, run_at = @now, lease_owner = NULL, lease_expires_at = NULL, progress = NULL,
    updated_at = @now, last_seq = last_seq + 1
WHERE id = @id AND status = 'processing' AND attempt = @attempt AND lease_owner = @owner`;

/** Guarded on the claim: @id, @attempt, @owner, @now, @progress → 1 row changed; 0 rows = lease lost. */
export const REQUEST_PROGRESS = `
UPDATE requests SET progress = @progress, updated_at = @now, last_seq = last_seq + 1
WHERE id = @id AND status = 'processing' AND attempt = @attempt AND lease_owner = @owner`;

/** @id, @now → 1 row cancelled; 0 rows if already terminal. */
export const REQUEST_CANCEL = `
UPDATE requests
SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, completed_at = @now, updated_at = @now,
    last_seq = last_seq + 1,
    error = '{"type":"cancelled","message":"Request cancelled by user","retryable":false}'
WHERE id = @id AND status IN ('pending', 'processing')`;

/** Guarded on the claim: @id, @attempt, @owner → 1 row with last_seq bumped (read it with REQUEST_LAST_SEQ); 0 rows = lease lost. */
export const REQUEST_NEXT_SEQ_IF_CLAIMED = `
UPDATE requests SET last_seq = last_seq + 1
WHERE id = @id AND status = 'processing' AND attempt = @attempt AND lease_owner = @owner`;

/** @id → { last_seq } of the request. */
export const REQUEST_LAST_SEQ = `SELECT last_seq FROM requests WHERE id = @id`;

/** @id, @attempt, @owner, @lease_expires_at, @now → 1 row renewed; 0 rows = lease lost. */
export const LEASE_EXTEND = `
UPDATE requests SET lease_expires_at = @lease_expires_at, updated_at = @now
WHERE id = @id AND status = 'processing' AND attempt = @attempt AND lease_owner = @owner`;

/** @now, @all_except (owner or NULL), @limit → ids of processing requests whose lease is dead. */
export const LEASE_EXPIRED_LIST = `
SELECT id FROM requests
WHERE status = 'processing'
  AND (lease_expires_at <= @now OR (@all_except IS NOT NULL AND lease_owner IS NOT @all_except))
ORDER BY lease_expires_at
LIMIT @limit`;

/** @id, @attempt, @error, @run_at, @now → 1 row back in pending; 0 rows unless the same attempt still holds it. */
export const LEASE_RESCUE_RETRY = `
UPDATE requests
SET status = 'pending', error = @error, run_at = @run_at, lease_owner = NULL, lease_expires_at = NULL,
    updated_at = @now, last_seq = last_seq + 1
WHERE id = @id AND status = 'processing' AND attempt = @attempt`;

/** @id, @attempt, @error, @now → 1 row failed; 0 rows unless the same attempt still holds it. */
export const LEASE_RESCUE_FAIL = `
UPDATE requests
SET status = 'failed', error = @error, lease_owner = NULL, lease_expires_at = NULL, completed_at = @now,
    updated_at = @now, last_seq = last_seq + 1
WHERE id = @id AND status = 'processing' AND attempt = @attempt`;

/** @request_id, @seq, @type, @data, @created_at. */
export const EVENT_INSERT = `
INSERT INTO request_events (request_id, seq, type, data, created_at)
VALUES (@request_id, @seq, @type, @data, @created_at)`;

/** @id, @after, @limit → events in seq order. */
export const EVENT_LIST_AFTER = `
SELECT * FROM request_events WHERE request_id = @id AND seq > @after ORDER BY seq LIMIT @limit`;

/** @before, @limit → requests finished before @before (what their tombstones need), but none whose webhook is still pending or being sent. */
export const REQUEST_FINISHED_BEFORE = `
SELECT id, tenant, status, completed_at FROM requests
WHERE completed_at IS NOT NULL AND completed_at < @before
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.request_id = requests.id AND d.status IN ('pending', 'delivering'))
ORDER BY completed_at LIMIT @limit`;

export const REQUEST_DELETE = `DELETE FROM requests WHERE id = @id`;
export const EVENT_DELETE_FOR_REQUEST = `DELETE FROM request_events WHERE request_id = @id`;

/** @operation (NULL = all) → pending and processing counts. */
export const REQUEST_COUNTS = `
SELECT
  COALESCE(SUM(status = 'pending'), 0)    AS pending,
  COALESCE(SUM(status = 'processing'), 0) AS processing
FROM requests WHERE status IN ('pending', 'processing') AND (@operation IS NULL OR operation = @operation)`;

/** @id → the request that re-runs @id, if any. */
export const REQUEST_GET_BY_RETRY_OF = `SELECT * FROM requests WHERE retry_of = @id`;

/** @operation → its stats row. */
export const OPERATION_STATS_GET = `SELECT * FROM operation_stats WHERE operation = @operation`;

/** @operation, @histogram (JSON), @updated_at → upsert. */
export const OPERATION_STATS_PUT = `
INSERT INTO operation_stats (operation, histogram, updated_at) VALUES (@operation, @histogram, @updated_at)
ON CONFLICT (operation) DO UPDATE SET histogram = excluded.histogram, updated_at = excluded.updated_at`;

/** @tenant, @key → the key row. */
export const IDEMPOTENCY_GET = `SELECT * FROM idempotency_keys WHERE tenant = @tenant AND key = @key`;

/** @tenant, @key, @fingerprint, @request_id, @created_at, @expires_at → insert or replace (an expired or orphaned key). */
export const IDEMPOTENCY_PUT = `
INSERT OR REPLACE INTO idempotency_keys (tenant, key, fingerprint, request_id, created_at, expires_at)
VALUES (@tenant, @key, @fingerprint, @request_id, @created_at, @expires_at)`;

/** @now, @limit → deletes up to @limit expired keys. */
export const IDEMPOTENCY_PURGE = `
DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE expires_at <= @now LIMIT @limit)`;

/** @id, @tenant, @status, @completed_at, @purged_at, @expires_at. */
export const TOMBSTONE_PUT = `
INSERT OR REPLACE INTO request_tombstones (id, tenant, status, completed_at, purged_at, expires_at)
VALUES (@id, @tenant, @status, @completed_at, @purged_at, @expires_at)`;

/** @id → the tombstone row. */
export const TOMBSTONE_GET = `SELECT * FROM request_tombstones WHERE id = @id`;

/** @now, @limit → deletes up to @limit expired tombstones. */
export const TOMBSTONE_PURGE = `
DELETE FROM request_tombstones WHERE id IN (SELECT id FROM request_tombstones WHERE expires_at <= @now LIMIT @limit)`;

/**
 * Filters are optional (NULL = any): @tenant, @statuses (JSON array), @operation, @before (id), @limit, @result_max
 * → rows without inputs (results longer than @result_max bytes left out), newest first.
 */
export const REQUEST_LIST = `
SELECT ${summaryColumns('@result_max')} FROM requests
WHERE (@tenant IS NULL OR tenant = @tenant)
  AND (@statuses IS NULL OR status IN (SELECT value FROM json_each(@statuses)))
  AND (@operation IS NULL OR operation = @operation)
  AND (@before IS NULL OR id < @before)
ORDER BY id DESC
LIMIT @limit`;

// --- webhook deliveries (the outbox) -------------------------------------------------------------

/** @id, @request_id, @tenant, @event, @url, @payload, @now → a pending delivery due now. */
export const DELIVERY_INSERT = `
INSERT INTO deliveries (id, request_id, tenant, event, url, payload, status, series, attempt, next_attempt_at, created_at, updated_at)
VALUES (@id, @request_id, @tenant, @event, @url, @payload, 'pending', 1, 0, @now, @now, @now)`;

/** @now, @limit → ids of due pending deliveries, oldest due first. */
export const DELIVERY_DUE_LIST = `
SELECT id FROM deliveries INDEXED BY deliveries_due
WHERE status = 'pending' AND next_attempt_at <= @now
ORDER BY next_attempt_at, id
LIMIT @limit`;

/** @id, @owner, @now, @lease_expires_at → the claimed row (next attempt started); 0 rows if no longer pending. */
export const DELIVERY_CLAIM_ONE = `
UPDATE deliveries
SET status = 'delivering', attempt = attempt + 1, lease_owner = @owner, lease_expires_at = @lease_expires_at, updated_at = @now
WHERE id = @id AND status = 'pending'
RETURNING *`;

/** Guarded on the claim: @id, @owner, @attempt, @now, @status_code → row delivered; 0 rows = lease lost. */
export const DELIVERY_COMPLETE = `
UPDATE deliveries
SET status = 'delivered', next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL,
    last_status_code = @status_code, last_error = NULL, updated_at = @now, finished_at = @now
WHERE id = @id AND status = 'delivering' AND lease_owner = @owner AND attempt = @attempt
RETURNING *`;

/**
 * Guarded on the claim: @id, @owner, @attempt, @now, @status_code, @error, @retry_at (NULL = give up)
 * → row back in pending at @retry_at, or failed; 0 rows = lease lost.
 */
export const DELIVERY_FAIL = `
UPDATE deliveries
SET status = CASE WHEN @retry_at IS NULL THEN 'failed' ELSE 'pending' END,
    next_attempt_at = @retry_at, lease_owner = NULL, lease_expires_at = NULL,
    last_status_code = @status_code, last_error = @error, updated_at = @now,
    finished_at = CASE WHEN @retry_at IS NULL THEN @now ELSE NULL END
WHERE id = @id AND status = 'delivering' AND lease_owner = @owner AND attempt = @attempt
RETURNING *`;

/** Guarded on the claim: @id, @owner, @attempt, @now → 1 row back in pending now, the attempt given back; 0 rows = lease lost. */
export const DELIVERY_RELEASE = `
UPDATE deliveries
SET status = 'pending', attempt = attempt - 1, next_attempt_at = @now, lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
WHERE id = @id AND status = 'delivering' AND lease_owner = @owner AND attempt = @attempt`;

/** @now, @all_except (owner or NULL), @limit → deliveries whose node died back in pending, due now, the unfinished attempt given back. */
export const DELIVERY_RESCUE = `
UPDATE deliveries
SET status = 'pending', attempt = attempt - 1, next_attempt_at = @now, lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
WHERE id IN (
  SELECT id FROM deliveries
  WHERE status = 'delivering' AND (lease_expires_at <= @now OR (@all_except IS NOT NULL AND lease_owner IS NOT @all_except))
  LIMIT @limit)`;

/** @delivery_id, @series, @attempt, @started_at, @duration_ms, @status_code, @error, @response_excerpt → appends to the attempt log. */
export const DELIVERY_ATTEMPT_INSERT = `
INSERT INTO delivery_attempts (delivery_id, seq, series, attempt, started_at, duration_ms, status_code, error, response_excerpt)
VALUES (@delivery_id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM delivery_attempts WHERE delivery_id = @delivery_id),
  @series, @attempt, @started_at, @duration_ms, @status_code, @error, @response_excerpt)`;

/** @request_id → its deliveries, oldest first. */
export const DELIVERY_LIST_FOR_REQUEST = `SELECT * FROM deliveries WHERE request_id = @request_id ORDER BY id`;

/** @request_id → the attempts of all its deliveries, in order. */
export const DELIVERY_ATTEMPTS_FOR_REQUEST = `
SELECT a.* FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE d.request_id = @request_id ORDER BY a.delivery_id, a.seq`;

/** @id → the delivery row. */
export const DELIVERY_GET = `SELECT * FROM deliveries WHERE id = @id`;

/** @id, @now → a new attempt series due now; 0 rows while it is being sent. */
export const DELIVERY_REDELIVER = `
UPDATE deliveries
SET status = 'pending', series = series + 1, attempt = 0, next_attempt_at = @now, lease_owner = NULL, lease_expires_at = NULL,
    updated_at = @now, finished_at = NULL
WHERE id = @id AND status <> 'delivering'
RETURNING *`;

/** → the earliest due time: a pending attempt or an expiring lease (NULL when nothing waits). */
export const DELIVERY_NEXT_DUE_AT = `
SELECT MIN(t) AS due FROM (
  SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE status = 'pending'
  UNION ALL
  SELECT MIN(lease_expires_at) AS t FROM deliveries WHERE status = 'delivering')`;

export const DELIVERY_ATTEMPT_DELETE_FOR_REQUEST = `
DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE request_id = @id)`;
export const DELIVERY_DELETE_FOR_REQUEST = `DELETE FROM deliveries WHERE request_id = @id`;

// --- GET /v1/stats (see ../requestStats.ts) ------------------------------------------------------

const statsParam = (name: StatsParamName) => `@${name}`;
const statsAll = requestStatsStatements(statsParam, false);
const statsTenant = requestStatsStatements(statsParam, true);
/** @from, @bucket_ms, @buckets, @scan_max (and @tenant for the _TENANT ones) → StatsRow / OpenRow / {n}. */
export const STATS_WINDOW = statsAll.window;
export const STATS_WINDOW_TENANT = statsTenant.window;
export const STATS_OPEN = statsAll.open;
export const STATS_OPEN_TENANT = statsTenant.open;
export const STATS_WINDOW_COUNT = statsAll.windowCount;
export const STATS_WINDOW_COUNT_TENANT = statsTenant.windowCount;
