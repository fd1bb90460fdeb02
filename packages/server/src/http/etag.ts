/**
 * Entity tags for the status resource. The ETag is strong: a truncated
 * SHA-256 (base64url, quoted) of the request's *changing state* — status,
 * attempt, start, end and run times, progress, error (`RequestState`) — and
 * of which presentation it is (`/v1/requests` or `/v1/tasks`). Everything else
 * in the body is fixed when the request is created, and the result is fixed
 * once it is completed, so the tag changes whenever anything a client can see
 * changes and never otherwise (an output chunk or a lease renewal does not
 * change it). Being computed from the state, not from the body, a `304` needs
 * only the small read `requestGetState`: no result, no body, no hash of it.
 * `STATE_TAG_FORMAT` changes whenever the body's shape does, so that no client
 * keeps a body of an older shape under a tag that still matches.
 * `If-None-Match` is compared weakly, as RFC 9110 §13.1.2 asks for GET/HEAD:
 * `W/"x"` matches `"x"`, and `*` matches any representation.
 */
import { createHash } from 'node:crypto';
import type { RequestState } from '../store/index.js';

/** Bumped whenever the status resource's shape changes (see the header). */
const STATE_TAG_FORMAT = 'status-v1';

/** The ETag (with its quotes) of `state` as presented by `presentation`. 22 base64url characters = 132 bits. */
export function stateTag(state: RequestState, presentation: 'requests' | 'tasks'): string {
  const text = [
    STATE_TAG_FORMAT,
    presentation,
    state.id,
    state.status,
    state.attempt,
    state.run_at,
    state.started_at,
    state.completed_at,
    JSON.stringify(state.progress),
    JSON.stringify(state.error),
  ].join('\n');
  return `"${createHash('sha256').update(text).digest('base64url').slice(0, 22)}"`;
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
