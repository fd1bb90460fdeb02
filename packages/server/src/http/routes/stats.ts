/**
 * `GET /v1/stats`: per-operation throughput, success rate, duration
 * percentiles and queue depth over a recent window, of the requests the
 * caller's key may see (the dashboard's operations page). See
 * `../operationStats.ts` for how it is computed and bounded.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Engine } from '../../engine/index.js';
import { callerOf } from '../caller.js';
import { computeStats } from '../operationStats.js';
import { parseWith } from '../validate.js';

/** Window when `window_minutes` is not given. */
const STATS_WINDOW_MINUTES_DEFAULT = 60;
const STATS_WINDOW_MINUTES_MIN = 5;
/** Seven days. */
const STATS_WINDOW_MINUTES_MAX = 10_080;

/** `GET /v1/stats` query (also in the OpenAPI document). */
export const statsQuery = z.strictObject({
  window_minutes: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(STATS_WINDOW_MINUTES_MIN, `must be at least ${STATS_WINDOW_MINUTES_MIN}`)
    .max(STATS_WINDOW_MINUTES_MAX, `must be at most ${STATS_WINDOW_MINUTES_MAX} (7 days)`)
    .optional(),
});

export function statsRoutes(app: FastifyInstance, deps: { engine: Engine }): void {
  const { engine } = deps;
  app.get('/v1/stats', async (request, reply) => {
    const caller = callerOf(request);
    const query = parseWith(statsQuery, request.query ?? {}, 'query');
    const minutes = query.window_minutes ?? STATS_WINDOW_MINUTES_DEFAULT;
    const stats = await computeStats({
      engine,
      tenant: caller.tenant,
      operations: [...engine.operations.keys()],
      now: engine.clock.now(),
      windowMs: minutes * 60_000,
    });
    void reply.header('cache-control', 'no-store');
    return { caller: { admin: caller.admin, tenant: caller.tenant }, ...stats };
  });
}
