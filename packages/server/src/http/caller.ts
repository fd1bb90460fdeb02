import type { FastifyRequest } from 'fastify';
import type { Caller } from './auth.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on every /v1 route. */
    caller: Caller | null;
  }
}

/** The authenticated caller (the auth hook has run on every /v1 route). */
export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) throw new Error('auth hook did not run for this route');
  return request.caller;
}
