/**
 * The `command` kind: runs a local program per attempt, the input as one JSON
 * line on its stdin. docs/operations.md#command documents the protocol; in short,
 * stdout lines that are a JSON object with exactly one of these keys steer the request:
 *
 *   {"progress": {...}}   → ctx.progress(...)
 *   {"output": <json>}    → ctx.emit(<json>)   (an output chunk)
 *   {"result": <json>}    → the result (the last one wins)
 *   {"error": {"message", "type"?, "retryable"?}} → fails the attempt
 *
 * Without a `result` line, the rest of stdout is the result when it is JSON as
 * a whole, else its last line that is a JSON object or array; stdout that is
 * not empty but holds no JSON fails with `command_invalid_output`. Other
 * lines are logged at debug level and otherwise ignored.
 *
 * The program runs without a shell (`run` is exec'd as given), in its own
 * process group. Cancel, timeout and shutdown send SIGTERM to the whole group,
 * then SIGKILL after `grace`; when the program exits, whatever it left running
 * in its group gets the same. A guard in the group kills it when Errand dies,
 * SIGKILL included (processGroups.ts), so no process outlives its request or
 * the server that ran it.
 *
 * The program's environment is built, not inherited: the base below, the
 * names in `env_passthrough`, then `env`, then ERRAND_REQUEST_ID,
 * ERRAND_OPERATION and ERRAND_ATTEMPT. Errand's keys, store URL and provider
 * secrets stay out unless an operator lists them.
 *
 * A failed run tells the tenant only what happened ("The program exited with
 * status 2", details `{exit_code, signal}`): the program's path, the working
 * folder, the spawn error and the stderr tail can name files, hosts and
 * secrets, so they go to the request's log lines (`ctx.log`, under the
 * request id) for the operator. A program's own `{"error": …}` line is
 * written for the tenant and is passed on as it is.
 */
import { createInterface } from 'node:readline';
import type { CommandKindConfig } from '../../config/index.js';
import { RequestFailure } from '../../model/index.js';
import type { OperationContext, OperationDefinition } from '../define.js';
import { spawnGroup, stopGroup, type GroupChild } from './processGroups.js';

/** Bytes of stderr kept for the log line of a failed run (tenants never see stderr). */
const STDERR_TAIL_BYTES = 2000;
/** Exit status a program uses to ask for a retry (EX_TEMPFAIL in sysexits.h). */
const EXIT_TEMPFAIL = 75;
const PROTOCOL_KEYS = new Set(['progress', 'output', 'result', 'error']);
/** Variables every program gets from Errand's environment when they are set: where to find programs, home, locale, time zone, temp folder. */
const COMMAND_BASE_ENV: readonly string[] = ['PATH', 'HOME', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR'];
/** Prefixes of base variables (the locale categories LC_ALL, LC_CTYPE, …). */
const COMMAND_BASE_ENV_PREFIXES: readonly string[] = ['LC_'];

export function commandOperation(spec: CommandKindConfig): OperationDefinition {
  const [program = '', ...args] = spec.run;
  const shown = spec.run.join(' ');
  return {
    description: `command: ${shown}`,
    run(input: unknown, ctx: OperationContext) {
      return runCommand(spec, program, args, input, ctx);
    },
  };
}

/** The program's whole environment: the base and the pass-through (read from Errand's), then `env`, then Errand's own three. */
function programEnvironment(spec: CommandKindConfig, ctx: OperationContext): Record<string, string> {
  const wanted = new Set([...COMMAND_BASE_ENV, ...spec.env_passthrough]);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (wanted.has(name) || COMMAND_BASE_ENV_PREFIXES.some((prefix) => name.startsWith(prefix))) env[name] = value;
  }
  return {
    ...env,
    ...spec.env,
    ERRAND_REQUEST_ID: ctx.request_id,
    ERRAND_OPERATION: ctx.operation,
    ERRAND_ATTEMPT: String(ctx.attempt),
  };
}

/** Whether the PID 1 warning was logged (once per process). */
let pid1Warned = false;

async function runCommand(
  spec: CommandKindConfig,
  program: string,
  args: string[],
  input: unknown,
  ctx: OperationContext,
): Promise<unknown> {
  const cwd = spec.cwd ?? process.cwd();
  if (process.pid === 1 && !pid1Warned) {
    pid1Warned = true;
    // Orphans are reparented to PID 1, and Node.js never reaps processes it did not start.
    ctx.log.warn(
      'Errand runs as PID 1: processes that command operations leave behind stay as zombies; run it under an init (docker run --init, tini)',
    );
  }
  let child: GroupChild;
  try {
    child = await spawnGroup(program, args, { cwd, env: programEnvironment(spec, ctx) });
  } catch (error) {
    throw spawnFailure(error as NodeJS.ErrnoException, program, spec.cwd, ctx);
  }
  return watch(child, spec, program, input, ctx);
}

function watch(child: GroupChild, spec: CommandKindConfig, program: string, input: unknown, ctx: OperationContext): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const pid = child.pid;
    let stopping: unknown; // set once the run is being stopped: the error it ends with
    let spawnError: NodeJS.ErrnoException | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let stdoutBytes = 0;
    let stderrTail = '';
    let result: { value: unknown } | undefined;
    let reported: RequestFailure | undefined;
    const other: string[] = [];
    let steps = Promise.resolve(); // progress and output, applied in order
    let settled = false;
    let open = 2; // stdout and stderr, until they close

    // SIGTERM to the group now, SIGKILL after the grace period.
    const stopAll = () => {
      if (pid !== undefined) stopGroup(pid, spec.grace);
    };
    const terminate = (reason: unknown) => {
      stopping ??= reason;
      stopAll();
    };
    const onAbort = () => terminate(ctx.signal.reason);
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });

    child.on('error', (error: NodeJS.ErrnoException) => {
      // Only a failed spawn leaves the child without a pid; later errors (a failed kill) change nothing.
      if (pid === undefined) {
        spawnError = error;
        settle();
      }
    });
    child.stdin.on('error', () => {
      // A program that exits without reading its input closes the pipe: not an error by itself.
    });
    child.stdin.end(`${JSON.stringify(input ?? null)}\n`);

    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > spec.max_output && stopping === undefined) {
        terminate(
          RequestFailure.nonRetryable(
            `The program wrote more than ${spec.max_output} bytes to stdout; it was stopped. Raise command.max_output or write less`,
            {
              type: 'command_output_too_large',
              details: { limit_bytes: spec.max_output },
            },
          ),
        );
      }
    });
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
      if (stopping !== undefined) return;
      const message = protocolMessage(line);
      if (message === undefined) {
        if (line.trim() !== '') {
          other.push(line);
          ctx.log.debug({ line: line.slice(0, 500) }, 'command stdout');
        }
        return;
      }
      const [key, value] = message;
      if (key === 'result') result = { value };
      else if (key === 'error') reported = reportedFailure(value);
      else if (key === 'output')
        steps = steps.then(() => ctx.emit(value)).catch((err: unknown) => ctx.log.warn({ err }, 'command output chunk not recorded'));
      else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        steps = steps.then(() => ctx.progress(value)).catch((err: unknown) => ctx.log.warn({ err }, 'command progress not recorded'));
      } else ctx.log.warn({ line: line.slice(0, 200) }, 'command progress must be an object such as {"progress": {"percent": 50}}');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
    });

    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Whatever the program left running in its group goes with it (and the guard, after the grace period).
      stopAll();
      settle();
    });
    const streamClosed = () => {
      open -= 1;
      settle();
    };
    child.stdout.on('close', streamClosed);
    child.stderr.on('close', streamClosed);

    // The outcome is known once the program has exited and its stdout and stderr are read to the end.
    // (Not the child's 'close': that also waits for the guard, which outlives the program by the grace period.)
    function settle(): void {
      if (settled || (spawnError === undefined && (exit === undefined || open > 0))) return;
      settled = true;
      ctx.signal.removeEventListener('abort', onAbort);
      void steps.then(() => {
        try {
          resolve(outcome());
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    }

    function outcome(): unknown {
      if (stopping !== undefined) throw stopping;
      if (spawnError) throw spawnFailure(spawnError, program, spec.cwd, ctx);
      if (reported) throw reported;
      const stderr = stderrTail.trim();
      if (exit?.signal || exit?.code !== 0) {
        const signal = exit?.signal ?? null;
        const code = signal === null ? (exit?.code ?? null) : null;
        // The operator's view: which program, where, and what it said on stderr.
        ctx.log.warn({ program, cwd: spec.cwd ?? process.cwd(), exit_code: code, signal, stderr }, 'command failed');
        const details = { exit_code: code, signal };
        if (signal !== null) throw RequestFailure.retryable(`The program was killed by ${signal}`, { type: 'command_failed', details });
        const retry = code === EXIT_TEMPFAIL;
        const message = `The program exited with status ${code}${retry ? ' (temporary failure, will retry)' : ''}`;
        throw retry
          ? RequestFailure.retryable(message, { type: 'command_failed', details })
          : RequestFailure.nonRetryable(message, { type: 'command_failed', details });
      }
      if (result) return result.value;
      return resultFromText(other, program, ctx);
    }
  });
}

/** `[key, value]` when `line` is a protocol message: a JSON object with exactly one of the protocol keys. */
function protocolMessage(line: string): [string, unknown] | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const keys = Object.keys(parsed);
  const key = keys[0];
  if (keys.length !== 1 || key === undefined || !PROTOCOL_KEYS.has(key)) return undefined;
  return [key, (parsed as Record<string, unknown>)[key]];
}

/** The result from stdout without a `result` line: the text as JSON, else its last JSON object/array line. */
function resultFromText(lines: string[], program: string, ctx: OperationContext): unknown {
  const text = lines.join('\n').trim();
  if (text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Not one JSON document: look for a final JSON line.
  }
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = (lines[i] ?? '').trim();
    if (!line.startsWith('{') && !line.startsWith('[')) continue;
    try {
      return JSON.parse(line) as unknown;
    } catch {
      // keep looking
    }
  }
  ctx.log.warn({ program, stdout: text.slice(0, 1000) }, 'command printed no JSON result');
  throw RequestFailure.nonRetryable('The program printed no JSON result; print {"result": …} or a final JSON line', {
    type: 'command_invalid_output',
  });
}

function reportedFailure(value: unknown): RequestFailure {
  const obj = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const message = typeof value === 'string' ? value : typeof obj.message === 'string' ? obj.message : 'The program reported an error';
  const type = typeof obj.type === 'string' ? obj.type : 'command_failed';
  const options = { type, ...(obj.details === undefined ? {} : { details: obj.details }) };
  return obj.retryable === true ? RequestFailure.retryable(message, options) : RequestFailure.nonRetryable(message, options);
}

/** A program that could not be started: the tenant learns that and the error code; the log gets the path, folder and error. */
function spawnFailure(error: NodeJS.ErrnoException, program: string, cwd: string | undefined, ctx: OperationContext): RequestFailure {
  ctx.log.error(
    { program, cwd: cwd ?? process.cwd(), code: error.code ?? null, err: error },
    'command could not be started; fix operations.<name>.command.run',
  );
  const why =
    error.code === 'ENOENT' ? 'it was not found' : error.code === 'EACCES' ? 'it is not executable' : 'the system refused to start it';
  return RequestFailure.nonRetryable(`The program could not be started: ${why} (the operator's log has the details)`, {
    type: 'command_not_found',
    details: { code: error.code ?? null },
    cause: error,
  });
}
