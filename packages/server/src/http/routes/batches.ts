/**
 * Batches: many inputs to one operation in one submission.
 * - `POST /v1/batches` — body `{operation, items: [input, …], concurrency?, webhook_url?, metadata?, priority?}`;
 *   answers `202` with `Location: /v1/batches/{id}` once the batch and every item are committed.
 * - `GET /v1/batches/{id}` — the batch's status: counts per state, success rate, progress and each item.
 * Each item is an ordinary request (status, cancel, result work on it as usual); never more than
 * `concurrency` items of one batch run at once.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ErrandConfig } from '../../config/index.js';
import type { Engine } from '../../engine/index.js';
import { ErrandError, isBatchId, isTerminal, REQUEST_STATUSES, type Batch, type RequestStatus } from '../../model/index.js';
import type { RequestSummary } from '../../store/index.js';
import { callerOf } from '../caller.js';
import { limitsOf } from '../limits/index.js';
import { LIST_RESULT_MAX_BYTES, presentRequest } from '../present.js';
import { parseWith } from '../validate.js';
import { HTTP_URL_PATTERN } from './submit.js';

/** `POST /v1/batches` body, with `batches.max_items` as the item limit (also in the OpenAPI document). */
export function batchBodySchema(maxItems: number) {
  return z.strictObject({
    operation: z.string({ error: 'is required: the name of a declared operation' }).min(1).max(64),
    items: z
      .array(z.unknown(), { error: 'is required: an array of inputs, one per item' })
      .min(1, 'must hold at least one item')
      .max(maxItems, `must hold at most ${maxItems} items (batches.max_items)`),
    concurrency: z.number({ error: 'must be a whole number' }).int('must be a whole number').min(1).max(10_000).optional(),
    webhook_url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .max(2048)
      .meta({ pattern: HTTP_URL_PATTERN })
      .nullable()
      .optional(),
    metadata: z.record(z.string(), z.unknown(), { error: 'must be an object' }).optional(),
    priority: z.number().int().min(-100).max(100).optional(),
  });
}

export function batchRoutes(app: FastifyInstance, deps: { engine: Engine; config: ErrandConfig }): void {
  const { engine, config } = deps;
  const batchBody = batchBodySchema(config.batches.max_items);

  app.post('/v1/batches', async (request, reply) => {
    const caller = callerOf(request);
    const body = parseWith(batchBody, request.body ?? {});
    if (!engine.operations.has(body.operation)) {
      throw new ErrandError('operation_not_found', `No operation named "${body.operation}" is declared in the config.`, {
        field: 'operation',
      });
    }
    await limitsOf(request).admitSubmission(request, reply, { operation: body.operation, cost: body.items.length });
    const { batch, requests } = await engine.submitBatch({
      tenant: caller.submitTenant,
      operation: body.operation,
      items: body.items.map((item) => (item === undefined ? {} : item)),
      concurrency: body.concurrency ?? config.batches.default_concurrency,
      webhookUrl: body.webhook_url ?? config.async.webhook_url,
      metadata: body.metadata,
      priority: body.priority,
    });
    request.log.info({ batch_id: batch.id, operation: batch.operation, tenant: batch.tenant, items: batch.total }, 'batch accepted');
    const location = `/v1/batches/${batch.id}`;
    return reply
      .code(202)
      .header('location', location)
      .header('retry-after', '1')
      .send({ ...presentBatch(batch, requests), location, request_ids: requests.map((r) => r.id) });
  });

  app.get('/v1/batches/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    const caller = callerOf(request);
    const found = isBatchId(id) ? await engine.getBatch({ id, tenant: caller.tenant, resultMaxBytes: LIST_RESULT_MAX_BYTES }) : null;
    if (!found) throw new ErrandError('batch_not_found', `No batch with id "${id.slice(0, 80)}".`);
    const body = presentBatch(found.batch, found.items);
    if (body.status !== 'completed') void reply.header('retry-after', '2');
    return { ...body, items: found.items.map((item) => presentRequest(item)) };
  });
}

/** A batch's status: counts per state, and derived totals. Items purged by retention count as `purged`. */
function presentBatch(
  batch: Batch,
  items: readonly Pick<RequestSummary, 'status' | 'completed_at'>[],
): Record<string, unknown> & { status: string } {
  const counts = Object.fromEntries(REQUEST_STATUSES.map((s) => [s, 0])) as Record<RequestStatus, number>;
  for (const item of items) counts[item.status] += 1;
  const purged = batch.total - items.length;
  const finished = counts.completed + counts.failed + counts.cancelled + purged;
  const allDone = items.every((item) => isTerminal(item.status));
  const completedAt = allDone && items.length > 0 ? Math.max(...items.map((i) => i.completed_at ?? 0)) : null;
  return {
    batch_id: batch.id,
    operation: batch.operation,
    status: allDone ? 'completed' : counts.processing > 0 || finished > 0 ? 'processing' : 'pending',
    total: batch.total,
    concurrency: batch.concurrency,
    counts: { ...counts, purged },
    succeeded: counts.completed,
    failed: counts.failed,
    pending: counts.pending + counts.processing,
    success_rate: finished - purged > 0 ? counts.completed / (finished - purged) : null,
    progress: batch.total > 0 ? Math.round((finished / batch.total) * 100) : 100,
    webhook_url: batch.webhook_url,
    metadata: batch.metadata,
    created_at: new Date(batch.created_at).toISOString(),
    completed_at: completedAt === null ? null : new Date(completedAt).toISOString(),
  };
}
