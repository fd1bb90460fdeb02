/**
 * How a background service reports a failure that repeats (the store is
 * down): the first one at error level, the repeats at warn, so an outage
 * is one error in the log and not one per retry.
 */
import type { Logger } from 'pino';

export interface FailureLogOptions {
  /** The first failure since the last success, at error level. */
  failed: string;
  /** The repeats, at warn level (default: `failed` again). */
  stillFailing?: string | undefined;
  /** Which repeats are logged: every one (default), or only the 2nd, 4th, 8th, … */
  repeats?: 'every' | 'doubling' | undefined;
}

/** A failure reporter: call it with the error and how many failed in a row (1 = the first), plus any log fields. */
export type FailureReporter = (err: unknown, failures: number, fields?: Record<string, unknown>) => void;

export function logFailures(log: Logger, options: FailureLogOptions): FailureReporter {
  return (err, failures, fields = {}) => {
    if (failures <= 1) {
      log.error({ err }, options.failed);
      return;
    }
    if (options.repeats === 'doubling' && !Number.isInteger(Math.log2(failures))) return;
    log.warn({ err, failures, ...fields }, options.stillFailing ?? options.failed);
  };
}
