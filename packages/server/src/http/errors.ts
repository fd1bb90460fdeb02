/**
 * Maps anything thrown in a route to the one error envelope,
 * `{"error": {"type", "message", "field"?, "retryable", …}}`, with the catalog's
 * status code. Fastify's own errors (body too large, bad media type) are
 * translated; anything unknown is a logged `internal_error` that leaks nothing,
 * and no 5xx repeats the text of the error that caused it (see `forCaller`).
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { ErrandError } from '../model/index.js';

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | ErrandError, request, reply) => {
    const mapped = toErrandError(error);
    // The log gets the error as thrown (message, stack, cause); the caller only `mapped`.
    if (mapped.type === 'internal_error') request.log.error({ err: error }, 'unhandled error');
    else if (mapped.status >= 500) request.log.warn({ err: error }, error.message);
    if (mapped.retryAfterSeconds !== undefined) void reply.header('retry-after', String(mapped.retryAfterSeconds));
    void reply.code(mapped.status).type('application/json; charset=utf-8').send(mapped.toEnvelope());
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new ErrandError('route_not_found', `No endpoint ${request.method} ${request.url.split('?')[0]}; see docs/api.md.`);
    void reply.code(error.status).send(error.toEnvelope());
  });
}

/** Any error thrown in a route, as a catalog error fit to answer (unknown ones become `internal_error`). */
export function toErrandError(error: FastifyError | ErrandError): ErrandError {
  return forCaller(mapError(error));
}

/**
 * What a caller may read. A 5xx caused by another error (a driver's, the file
 * system's: `The PostgreSQL store is unavailable (connect ECONNREFUSED
 * 10.0.0.7:5432)`) answers only its catalog message; the full error is logged
 * by the handler. A 503 always says when to come back (`Retry-After`, 1 s unless
 * the error says otherwise).
 */
function forCaller(error: ErrandError): ErrandError {
  const hidden = error.status >= 500 && error.cause !== undefined;
  const retryAfterSeconds = error.retryAfterSeconds ?? (error.status === 503 ? 1 : undefined);
  if (!hidden && retryAfterSeconds === error.retryAfterSeconds) return error;
  return new ErrandError(error.type, hidden ? undefined : error.message, {
    field: error.field,
    details: error.details,
    retryAfterSeconds,
    cause: error,
  });
}

function mapError(error: FastifyError | ErrandError): ErrandError {
  if (error instanceof ErrandError) return error;
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ErrandError('payload_too_large', undefined, { cause: error });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ErrandError('unsupported_media_type', undefined, { cause: error });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ErrandError('invalid_json', 'The request body length does not match its Content-Length header.', { cause: error });
    default:
      break;
  }
  if (error.statusCode === 413) return new ErrandError('payload_too_large', undefined, { cause: error });
  if (error.statusCode === 400 && error.validation) return new ErrandError('invalid_parameter', error.message, { cause: error });
  if (error.statusCode === 400) return new ErrandError('invalid_json', error.message, { cause: error });
  if (error.statusCode === 503) return new ErrandError('store_unavailable', undefined, { cause: error, retryAfterSeconds: 1 });
  return new ErrandError('internal_error', undefined, { cause: error });
}
