/**
 * The baseline for bench/run.mjs and bench/polling.mjs: a minimal Fastify
 * server that does no work, answering the same request shapes as Errand (a 202
 * submission with a Location header, a 200 status read, and a 304 status read
 * when `If-None-Match` is sent — any value: no tag is computed or compared).
 * Listens on 127.0.0.1, port from argv[2] (default 0 = any free port), and
 * prints `listening on <url>` to stdout. SIGTERM/SIGINT close it.
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';

const app = Fastify({ logger: false });

app.post('/v1/operations/:name', async (request, reply) => {
  void request.body; // parsed as JSON by Fastify, as Errand does
  const id = `req_${randomUUID().replaceAll('-', '').slice(0, 26)}`;
  const location = `/v1/requests/${id}`;
  return reply
    .code(202)
    .header('location', location)
    .header('retry-after', '1')
    .send({ request_id: id, status: 'pending', estimated_time: null, location });
});

/** The tag every 304 carries: a do-nothing server has nothing to hash. */
const ETAG = '"baseline-0000000000000"';

app.get('/v1/requests/:id', async (request, reply) => {
  const { id } = request.params;
  if (request.headers['if-none-match'] !== undefined) {
    return reply.code(304).header('etag', ETAG).header('cache-control', 'private, no-cache').header('retry-after', '1').send();
  }
  // The same fields as Errand's status resource for a completed request.
  const now = new Date().toISOString();
  return {
    request_id: id,
    status: 'completed',
    operation: 'noop',
    progress: 100,
    message: null,
    current_step: null,
    total_steps: null,
    completed_steps: null,
    result: null,
    attempt: 1,
    max_attempts: 3,
    created_at: now,
    started_at: now,
    completed_at: now,
    duration_ms: 0,
  };
});

const url = await app.listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0) });
process.stdout.write(`listening on ${url}\n`);

let closing = false;
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    if (closing) process.exit(1);
    closing = true;
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
