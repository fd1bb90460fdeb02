#!/usr/bin/env node
/** The `errand` command. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { serve } from './serve.js';

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
    await serve(options);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`errand: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
