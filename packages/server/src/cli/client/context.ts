/**
 * What every client command gets: the SDK client for `--url` / `--api-key`
 * (else `ERRAND_URL` / `ERRAND_API_KEY`, else http://127.0.0.1:8001 and no
 * key), the output (`--json` or human), and a signal that Ctrl-C aborts.
 * `clientAction` wraps a command so that whatever it throws becomes an exit
 * status and one line on stderr (exitCodes.ts), never a stack trace.
 */
import { Errand } from '@errand/client';
import type { Command } from 'commander';
import { CommandExit, EXIT, exitOutcomeOf, UsageError } from './exitCodes.js';
import { Output } from './output.js';

const DEFAULT_URL = 'http://127.0.0.1:8001';

/** The options every client command accepts (declared once on the program). */
interface GlobalOptions {
  url?: string;
  apiKey?: string;
  json?: boolean;
}

export interface ClientContext {
  errand: Errand;
  out: Output;
  baseUrl: string;
  /** Aborted by Ctrl-C (SIGINT) or SIGTERM. */
  signal: AbortSignal;
}

function resolveGlobals(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): { baseUrl: string; apiKey: string | undefined } {
  const baseUrl = (options.url ?? env.ERRAND_URL ?? '').trim() || DEFAULT_URL;
  let parsed: URL;
  try {
    parsed = new URL(baseUrl);
  } catch {
    throw new UsageError(`--url: "${baseUrl}" is not a URL; give the server's address, e.g. ${DEFAULT_URL}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(`--url: "${baseUrl}" must start with http:// or https://`);
  }
  const apiKey = (options.apiKey ?? env.ERRAND_API_KEY ?? '').trim() || undefined;
  return { baseUrl: baseUrl.replace(/\/+$/, ''), apiKey };
}

/**
 * The action for a client command: `run(ctx, ...args)` with the command's
 * positional arguments and its own options (globals are in `ctx`).
 */
export function clientAction<A extends unknown[]>(
  run: (ctx: ClientContext, ...args: A) => Promise<void>,
): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const globals = command.optsWithGlobals<GlobalOptions>();
    const out = new Output(globals.json === true);
    let baseUrl = DEFAULT_URL;
    const controller = new AbortController();
    const interrupt = () => controller.abort(Object.assign(new Error('interrupted'), { name: 'AbortError' }));
    process.once('SIGINT', interrupt);
    process.once('SIGTERM', interrupt);
    try {
      const resolved = resolveGlobals(globals);
      baseUrl = resolved.baseUrl;
      const errand = new Errand({ baseUrl, apiKey: resolved.apiKey });
      await run({ errand, out, baseUrl, signal: controller.signal }, ...(args.slice(0, -1) as A));
    } catch (err) {
      if (controller.signal.aborted) throw new CommandExit(EXIT.interrupted, 'interrupted');
      const outcome = exitOutcomeOf(err, baseUrl);
      if (outcome) throw new CommandExit(outcome.code, outcome.message);
      throw err;
    } finally {
      process.off('SIGINT', interrupt);
      process.off('SIGTERM', interrupt);
    }
  };
}
