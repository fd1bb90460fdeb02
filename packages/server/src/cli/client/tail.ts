/**
 * `errand tail`: the live events of every request the key may see
 * (`GET /v1/events`), one line each, until Ctrl-C or `--count` events.
 */
import type { Command } from 'commander';
import { clientAction } from './context.js';
import { formatTailLine } from './format.js';
import { countParser } from './input.js';

export function registerTailCommand(program: Command): void {
  program
    .command('tail')
    .description('print the live events of all your requests (Ctrl-C to stop)')
    .option('-o, --operation <name>', 'only this operation')
    .option('-c, --count <n>', 'stop after this many events', countParser(1, 1_000_000_000))
    .action(
      clientAction(async (ctx, flags: { operation?: string; count?: number }) => {
        if (ctx.out.interactive) ctx.out.note(`following events at ${ctx.baseUrl}/v1/events (Ctrl-C to stop)`);
        let seen = 0;
        const events = ctx.errand.tail({ signal: ctx.signal, ...(flags.operation ? { operation: flags.operation } : {}) });
        for await (const event of events) {
          if (ctx.out.json) ctx.out.document(event);
          else ctx.out.line(formatTailLine(event));
          if (flags.count !== undefined && ++seen >= flags.count) break;
        }
      }),
    );
}
