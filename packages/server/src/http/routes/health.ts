/**
 * `GET /health` — the process is up (liveness). `GET /ready` — the store answers
 * and the engine accepts work (readiness); 503 otherwise. Neither needs a key.
 */
import type { FastifyInstance } from 'fastify';
import type { Engine } from '../../engine/index.js';
import { ErrandError } from '../../model/index.js';

export function healthRoutes(app: FastifyInstance, deps: { engine: Engine }): void {
  const { engine } = deps;
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async () => {
    if (!engine.accepting) throw new ErrandError('shutting_down');
    let counts;
    try {
      counts = await engine.countRequests();
    } catch (cause) {
      throw new ErrandError('store_unavailable', undefined, { cause, retryAfterSeconds: 1 });
    }
    return { status: 'ready', pending: counts.pending, processing: counts.processing, running_here: engine.runningCount };
  });
}
