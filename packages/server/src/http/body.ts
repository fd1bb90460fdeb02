/**
 * Request body parsing. Every content type is read as JSON, because the seeds'
 * curl examples send JSON with `curl -d`, which labels it
 * `application/x-www-form-urlencoded`. A form body that is not JSON
 * (`message=hi&async=true`) is read as fields ("true"/"false" become booleans).
 *
 * Documentation placeholders: the seeds write `{"data": {...}}`. When a body is
 * not valid JSON only because of such a `{...}` or `[...]` placeholder, it is
 * read as an empty object or array (and logged), so the examples run as written.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ErrandError } from '../model/index.js';

const PLACEHOLDER_OBJECT = /\{\s*(?:\.\.\.|…)\s*\}/g;
const PLACEHOLDER_ARRAY = /\[\s*(?:\.\.\.|…)\s*\]/g;

/** Installs the parser on `app` for every content type. */
export function registerBodyParser(app: FastifyInstance, bodyLimit: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (request, body, done) => {
    try {
      done(null, parseBody(request, body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}

function parseBody(request: FastifyRequest, text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  const type = (request.headers['content-type'] ?? '').toLowerCase();
  const looksJson = /^[[{"]/.test(trimmed) || /^(-?\d|true$|false$|null$)/.test(trimmed);
  if (type.startsWith('application/x-www-form-urlencoded') && !looksJson) return parseForm(trimmed);
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (cause) {
    const relaxed = trimmed.replace(PLACEHOLDER_OBJECT, '{}').replace(PLACEHOLDER_ARRAY, '[]');
    if (relaxed !== trimmed) {
      try {
        value = JSON.parse(relaxed);
        request.log.info('request body used a documentation placeholder ({...}); read it as empty');
      } catch {
        throw new ErrandError('invalid_json', `The request body is not valid JSON: ${(cause as Error).message}`, { cause });
      }
    } else {
      throw new ErrandError('invalid_json', `The request body is not valid JSON: ${(cause as Error).message}`, { cause });
    }
  }
  if (depthExceeds(value, MAX_DEPTH)) {
    throw new ErrandError('invalid_json', `The request body nests deeper than ${MAX_DEPTH} levels.`);
  }
  return value;
}

/** Deepest nesting a body may have: far beyond real payloads, far below what JSON.stringify can recurse through. */
const MAX_DEPTH = 128;

function depthExceeds(root: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (typeof value !== 'object' || value === null) continue;
    if (depth > max) return true;
    for (const child of Object.values(value)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

function parseForm(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(text)) {
    out[key] = value === 'true' ? true : value === 'false' ? false : value;
  }
  return out;
}
