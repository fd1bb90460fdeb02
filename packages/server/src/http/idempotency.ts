/**
 * The `Idempotency-Key` header (also `X-Idempotency-Key`) on submission
 * endpoints: 1–255 visible ASCII characters, scoped to the tenant. The
 * fingerprint says what was submitted — method, path, query and body — so the
 * same key with a different submission is recognised as a conflict.
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ErrandError } from '../model/index.js';

export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;
const KEY_PATTERN = /^[\x21-\x7e]+$/;

/** The key the caller sent, validated; undefined when none. */
export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const raw = request.headers['idempotency-key'] ?? request.headers['x-idempotency-key'];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? raw.join(',') : raw;
  if (key.length === 0 || key.length > IDEMPOTENCY_KEY_MAX_LENGTH || !KEY_PATTERN.test(key)) {
    throw new ErrandError(
      'invalid_parameter',
      `Idempotency-Key must be 1-${IDEMPOTENCY_KEY_MAX_LENGTH} visible ASCII characters (a UUID is a good choice).`,
      { field: 'Idempotency-Key' },
    );
  }
  return key;
}

/** A hash of what was submitted (method, URL and parsed body). */
export function fingerprintOf(request: FastifyRequest): string {
  return createHash('sha256')
    .update(`${request.method} ${request.url}\n`)
    .update(JSON.stringify(request.body ?? null))
    .digest('base64url');
}
