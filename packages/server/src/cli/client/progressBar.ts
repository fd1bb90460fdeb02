/**
 * The `watch` display, on stderr (stdout is for the result). On a terminal: a
 * cli-progress bar with the percentage, the current step and the latest
 * message, redrawn in place. Elsewhere (a pipe, a CI log): one plain line each
 * time the progress changes, so a log does not fill up with carriage returns.
 */
import cliProgress from 'cli-progress';
import type { Output } from './output.js';

export interface ProgressView {
  /** Percent done, 0–100; null when the operation has not reported any. */
  percent: number | null;
  step: string;
  message: string;
}

export interface ProgressDisplay {
  update(view: ProgressView): void;
  /** Ends the display; `completed` moves the bar to 100 %. */
  stop(completed: boolean): void;
}

/** Bar width in characters: fits an 80-column terminal with the step and message. */
const BAR_SIZE = 30;

export function progressDisplay(out: Output, label: string): ProgressDisplay {
  return out.interactive ? new BarDisplay(out, label) : new LineDisplay(out);
}

class BarDisplay implements ProgressDisplay {
  private readonly bar: cliProgress.SingleBar;
  private last: ProgressView = { percent: null, step: '', message: '' };
  private stopped = false;

  constructor(out: Output, label: string) {
    this.bar = new cliProgress.SingleBar(
      {
        format: `${label} {bar} {percentage}% | {step} | {message}`,
        stream: out.progressStream,
        barsize: BAR_SIZE,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        // Ctrl-C is the command's to handle (it stops the bar, then exits 130).
        gracefulExit: false,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(100, 0, { step: '', message: 'waiting' });
  }

  update(view: ProgressView): void {
    if (this.stopped) return;
    this.last = view;
    this.bar.update(clampPercent(view.percent ?? 0), { step: view.step || '-', message: view.message || '' });
  }

  stop(completed: boolean): void {
    if (this.stopped) return;
    if (completed) this.bar.update(100, { step: this.last.step || '-', message: this.last.message || 'done' });
    this.stopped = true;
    this.bar.stop();
  }
}

class LineDisplay implements ProgressDisplay {
  private lastLine = '';

  constructor(private readonly out: Output) {}

  update(view: ProgressView): void {
    const line = formatView(view);
    if (line === this.lastLine) return;
    this.lastLine = line;
    this.out.note(line);
  }

  stop(completed: boolean): void {
    if (completed && !this.lastLine.startsWith('100%')) this.update({ percent: 100, step: '', message: 'done' });
  }
}

function formatView(view: ProgressView): string {
  const percent = view.percent === null ? '–' : `${clampPercent(view.percent)}%`;
  return [percent, view.step, view.message].filter(Boolean).join('  ');
}

function clampPercent(percent: number): number {
  return Math.max(0, Math.min(100, Math.round(percent)));
}
