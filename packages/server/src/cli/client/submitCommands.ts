/**
 * `errand submit`, `errand chat` and `errand trigger`: start a request, then
 * either hand back its id (`--async`) or wait for its end and print the result.
 */
import type { Command } from 'commander';
import { clientAction } from './context.js';
import { readJsonArgument, secondsParser } from './input.js';
import { finish, reportAccepted, reportFinished } from './report.js';

interface SubmitFlags {
  input?: string;
  async?: boolean;
  wait?: boolean;
  idempotencyKey?: string;
  timeout?: number;
}

export function registerSubmitCommands(program: Command): void {
  program
    .command('submit')
    .description('run an operation; waits for the result unless --async')
    .argument('<operation>', 'the operation name (see the server config)')
    .option('-i, --input <json>', 'the input: JSON, @file.json, or - for stdin (default {})')
    .option('--async', 'return the request id at once instead of waiting')
    .option('--wait', 'with --async: submit asynchronously, then wait for the end anyway')
    .option('--idempotency-key <key>', 'send this Idempotency-Key (a repeat returns the same request)')
    .option('--timeout <seconds>', 'stop waiting after this long (exit 4; the request keeps running)', secondsParser)
    .action(
      clientAction(async (ctx, operation: string, flags: SubmitFlags) => {
        const input = flags.input === undefined ? {} : await readJsonArgument('--input', flags.input);
        const handle = await ctx.errand.submit(operation, input, {
          // With --timeout, submit asynchronously so that the bounded wait knows the id it leaves running.
          mode: flags.async || flags.timeout ? 'async' : 'sync',
          signal: ctx.signal,
          ...(flags.idempotencyKey ? { idempotencyKey: flags.idempotencyKey } : {}),
        });
        if (flags.async && !flags.wait) return reportAccepted(ctx.out, handle);
        await finish(ctx.out, handle, { timeoutMs: flags.timeout, signal: ctx.signal });
      }),
    );

  program
    .command('chat')
    .description('send a message to the configured chat operation and print the answer')
    .argument('<message>', 'the message')
    .option('--async', 'return the request id at once instead of waiting')
    .option('--timeout <seconds>', 'stop waiting after this long (exit 4)', secondsParser)
    .action(
      clientAction(async (ctx, message: string, flags: { async?: boolean; timeout?: number }) => {
        if (flags.async) return reportAccepted(ctx.out, await ctx.errand.chatAsync(message, { signal: ctx.signal }));
        // With --timeout, submit asynchronously so that the bounded wait knows the id it leaves running.
        const status = flags.timeout
          ? await (await ctx.errand.chatAsync(message, { signal: ctx.signal })).wait({ signal: ctx.signal, timeoutMs: flags.timeout })
          : await ctx.errand.chat(message, { signal: ctx.signal });
        const text = (status.result as { text?: unknown } | null | undefined)?.text;
        // An assistant's answer is its `text` (the example assistant's shape); people get just that.
        if (!ctx.out.json && status.status === 'completed' && typeof text === 'string') return ctx.out.line(text);
        reportFinished(ctx.out, status);
      }),
    );

  program
    .command('trigger')
    .description('fire a trigger (as a webhook would); prints the request id unless --wait')
    .argument('<name>', 'the trigger name (triggers.<name> in the server config)')
    .requiredOption('-d, --data <json>', 'the payload: JSON, @file.json, or - for stdin')
    .option('--wait', 'wait for the end and print the result')
    .option('--idempotency-key <key>', 'send this Idempotency-Key')
    .option('--timeout <seconds>', 'with --wait: stop waiting after this long (exit 4)', secondsParser)
    .action(
      clientAction(async (ctx, name: string, flags: SubmitFlags & { data: string }) => {
        const data = await readJsonArgument('--data', flags.data);
        const handle = await ctx.errand.trigger(name, data, {
          signal: ctx.signal,
          ...(flags.idempotencyKey ? { idempotencyKey: flags.idempotencyKey } : {}),
        });
        if (!flags.wait) return reportAccepted(ctx.out, handle);
        await finish(ctx.out, handle, { timeoutMs: flags.timeout, signal: ctx.signal });
      }),
    );
}
