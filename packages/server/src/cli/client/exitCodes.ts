/**
 * What the client commands' exit status means (docs/cli.md#exit-codes), and
 * the one place an error becomes an exit status and a one-line message.
 *
 * Scripts branch on these, so they are stable: a code is never reused for
 * something else.
 */
import { ErrandApiError, ErrandNetworkError, ErrandTimeoutError, RequestCancelledError, RequestFailedError } from '@errand/client';

export const EXIT = {
  /** The command did what was asked (for waiting commands: the request completed). */
  ok: 0,
  /** The request ended `failed`. */
  failed: 1,
  /** Bad command line: unknown command or flag, missing argument, input that is not JSON. */
  usage: 2,
  /** The request ended `cancelled`. */
  cancelled: 3,
  /** A wait (`--timeout`) ran out before the request ended; it keeps running. */
  timedOut: 4,
  /** The server could not be reached (or answered something that is not Errand's JSON). */
  unreachable: 5,
  /** The server refused the call: its error envelope (401, 404, 409, 422, 429, 5xx …). */
  apiError: 6,
  /** Interrupted (Ctrl-C): 128 + SIGINT, as shells expect. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A command-line mistake found after parsing (bad JSON in --input, a non-numeric --limit …). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Ends a command with a status and, optionally, a message for stderr (already said: none). */
export class CommandExit extends Error {
  override readonly name = 'CommandExit';
  constructor(
    readonly code: ExitCode,
    message = '',
  ) {
    super(message);
  }
}

export interface ExitOutcome {
  code: ExitCode;
  /** One line for stderr (no stack). */
  message: string;
}

/** Maps what a client command threw to its exit status and one line; null for a bug (print the stack). */
export function exitOutcomeOf(err: unknown, baseUrl: string): ExitOutcome | null {
  if (err instanceof CommandExit) return { code: err.code, message: err.message };
  if (err instanceof UsageError) return { code: EXIT.usage, message: err.message };
  if (err instanceof RequestFailedError) {
    const e = err.error;
    return { code: EXIT.failed, message: `request ${err.requestId} failed: ${e.type}: ${e.message}` };
  }
  if (err instanceof RequestCancelledError) return { code: EXIT.cancelled, message: `request ${err.requestId} was cancelled` };
  if (err instanceof ErrandTimeoutError) {
    const message = oneLine(err.message);
    return { code: EXIT.timedOut, message: /keeps running/.test(message) ? message : `${message} (the request keeps running)` };
  }
  if (err instanceof ErrandNetworkError) {
    if (err.type === 'invalid_response') {
      return {
        code: EXIT.unreachable,
        message: `the server at ${baseUrl} did not answer like an Errand server: ${oneLine(err.message)} (check --url)`,
      };
    }
    return { code: EXIT.unreachable, message: `cannot reach the Errand server at ${baseUrl}: ${reasonOf(err)} (set --url or ERRAND_URL)` };
  }
  if (err instanceof ErrandApiError) {
    const field = err.field === undefined ? '' : ` (field ${err.field})`;
    return { code: EXIT.apiError, message: `${oneLine(err.message)}${field}` };
  }
  if (err instanceof Error && err.name === 'TimeoutError')
    return { code: EXIT.timedOut, message: 'timed out (a request already accepted keeps running)' };
  if (isAbort(err)) return { code: EXIT.interrupted, message: 'interrupted' };
  return null;
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: unknown }).code === 'ABORT_ERR');
}

/** The innermost cause's message (fetch says "fetch failed"; the cause says ECONNREFUSED). */
function reasonOf(err: Error): string {
  let reason = err.message;
  let cause: unknown = err.cause;
  for (let depth = 0; depth < 5 && cause instanceof Error; depth++) {
    const code = (cause as { code?: unknown }).code;
    reason = typeof code === 'string' && !cause.message.includes(code) ? `${cause.message} (${code})` : cause.message;
    cause = cause.cause;
  }
  return oneLine(reason);
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}
