/**
 * The client commands of `errand` (docs/cli.md): they talk to a running server
 * through `@errand/client`. `registerClientCommands` adds them and the global
 * `--url`, `--api-key` and `--json` options; `reportCliError` turns what a
 * command threw into an exit status (exitCodes.ts).
 */
import { CommanderError, type Command } from 'commander';
import { CommandExit, EXIT } from './exitCodes.js';
import { registerRequestCommands } from './requestCommands.js';
import { registerSubmitCommands } from './submitCommands.js';
import { registerTailCommand } from './tail.js';
import { registerWatchCommand } from './watch.js';

const EXIT_CODES_HELP = `
Environment: ERRAND_URL (default http://127.0.0.1:8001), ERRAND_API_KEY.
Exit codes: 0 done (the request completed), 1 the request failed, 2 usage error,
  3 the request was cancelled, 4 timed out waiting, 5 server unreachable,
  6 the server refused the call (its error type is printed), 130 interrupted.
Docs: docs/cli.md`;

export function registerClientCommands(program: Command): void {
  program
    .option('--url <url>', 'the Errand server (default: $ERRAND_URL, else http://127.0.0.1:8001)')
    .option('--api-key <key>', 'the API key (default: $ERRAND_API_KEY)')
    .option('--json', 'print JSON for scripts, one document per line')
    .showHelpAfterError()
    .exitOverride()
    .addHelpText('after', EXIT_CODES_HELP);
  // Commands registered earlier (serve …) get the same usage errors: message, hint, exit 2.
  for (const command of program.commands) command.showHelpAfterError().exitOverride();
  registerSubmitCommands(program);
  registerWatchCommand(program);
  registerRequestCommands(program);
  registerTailCommand(program);
}

/**
 * The exit status for what a command threw, after saying why on stderr in one
 * line; undefined for anything else (a bug: the caller prints the stack).
 */
export function reportCliError(err: unknown, stderr: NodeJS.WritableStream = process.stderr): number | undefined {
  if (err instanceof CommanderError) {
    // Commander already printed the mistake and the hint; --help and --version are not mistakes.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof CommandExit) {
    if (err.message) stderr.write(`errand: ${err.message}\n`);
    return err.code;
  }
  return undefined;
}
