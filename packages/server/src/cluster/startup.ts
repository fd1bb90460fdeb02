/**
 * Start-up against a database that may not be up yet (several nodes and the
 * database started together, a database restarting): keep trying with
 * exponential backoff for `store.startup_timeout`, saying each time what is
 * wrong, then give up with the last reason (the CLI exits non-zero: a process
 * supervisor restarts it, and a misconfigured URL does not retry forever).
 * Only `store_unavailable` is retried: a bad URL or a failed migration is not
 * going to fix itself.
 */
import type { Logger } from 'pino';
import { sleep, type Clock } from '../clock/index.js';
import { ErrandError } from '../model/index.js';

export interface RetryStartupOptions<T> {
  /** One attempt (e.g. open and migrate the store). */
  attempt: () => Promise<T>;
  /** Give up after this long (ms); 0 tries once. */
  timeoutMs: number;
  clock: Clock;
  log: Logger;
  /** What is being reached, for the messages (no secrets: the URL's password is masked by the caller). */
  what: string;
  initialDelayMs?: number | undefined;
  maxDelayMs?: number | undefined;
}

/** Runs `attempt` until it succeeds, retrying `store_unavailable` with backoff until `timeoutMs`. */
export async function retryStartup<T>(options: RetryStartupOptions<T>): Promise<T> {
  const { clock, log, timeoutMs } = options;
  const started = clock.now();
  let delay = options.initialDelayMs ?? 250;
  const maxDelay = options.maxDelayMs ?? 5000;
  // The clock's timers never keep the process alive; nothing else does yet at start-up.
  const keepAlive = setInterval(() => {}, 60_000);
  try {
    return await attemptUntil();
  } finally {
    clearInterval(keepAlive);
  }

  async function attemptUntil(): Promise<T> {
    // Bounded: with at least 1 ms per round, and far fewer in practice (the delay doubles).
    for (let round = 1; round <= 100_000; round++) {
      try {
        const value = await options.attempt();
        if (round > 1) log.info({ attempts: round }, `reached ${options.what}`);
        return value;
      } catch (err) {
        const elapsed = clock.now() - started;
        const retryable = err instanceof ErrandError && err.type === 'store_unavailable';
        if (!retryable || elapsed + delay > timeoutMs) {
          if (!retryable) throw err;
          const reason = err.cause instanceof Error ? err.cause.message : err.message;
          throw new ErrandError(
            'store_unavailable',
            `could not reach ${options.what} ${timeoutMs > 0 ? `within store.startup_timeout (${Math.round(timeoutMs / 1000)}s)` : '(store.startup_timeout is 0: no retry)'}: ${reason}`,
            { cause: err },
          );
        }
        log.warn(
          { err, attempt: round, retry_in_ms: delay, gives_up_in_ms: Math.max(0, timeoutMs - elapsed) },
          `cannot reach ${options.what}; retrying (store.startup_timeout bounds how long)`,
        );
        await sleep(clock, delay);
        delay = Math.min(maxDelay, delay * 2);
      }
    }
    throw new ErrandError('store_unavailable', `could not reach ${options.what}`);
  }
}

/** The URL with its password (in the user info or a `password` parameter) masked: the one masking used by messages, logs and the banner. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    // libpq-style URLs may carry the password as a parameter too.
    for (const name of [...parsed.searchParams.keys()]) if (/^password$/i.test(name)) parsed.searchParams.set(name, '***');
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@').replace(/([?&]password=)[^&]*/gi, '$1***');
  }
}
