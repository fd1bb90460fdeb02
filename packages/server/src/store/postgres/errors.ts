/**
 * Which PostgreSQL / driver errors mean "the store is unavailable, try again"
 * (HTTP 503 + Retry-After, see docs/errors.md), as opposed to a bug or a
 * constraint violation that must surface as it is. An error raised while a
 * commit's outcome is unknown (the connection dropped) is unavailable too: the
 * caller acknowledges nothing, so nothing acknowledged is lost.
 */
import { ErrandError } from '../../model/index.js';

/** Socket errors of a database that is down, restarting or unreachable. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/**
 * SQLSTATE classes and codes: 08 connection exception, 53 insufficient resources (too many connections, disk full),
 * 57P01–57P05 shutdown / crash / cannot connect now / idle session timeout, 58 system error (I/O), 40001/40P01
 * serialization failure and deadlock (a retry succeeds), 25P03 our session was idle in a transaction too long.
 */
const UNAVAILABLE_STATES = [/^08/, /^53/, /^57P0[1-5]$/, /^58/, /^40001$/, /^40P01$/, /^25P03$/];

/** node-postgres reports these conditions as plain Errors, without a code. */
const DRIVER_MESSAGES = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error/i,
  /Client was closed and is not queryable/i,
  /Cannot use a pool after calling end/i,
  /connect ECONNREFUSED/i,
];

function isUnavailable(cause: unknown): boolean {
  if (cause instanceof ErrandError) return false;
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return UNAVAILABLE_STATES.some((re) => re.test(code));
  }
  // Several connection attempts at once fail as one AggregateError (IPv4 + IPv6).
  if (cause instanceof AggregateError) return cause.errors.some(isUnavailable);
  const message = (cause as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' && DRIVER_MESSAGES.some((re) => re.test(message));
}

/** Turns "unavailable" errors into the catalog's `store_unavailable`; other errors pass through. */
export function translatePgError(cause: unknown): unknown {
  if (!isUnavailable(cause)) return cause;
  const code = (cause as { code?: unknown }).code;
  const what = typeof code === 'string' ? code : ((cause as Error).message ?? String(cause));
  return new ErrandError('store_unavailable', `The PostgreSQL store is unavailable (${what}); retry shortly.`, {
    cause,
    retryAfterSeconds: 1,
  });
}
