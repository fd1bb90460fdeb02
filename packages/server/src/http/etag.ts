/**
 * Entity tags for the status resource. The ETag is strong and derived from
 * the JSON body exactly as sent (a truncated SHA-256, base64url, quoted), so it
 * changes whenever anything a client can see changes and never otherwise.
 * `If-None-Match` is compared weakly, as RFC 9110 §13.1.2 asks for GET/HEAD:
 * `W/"x"` matches `"x"`, and `*` matches any representation.
 */
import { createHash } from 'node:crypto';

/** The ETag (with its quotes) of a body. 22 base64url characters = 132 bits. */
export function etagOf(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
}

/** What an `If-None-Match` header asks for: any representation (`*`), some tags, or nothing (absent or empty). */
export type IfNoneMatch = { any: true } | { any: false; tags: ReadonlySet<string> } | null;

/** Longest `If-None-Match` header read; anything longer is ignored (treated as absent). */
const MAX_HEADER_LENGTH = 4096;

/**
 * Parses `If-None-Match`. Tags are kept in their strong form (`"x"`); a weak
 * `W/"x"` becomes `"x"`. A bare token some clients send unquoted (`x`) is read
 * as `"x"`.
 */
export function parseIfNoneMatch(header: string | string[] | undefined): IfNoneMatch {
  const text = (Array.isArray(header) ? header.join(',') : (header ?? '')).trim();
  if (text === '' || text.length > MAX_HEADER_LENGTH) return null;
  if (text === '*') return { any: true };
  const tags = new Set<string>();
  for (const match of text.matchAll(/(?:W\/)?("[^"]*")|([^\s,"]+)/g)) {
    if (match[1] !== undefined) tags.add(match[1]);
    else if (match[2] === '*') return { any: true };
    else if (match[2] !== undefined) tags.add(`"${match[2]}"`);
  }
  return tags.size === 0 ? null : { any: false, tags };
}

/** True when the client already has the representation tagged `etag`. */
export function matchesIfNoneMatch(condition: IfNoneMatch, etag: string): boolean {
  if (condition === null) return false;
  return condition.any || condition.tags.has(etag);
}
