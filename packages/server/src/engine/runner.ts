/**
 * Runs one attempt of a claimed request: calls the operation's handler with its
 * context, renews the lease while it runs, enforces the task and workflow
 * timeouts, and records the outcome with a guarded store update.
 *
 * The attempt ends (and its worker slot is freed) at the first of: the handler
 * settles, the timeout fires, the request is cancelled, the lease is lost, or
 * the engine shuts down. A handler that ignores its abort signal keeps running
 * in the background, but whatever it returns later is discarded: the store
 * refuses an outcome from a claim that is no longer current.
 */
import type { Logger } from 'pino';
import { formatSeconds } from '../config/index.js';
import { classifyFailure, type Progress, type Request, type RequestError } from '../model/index.js';
import type { Operation, OperationContext } from '../operations/index.js';
import type { GuardedFetcher } from '../net/index.js';
import { failureOutcome, type Store, type Transition } from '../store/index.js';
import type { Clock } from '../clock/index.js';
import { eventNameForTransition, type EngineEvents } from './events.js';

export interface RunnerDeps {
  store: Store;
  clock: Clock;
  events: EngineEvents;
  log: Logger;
  owner: string;
  leaseMs: number;
  heartbeatMs: number;
  random: () => number;
  /** Behind `ctx.fetch`: the SSRF-guarded, bounded fetch. */
  fetcher: GuardedFetcher;
}

/** Why an attempt was stopped from outside. */
export type AbortCause = 'cancelled' | 'lease_lost' | 'shutdown';

/** A running attempt. */
export interface RunningAttempt {
  readonly request: Request;
  /** Settles when the attempt is over (outcome recorded or abandoned); never rejects. */
  readonly done: Promise<void>;
  /** Stops the attempt; the handler's signal aborts with `cause`. */
  abort(cause: AbortCause): void;
}

/** Publishes a committed transition on the engine's events. */
export function publishTransition(events: EngineEvents, transition: Transition | null): void {
  if (transition) events.emit(eventNameForTransition(transition.kind), transition);
}

class StopSignal {
  constructor(readonly cause: AbortCause | 'task_timeout' | 'workflow_timeout') {}
}

export function runAttempt(deps: RunnerDeps, request: Request, operation: Operation): RunningAttempt {
  const { store, clock, events, owner } = deps;
  const ref = { id: request.id, attempt: request.attempt, owner };
  const controller = new AbortController();
  const log = deps.log.child({ request_id: request.id, operation: request.operation, tenant: request.tenant, attempt: request.attempt });
  let stop: (s: StopSignal) => void = () => {};
  let progressSoFar: Progress = {};
  const stopped = new Promise<StopSignal>((resolve) => (stop = resolve));

  const abort = (cause: StopSignal['cause'], reason: Error) => {
    if (controller.signal.aborted) return;
    controller.abort(reason);
    stop(new StopSignal(cause));
  };

  const ctx: OperationContext = {
    request_id: request.id,
    operation: request.operation,
    tenant: request.tenant,
    attempt: request.attempt,
    max_attempts: request.max_attempts,
    signal: controller.signal,
    deadline: request.deadline,
    log,
    async progress(progress: Progress) {
      if (controller.signal.aborted) return;
      progressSoFar = { ...progressSoFar, ...sanitiseProgress(progress, log) };
      const transition = await store.requestProgress({ ...ref, now: clock.now(), progress: progressSoFar });
      if (transition) events.emit('request:progress', transition);
      await yieldToEventLoop();
    },
    fetch(input, init = {}) {
      const signal = init.signal ? AbortSignal.any([controller.signal, init.signal]) : controller.signal;
      return deps.fetcher.fetch(input, { ...init, signal }, log);
    },
    async emit(chunk: unknown) {
      if (controller.signal.aborted) return;
      if (!isJsonValue(chunk)) throw new TypeError('ctx.emit(chunk) needs a JSON-serialisable value');
      const event = await store.eventAppend({ ...ref, now: clock.now(), type: 'output', data: chunk });
      if (event) events.emit('request:output', { request: null, event });
      await yieldToEventLoop();
    },
  };

  const done = (async () => {
    const now = clock.now();
    const toDeadline = request.deadline - now;
    const byWorkflow = toDeadline < request.task_timeout_ms;
    const limitMs = Math.max(0, byWorkflow ? toDeadline : request.task_timeout_ms);
    const timeoutError = byWorkflow
      ? { type: 'workflow_timeout', message: `Workflow exceeded timeout (${formatSeconds(operation.workflowTimeoutMs)})` }
      : { type: 'task_timeout', message: `Task exceeded timeout (${formatSeconds(request.task_timeout_ms)})` };

    const timeout = clock.setTimeout(
      () =>
        abort(
          byWorkflow ? 'workflow_timeout' : 'task_timeout',
          Object.assign(new Error(timeoutError.message), { ...timeoutError, retryable: false }),
        ),
      limitMs,
    );
    let heartbeat = clock.setTimeout(function beat() {
      store
        .leaseExtend({ ...ref, now: clock.now(), leaseMs: deps.leaseMs })
        .then((held) => {
          if (!held) abort('lease_lost', Object.assign(new Error('The lease on this request was lost'), { type: 'lease_lost' }));
          else if (!controller.signal.aborted) heartbeat = clock.setTimeout(beat, deps.heartbeatMs);
        })
        .catch((err: unknown) => {
          log.warn({ err }, 'lease heartbeat failed; will try again');
          if (!controller.signal.aborted) heartbeat = clock.setTimeout(beat, deps.heartbeatMs);
        });
    }, deps.heartbeatMs);

    const handler = Promise.resolve()
      .then(() => operation.definition.run(request.input, ctx))
      .then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      );
    const outcome = await Promise.race([handler, stopped]);
    clock.clearTimeout(timeout);
    clock.clearTimeout(heartbeat);

    try {
      if (outcome instanceof StopSignal) {
        if (outcome.cause === 'task_timeout' || outcome.cause === 'workflow_timeout') {
          log.warn({ limit_ms: limitMs }, timeoutError.message);
          publishTransition(events, await store.requestFail({ ...ref, now: clock.now(), error: { ...timeoutError, retryable: false } }));
        } else if (outcome.cause === 'shutdown') {
          // Hand the request back without counting this attempt: it runs again at the next start.
          publishTransition(events, await store.requestRelease({ ...ref, now: clock.now() }));
          log.info('attempt stopped by shutdown; request released for the next start');
        } else {
          log.info({ cause: outcome.cause }, 'attempt stopped');
        }
        return;
      }
      if (controller.signal.aborted) return;
      controller.abort(new Error('attempt finished'));
      if (outcome.ok) {
        const result = outcome.value === undefined ? null : outcome.value;
        if (!isJsonValue(result)) {
          const error: RequestError = {
            type: 'invalid_result',
            message: 'The operation returned a value that is not JSON-serialisable (a function, BigInt, symbol or a cycle)',
            retryable: false,
          };
          publishTransition(events, await store.requestFail({ ...ref, now: clock.now(), error }));
          return;
        }
        const transition = await store.requestComplete({ ...ref, now: clock.now(), result });
        if (!transition) log.warn('result discarded: the request was cancelled or its lease was lost');
        publishTransition(events, transition);
        return;
      }
      await recordFailure(outcome.error);
    } catch (err) {
      log.error({ err }, 'could not record the outcome of an attempt; the lease will expire and the request will be rescued');
    }
  })();

  async function recordFailure(thrown: unknown): Promise<void> {
    const { error, retryAfterMs } = classifyFailure(thrown);
    const now = clock.now();
    const outcome = failureOutcome({ request, error, retryAfterMs, now, policy: operation.retry, random: deps.random });
    if (outcome.retry) {
      // The thrown value in full (stack, cause) goes to the log; the tenant sees only `error` (see classifyFailure).
      log.warn({ err: thrown, error, retry_in_ms: outcome.delayMs }, 'attempt failed; will retry');
      publishTransition(events, await store.requestRetry({ ...ref, now, error, runAt: outcome.runAt }));
    } else {
      log.warn({ err: thrown, error }, 'request failed');
      publishTransition(events, await store.requestFail({ ...ref, now, error }));
    }
  }

  return {
    request,
    done,
    abort(cause) {
      const message =
        cause === 'cancelled'
          ? 'Request cancelled by user'
          : cause === 'shutdown'
            ? 'The server is shutting down'
            : 'The lease on this request was lost';
      abort(cause, Object.assign(new Error(message), { type: cause }));
    },
  };
}

/**
 * Lets the server answer other callers (status polls, cancels) between a
 * CPU-heavy handler's progress reports, whatever the store's batching does.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function isJsonValue(value: unknown): boolean {
  try {
    return JSON.stringify(value) !== undefined;
  } catch {
    return false;
  }
}

const PROGRESS_KEYS = ['percent', 'message', 'current_step', 'total_steps', 'completed_steps'] as const;

/** Keeps the known, well-typed fields; clamps percent to 0–100; warns about the rest. */
function sanitiseProgress(progress: Progress, log: Logger): Progress {
  const out: Progress = {};
  if (typeof progress !== 'object' || progress === null) {
    log.warn('ctx.progress() needs an object such as { percent: 50, message: "…" }');
    return out;
  }
  for (const key of Object.keys(progress)) {
    if (!(PROGRESS_KEYS as readonly string[]).includes(key)) log.warn({ key }, 'ctx.progress(): unknown field ignored');
  }
  if (typeof progress.percent === 'number' && Number.isFinite(progress.percent)) out.percent = Math.min(100, Math.max(0, progress.percent));
  if (typeof progress.message === 'string') out.message = progress.message.slice(0, 2000);
  if (typeof progress.current_step === 'string') out.current_step = progress.current_step.slice(0, 500);
  for (const key of ['total_steps', 'completed_steps'] as const) {
    const v = progress[key];
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) out[key] = v;
  }
  return out;
}
