import type { Logger } from 'pino';
import type { Progress } from '../model/index.js';
import type { GuardedFetchInit } from '../net/index.js';

/** What a handler gets besides its input. */
export interface OperationContext {
  /** The request being run. */
  readonly request_id: string;
  readonly operation: string;
  readonly tenant: string;
  /** This attempt's number, from 1. */
  readonly attempt: number;
  readonly max_attempts: number;
  /** Aborts on cancel, task timeout, workflow timeout, lost lease or shutdown; `signal.reason` says which. */
  readonly signal: AbortSignal;
  /** Epoch ms when the whole request times out. */
  readonly deadline: number;
  /** Records progress (any subset of the fields, merged over earlier reports in this attempt); visible on the status resource at once. */
  progress(progress: Progress): Promise<void>;
  /** Appends a chunk of partial output (e.g. streamed text) to the request's event log. */
  emit(chunk: unknown): Promise<void>;
  /**
   * `fetch()` under Errand's SSRF guard: the way to fetch a URL a tenant gave
   * (docs/operations.md#fetching-user-supplied-urls). Loopback, private,
   * link-local, metadata and other internal addresses are refused unless
   * `fetch.allow` lists them, every redirect hop is checked, and `fetch.timeout`
   * and `fetch.max_response_bytes` bound it (per call: `timeoutMs`,
   * `maxResponseBytes`, `maxRedirects`). Aborts with {@link signal}. Fails with
   * a `FetchFailure` (`fetch_forbidden`, `fetch_unreachable`, …) the engine
   * records and retries as its `retryable` says; any status comes back as a Response.
   */
  fetch(input: string | URL, init?: GuardedFetchInit): Promise<Response>;
  /** A logger whose lines carry request_id, operation and tenant. */
  readonly log: Logger;
}

/** An operation's implementation: the default export of its module. */
export interface OperationDefinition<Input = unknown, Output = unknown> {
  /** Does the work; returns the result (any JSON value). Throw to fail; see RequestFailure for retries. */
  run(input: Input, ctx: OperationContext): Output | Promise<Output>;
  /** Shown in listings and the start-up banner. */
  description?: string;
  /**
   * A guess of the run time in seconds for this input, used for `auto` mode and
   * `estimated_time` until the operation has enough history (then history wins).
   */
  estimate?(input: Input): number;
}

const DEFINED = Symbol.for('errand.operation');

/**
 * Declares an operation. The module's default export:
 *
 * ```ts
 * import { defineOperation } from 'errand';
 * export default defineOperation({
 *   async run(input: { text: string }, ctx) {
 *     await ctx.progress({ percent: 50, message: 'Halfway' });
 *     return { words: input.text.split(/\s+/).length };
 *   },
 * });
 * ```
 */
export function defineOperation<Input = unknown, Output = unknown>(
  definition: OperationDefinition<Input, Output>,
): OperationDefinition<Input, Output> {
  if (typeof definition !== 'object' || definition === null || typeof definition.run !== 'function') {
    throw new TypeError('defineOperation({ run(input, ctx) { … } }) needs a run function');
  }
  return Object.freeze({ ...definition, [DEFINED]: true });
}

/** True when `value` can serve as an operation: made by defineOperation or any object with a `run` function. */
export function isOperationDefinition(value: unknown): value is OperationDefinition {
  return typeof value === 'object' && value !== null && typeof (value as { run?: unknown }).run === 'function';
}
