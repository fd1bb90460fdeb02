/**
 * `errand watch ID`: a live progress bar (percent, current step, message)
 * until the request ends, then its result. It follows the request's event
 * stream (the SDK reconnects it with Last-Event-ID); if the stream cannot be
 * had at all (a proxy that buffers SSE, say), it falls back to waiting with
 * long-poll, which reports progress too. `--json` prints each event as a line
 * and then the final status resource.
 */
import {
  ErrandNetworkError,
  isTerminal,
  type ProgressEventData,
  type RequestEventMessage,
  type StatusEventData,
  type StatusResource,
} from '@errand/client';
import type { Command } from 'commander';
import { clientAction, type ClientContext } from './context.js';
import { CommandExit, EXIT } from './exitCodes.js';
import { formatStep } from './format.js';
import { secondsParser } from './input.js';
import { progressDisplay, type ProgressView } from './progressBar.js';
import { reportFinished } from './report.js';

export function registerWatchCommand(program: Command): void {
  program
    .command('watch')
    .description('follow a request with a live progress bar, then print its result')
    .argument('<id>', 'the request id')
    .option('--timeout <seconds>', 'stop watching after this long (exit 4; the request keeps running)', secondsParser)
    .action(clientAction(async (ctx, id: string, flags: { timeout?: number }) => watch(ctx, id, flags.timeout)));
}

async function watch(ctx: ClientContext, id: string, timeoutMs: number | undefined): Promise<void> {
  const handle = ctx.errand.request(id);
  const timeout = timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined;
  const signal = timeout ? AbortSignal.any([ctx.signal, timeout]) : ctx.signal;
  const first = await handle.status({ signal });
  const display = ctx.out.json ? null : progressDisplay(ctx.out, id);
  let view = viewOf(first);
  display?.update(view);
  let final: StatusResource | undefined = isTerminal(first.status) ? first : undefined;
  try {
    if (!final) {
      try {
        for await (const message of handle.events({ signal })) {
          if (ctx.out.json) ctx.out.document({ request_id: id, ...message });
          if (isTerminalMessage(message)) {
            final = message.data;
            break;
          }
          view = nextView(view, message);
          display?.update(view);
        }
      } catch (err) {
        // Only a stream that could not be had falls back; a timeout, Ctrl-C or an API error ends the watch.
        if (signal.aborted || !(err instanceof ErrandNetworkError)) throw err;
      }
      final ??= await handle.wait({
        signal,
        onProgress: (status) => {
          view = viewOf(status);
          display?.update(view);
        },
      });
    }
  } catch (err) {
    display?.stop(false);
    if (timeout?.aborted && !ctx.signal.aborted) {
      throw new CommandExit(EXIT.timedOut, `request ${id} was not finished after ${timeoutMs} ms; it keeps running`);
    }
    throw err;
  }
  display?.stop(final.status === 'completed');
  reportFinished(ctx.out, final);
}

function isTerminalMessage(message: RequestEventMessage): message is Extract<RequestEventMessage, { data: StatusResource }> {
  return message.event === 'completed' || message.event === 'failed' || message.event === 'cancelled';
}

function viewOf(status: StatusResource): ProgressView {
  return {
    percent: status.status === 'completed' ? 100 : status.progress,
    step: formatStep(status) || status.status,
    message: status.message ?? '',
  };
}

function nextView(view: ProgressView, message: RequestEventMessage): ProgressView {
  if (message.event === 'progress') {
    const p = message.data as ProgressEventData;
    const step = formatStep({
      current_step: p.current_step ?? null,
      completed_steps: p.completed_steps ?? null,
      total_steps: p.total_steps ?? null,
    });
    return { percent: p.percent ?? view.percent, step: step || view.step, message: p.message ?? view.message };
  }
  if (message.event === 'status') {
    const s = message.data as StatusEventData;
    // Back to pending after a failed attempt: say why, and that it will run again.
    if (s.status === 'pending' && s.error)
      return { ...view, step: `retrying (attempt ${s.attempt + 1})`, message: `${s.error.type}: ${s.error.message}` };
    if (view.step === '' || view.step === 'pending' || view.step === 'processing') return { ...view, step: s.status };
  }
  return view;
}
