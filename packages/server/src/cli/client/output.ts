/**
 * Where the client commands write: `--json` gives one JSON document per line
 * on stdout (for scripts and `jq`), otherwise human text, aligned for reading.
 * Progress, diagnostics and errors go to stderr so that stdout stays the answer.
 */
export interface OutputStreams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export class Output {
  constructor(
    readonly json: boolean,
    private readonly streams: OutputStreams = { stdout: process.stdout, stderr: process.stderr },
  ) {}

  /** True when a person is watching stderr, where progress goes: a bar is drawn rather than lines printed. */
  get interactive(): boolean {
    return !this.json && this.streams.stderr.isTTY === true;
  }

  /** Where progress is shown: stderr, so that stdout stays the answer (`errand watch ID > result.json`). */
  get progressStream(): OutputStreams['stderr'] {
    return this.streams.stderr;
  }

  /** One JSON document, one line. */
  document(value: unknown): void {
    this.streams.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** Human text (a trailing newline is added). */
  line(text = ''): void {
    this.streams.stdout.write(`${text}\n`);
  }

  /** A note for the person, not the answer. */
  note(text: string): void {
    this.streams.stderr.write(`${text}\n`);
  }
}
