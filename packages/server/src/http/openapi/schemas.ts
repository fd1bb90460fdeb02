/**
 * The shapes the server sends, as zod schemas: what the OpenAPI document's
 * responses, SSE events and webhook payloads are generated from. They mirror
 * the presenters (../present.ts, ../respond.ts, routes/*.ts, model/delivery.ts);
 * test/openapi/responses.test.ts validates real answers against the generated
 * document, so a field added there without being added here fails a test.
 *
 * Objects are closed (`z.object`: no undocumented fields) except where the
 * server passes through data it does not own (error details, metadata).
 */
import { z } from 'zod';
import { DELIVERY_STATUSES, REQUEST_STATUSES } from '../../model/index.js';

/** An ISO 8601 timestamp in UTC, as every body writes times. */
const isoTime = z.string().meta({ format: 'date-time', examples: ['2026-11-23T10:54:03.225Z'] });
export const requestId = z.string().meta({ description: '`req_` and a lowercase ULID.', examples: ['req_01kf3v6q4c8x0d2m5n7p9r1s3t'] });
const count = z.number().int().nonnegative();

export const requestStatus = z.enum(REQUEST_STATUSES).meta({
  description: [
    "A request's state:",
    '- `pending`: accepted and durable, waiting to be claimed (new, delayed, waiting for a retry, or released at shutdown).',
    '- `processing`: claimed by a worker holding a lease; its handler runs.',
    '- `completed` (terminal): the handler returned a result.',
    '- `failed` (terminal): the last attempt failed, a non-retryable error, or a timeout.',
    '- `cancelled` (terminal): cancelled by a caller before it finished.',
    'Terminal states never change again.',
  ].join('\n'),
});

/** A request's recorded error (`error`, `last_error`). */
export const requestError = z
  .looseObject({
    type: z.string().meta({ description: "A type from the error catalog (docs/errors.md), `cancelled`, or the operation's own." }),
    message: z.string(),
    retryable: z.boolean(),
    details: z.unknown().optional(),
  })
  .meta({ description: 'The error a request ended with, or its previous attempt failed with.' });

const progressFields = {
  message: z.string().nullable().meta({ description: "The handler's last progress message." }),
  current_step: z.string().nullable(),
  total_steps: z.number().nullable(),
  completed_steps: z.number().nullable(),
};

export const statusResource = z
  .object({
    request_id: requestId,
    task_id: requestId.optional().meta({ description: 'Same as `request_id`; only under `/v1/tasks`.' }),
    status: requestStatus,
    operation: z.string(),
    progress: z.number().nullable().meta({ description: 'Percent done (0–100); `100` once completed; `null` if never reported.' }),
    progress_percent: z.number().nullable().optional().meta({ description: 'Same as `progress`; only under `/v1/tasks`.' }),
    ...progressFields,
    result: z.unknown().optional().meta({ description: 'What the handler returned; only when `completed`.' }),
    result_omitted: z
      .literal(true)
      .optional()
      .meta({ description: 'In list entries and batch items only: the result is over 16 KiB and left out; read the request for it.' }),
    error: requestError.optional().meta({ description: 'Only when `failed` or `cancelled`.' }),
    last_error: requestError.optional().meta({ description: "The previous attempt's error, while the next one waits or runs." }),
    attempt: count.meta({ description: 'Attempts started so far (0 until first claimed).' }),
    max_attempts: count,
    created_at: isoTime,
    started_at: isoTime.nullable(),
    completed_at: isoTime.nullable(),
    duration_ms: z.number().int().nullable().meta({ description: '`completed_at − created_at`; `null` until terminal.' }),
    next_attempt_at: isoTime.optional().meta({ description: '`pending` after a failed attempt: when the next may start.' }),
    metadata: z.record(z.string(), z.unknown()).optional(),
    retry_of: requestId.optional().meta({ description: 'The request this one re-runs.' }),
    estimated_ms: z.number().nullable().meta({ description: 'The estimate given at submission (high end, ms); paces `Retry-After`.' }),
  })
  .meta({ description: "The status resource: a request's state, progress, and result or error." });

export const acceptedResource = z
  .object({
    request_id: requestId,
    task_id: requestId.optional().meta({ description: 'Only on the bots alias.' }),
    status: requestStatus,
    estimated_time: z.string().nullable().meta({ description: 'Expected duration as words, e.g. "45-60 seconds".' }),
    estimated_ms: z.number().nullable(),
    location: z.string().meta({ description: 'The status resource to poll; also the `Location` header.' }),
  })
  .meta({ description: 'The `202 Accepted` body: the request is durable; poll `location`.' });

export const errorEnvelope = z
  .object({
    error: z.looseObject({
      type: z.string().meta({ description: 'Stable error type (docs/errors.md).' }),
      message: z.string(),
      field: z.string().optional().meta({ description: 'The input field or header at fault, as a dotted path.' }),
      retryable: z.boolean(),
    }),
  })
  .meta({ description: 'The one JSON error envelope; details (`request_id`, `status`, `issues`, …) sit beside `type`.' });

export const listPage = z.object({
  data: z.array(statusResource),
  has_more: z.boolean(),
  next_cursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; `null` on the last.' }),
});

export const resultAnswer = z.object({ request_id: requestId, status: z.literal('completed'), result: z.unknown() });

export const cancelAnswer = z.object({ request_id: requestId, status: z.literal('cancelled'), message: z.string() });

export const retryAnswer = z.object({
  request_id: requestId.meta({ description: "The re-run's id." }),
  task_id: requestId.optional(),
  retry_of: requestId,
  status: requestStatus,
  location: z.string(),
});

const deliveryError = z.object({ type: z.string(), message: z.string() });
const deliveryFields = {
  delivery_id: z.string().meta({ description: 'The `webhook-id` the receiver saw.' }),
  request_id: requestId,
  event: z.string().meta({ description: '`request.completed`, `request.failed`, `request.cancelled` or `batch.completed`.' }),
  url: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  series: count,
  attempt: count,
  next_attempt_at: isoTime.nullable(),
  last_status_code: z.number().int().nullable(),
  last_error: deliveryError.nullable(),
  created_at: isoTime,
  finished_at: isoTime.nullable(),
};
export const deliveryAttempt = z.object({
  series: count,
  attempt: count,
  started_at: isoTime,
  duration_ms: z.number().nullable(),
  status_code: z.number().int().nullable(),
  error: deliveryError.nullable(),
  response_excerpt: z.string().nullable(),
});
export const delivery = z.object({ ...deliveryFields, attempts: z.array(deliveryAttempt) });
export const deliveryList = z.object({ request_id: requestId, data: z.array(delivery) });
export const redeliverAnswer = z.object({ ...deliveryFields, location: z.string() });

const batchFields = {
  batch_id: z.string(),
  operation: z.string(),
  status: z.enum(['pending', 'processing', 'completed']),
  total: count,
  concurrency: count,
  counts: z.object({
    pending: count,
    processing: count,
    completed: count,
    failed: count,
    cancelled: count,
    purged: count.meta({ description: 'Items purged by retention.' }),
  }),
  succeeded: count,
  failed: count,
  pending: count.meta({ description: 'Items pending or processing.' }),
  success_rate: z.number().nullable(),
  progress: z.number(),
  webhook_url: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  created_at: isoTime,
  completed_at: isoTime.nullable(),
};
export const batchStatus = z.object({ ...batchFields, items: z.array(statusResource) });
export const batchAccepted = z.object({ ...batchFields, location: z.string(), request_ids: z.array(requestId) });

export const health = z.object({ status: z.literal('ok') });
export const ready = z.object({ status: z.literal('ready'), pending: count, processing: count, running_here: count });

/** `data` of a `status` SSE event. */
export const statusEventData = z.object({
  status: requestStatus,
  attempt: count,
  error: requestError.optional().meta({ description: "The failed attempt's error, when it will be retried (and a cancelled request's)." }),
  run_at: z.number().int().optional().meta({ description: 'With a retry: when the next attempt may start, epoch milliseconds.' }),
  released: z.boolean().optional().meta({ description: 'The attempt was handed back unfinished (shutdown) and does not count.' }),
});
/** `data` of a `progress` SSE event. */
export const progressEventData = z.object({
  percent: z.number().optional(),
  message: z.string().optional(),
  current_step: z.string().optional(),
  total_steps: z.number().optional(),
  completed_steps: z.number().optional(),
});
/** `data` of the first event of a streamed chat. */
export const chatStreamStart = z.object({ request_id: requestId, status: requestStatus, location: z.string(), events: z.string() });
/** `data` of every `GET /v1/events` message. */
export const tailEvent = z.object({
  request_id: requestId,
  operation: z.string(),
  tenant: z.string(),
  seq: count.meta({ description: "The event's number in its request's log." }),
  type: z.enum(['status', 'progress', 'output']),
  data: z.unknown(),
  status: requestStatus.meta({ description: "The request's status after this event." }),
  created_at: isoTime,
});

/** The webhook body for a request that ended (model/delivery.ts `deliveryPayload`). */
export const webhookPayload = z.object({
  type: z.enum(['request.completed', 'request.failed', 'request.cancelled']),
  request_id: requestId,
  status: z.enum(['completed', 'failed', 'cancelled']),
  operation: z.string(),
  result: z.unknown().optional().meta({ description: 'When `completed`.' }),
  error: requestError.optional().meta({ description: 'When `failed` or `cancelled`.' }),
  attempt: count,
  created_at: isoTime,
  completed_at: isoTime.nullable(),
  duration_ms: z.number().int().nullable(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  retry_of: requestId.optional(),
});
/** The webhook body once every item of a batch ended (model/delivery.ts `batchDeliveryPayload`). */
export const batchWebhookPayload = z.object({
  type: z.literal('batch.completed'),
  batch_id: z.string(),
  status: z.literal('completed'),
  operation: z.string(),
  total: count,
  succeeded: count,
  failed: count,
  cancelled: count,
  success_rate: z.number().nullable(),
  created_at: isoTime,
  completed_at: isoTime,
  location: z.string(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

const percentiles = z.object({ p50: z.number(), p95: z.number(), p99: z.number() });
/** `GET /v1/stats` (routes/stats.ts, ../operationStats.ts). */
export const statsView = z.object({
  caller: z.object({ admin: z.boolean(), tenant: z.string().nullable().meta({ description: '`null` for an admin key (every tenant).' }) }),
  window: z.object({ from: isoTime, to: isoTime, minutes: count, bucket_seconds: z.number() }),
  scanned: count.meta({ description: 'Requests read to answer.' }),
  truncated: z.boolean().meta({ description: 'The scan stopped at its cap: the numbers cover the newest requests only.' }),
  operations: z.array(
    z.object({
      operation: z.string(),
      pending: count,
      processing: count,
      accepted: count,
      completed: count,
      failed: count,
      cancelled: count,
      success_rate: z.number().nullable().meta({ description: 'completed / (completed + failed); `null` with neither.' }),
      throughput_per_minute: z.number(),
      duration_ms: percentiles.nullable().meta({ description: 'Of the completed requests, queue time included.' }),
      run_ms: percentiles.nullable().meta({ description: 'Run time (started → completed) of the completed requests.' }),
      buckets: z.array(z.object({ start: isoTime, completed: count, failed: count, cancelled: count, queued: count })),
    }),
  ),
});
