/**
 * `errand status`, `result`, `cancel`, `retry` and `list`: one request by id,
 * or a page-by-page listing of the key's requests.
 */
import type { RequestStatus, StatusResource } from '@errand/client';
import { InvalidArgumentError, type Command } from 'commander';
import { clientAction } from './context.js';
import { formatList } from './format.js';
import { countParser, secondsParser } from './input.js';
import { finish, reportAccepted, reportStatus } from './report.js';

const STATUSES = ['pending', 'processing', 'completed', 'failed', 'cancelled'] as const;
/** Default number of requests `list` shows. */
const LIST_DEFAULT = 20;
/** Most requests one `list` shows (it pages through the server's cursor). */
const LIST_MAX = 10_000;
/** The server's largest page. */
const PAGE_MAX = 100;

export function registerRequestCommands(program: Command): void {
  program
    .command('status')
    .description("print a request's status resource (exit 0 whatever the request's state)")
    .argument('<id>', 'the request id (req_…)')
    .action(
      clientAction(async (ctx, id: string) => {
        reportStatus(ctx.out, await ctx.errand.getRequestStatus(id));
      }),
    );

  program
    .command('result')
    .description('wait for a request to end and print its result (exit 1 if it failed, 3 if cancelled)')
    .argument('<id>', 'the request id')
    .option('--timeout <seconds>', 'stop waiting after this long (exit 4; the request keeps running)', secondsParser)
    .action(
      clientAction(async (ctx, id: string, flags: { timeout?: number }) => {
        await finish(ctx.out, ctx.errand.request(id), { timeoutMs: flags.timeout, signal: ctx.signal });
      }),
    );

  program
    .command('cancel')
    .description('cancel a pending or running request')
    .argument('<id>', 'the request id')
    .action(
      clientAction(async (ctx, id: string) => {
        const status = await ctx.errand.cancelRequest(id);
        if (ctx.out.json) ctx.out.document(status);
        else ctx.out.line(`cancelled ${status.request_id}`);
      }),
    );

  program
    .command('retry')
    .description('run a failed or cancelled request again, as a new request')
    .argument('<id>', 'the failed or cancelled request')
    .option('--wait', 'wait for the new request to end and print its result')
    .option('--timeout <seconds>', 'with --wait: stop waiting after this long (exit 4)', secondsParser)
    .action(
      clientAction(async (ctx, id: string, flags: { wait?: boolean; timeout?: number }) => {
        const handle = await ctx.errand.request(id).retry();
        if (!flags.wait) return reportAccepted(ctx.out, handle);
        await finish(ctx.out, handle, { timeoutMs: flags.timeout, signal: ctx.signal });
      }),
    );

  program
    .command('list')
    .description('list your requests, newest first')
    .option('-s, --status <statuses>', `only these statuses, comma-separated (${STATUSES.join(', ')})`, parseStatuses)
    .option('-o, --operation <name>', 'only this operation')
    .option('-n, --limit <n>', `show at most this many (default ${LIST_DEFAULT})`, countParser(1, LIST_MAX), LIST_DEFAULT)
    .action(
      clientAction(async (ctx, flags: { status?: RequestStatus[]; operation?: string; limit: number }) => {
        const rows: StatusResource[] = [];
        const pages = ctx.errand.list({
          limit: Math.min(flags.limit, PAGE_MAX),
          signal: ctx.signal,
          ...(flags.status ? { status: flags.status } : {}),
          ...(flags.operation ? { operation: flags.operation } : {}),
        });
        let shown = 0;
        for await (const status of pages) {
          // Scripts get each row as it arrives; people get one aligned table.
          if (ctx.out.json) ctx.out.document(status);
          else rows.push(status);
          if (++shown >= flags.limit) break;
        }
        if (!ctx.out.json) ctx.out.line(rows.length === 0 ? 'no requests' : formatList(rows));
      }),
    );
}

function parseStatuses(value: string): RequestStatus[] {
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = list.filter((s) => !(STATUSES as readonly string[]).includes(s));
  if (list.length === 0 || bad.length > 0)
    throw new InvalidArgumentError(`must be one or more of ${STATUSES.join(', ')}, comma-separated.`);
  return list as RequestStatus[];
}
