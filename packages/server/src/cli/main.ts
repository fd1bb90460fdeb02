#!/usr/bin/env node
/** The `errand` command. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerClientCommands, reportCliError } from './client/index.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('errand')
  .description('Errand: durable asynchronous request-reply for long-running work')
  .version(pkg.version);

program
  .command('serve')
  .description('start a server node')
  .option('-c, --config <file>', 'config file (default: $ERRAND_CONFIG, else ./errand.yaml if present, else built-in defaults)')
  .option('-p, --port <port>', 'port to listen on (overrides server.port)')
  .option('--host <host>', 'interface to listen on (overrides server.host)')
  .action(async (options: { config?: string; port?: string; host?: string }) => {
    // Loaded on demand: the client commands start without the server's modules (seconds on a busy machine).
    const { serve } = await import('./serve.js');
    await serve(options);
  });

program
  .command('migrate')
  .description('apply pending store migrations (PostgreSQL or SQLite) and print what was done')
  .option('-c, --config <file>', 'config file (default: $ERRAND_CONFIG, else ./errand.yaml if present)')
  // Not --url: that global option names the Errand server for the client commands.
  .option('--store-url <url>', 'store URL (overrides store.url), e.g. postgres://user@host:5432/db?schema=errand')
  .action(async (options: { config?: string; storeUrl?: string }) => {
    const { migrateCommand } = await import('./migrate.js');
    process.exitCode = await migrateCommand({ config: options.config, url: options.storeUrl });
  });

registerClientCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  // Usage mistakes and client-command outcomes have their own exit codes (docs/cli.md#exit-codes).
  const code = reportCliError(err);
  if (code !== undefined) {
    process.exitCode = code;
    return;
  }
  process.stderr.write(`errand: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
