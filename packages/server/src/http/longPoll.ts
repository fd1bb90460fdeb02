/**
 * Long-polling: hold a status read until the request changes or time is up.
 *
 * The waiter subscribes to the request's events *before* it first reads the
 * store, so a change committed between the read and the subscription cannot be
 * missed (no lost wake-up). Every event only marks the state dirty; the store
 * is then read again (one read at a time, coalescing bursts), and `ready`
 * decides whether that state is worth answering. Timers come from the engine's
 * injected clock; the subscription, the timer and the abort listener are
 * always released, whichever way the wait ends.
 */
import type { Clock } from '../clock/index.js';
import type { EngineEvents } from '../engine/index.js';

export interface LongPollParams<T> {
  clock: Clock;
  events: EngineEvents;
  /** The request whose events wake the waiter. */
  id: string;
  /** Longest wait, ms; 0 or less answers the first read. */
  waitMs: number;
  /** Reads the current state (from the store). */
  read: () => Promise<T>;
  /** True when this state should be answered now; called once per read, in order, while waiting. */
  ready: (value: T) => boolean;
  /** Stops waiting (client gone, server closing): answers the latest state read. */
  signal?: AbortSignal | undefined;
}

/** Resolves with the first state `ready` accepts, or the state when `waitMs` passes or `signal` aborts. */
export function longPoll<T>(params: LongPollParams<T>): Promise<T> {
  const { clock, events, id, waitMs, read, ready, signal } = params;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    let reading = false;
    let dirty = true;
    /** Stop waiting: the next read (or the latest one) is the answer. */
    let expired = waitMs <= 0 || signal?.aborted === true;
    let latest: { value: T } | undefined;

    const cleanup = () => {
      done = true;
      unsubscribe();
      if (timer !== undefined) clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const finish = (value: T) => {
      if (done) return;
      cleanup();
      resolve(value);
    };
    const fail = (err: unknown) => {
      if (done) return;
      cleanup();
      reject(err);
    };
    const pump = () => {
      if (done || reading || !dirty) return;
      dirty = false;
      reading = true;
      read().then(
        (value) => {
          reading = false;
          if (done) return;
          latest = { value };
          if (expired || ready(value)) finish(value);
          else pump();
        },
        (err: unknown) => {
          reading = false;
          fail(err);
        },
      );
    };
    const wake = () => {
      dirty = true;
      pump();
    };
    const onAbort = () => {
      expired = true;
      // Not reading: answer what we have rather than touch a store that may be closing.
      if (!reading && latest) finish(latest.value);
    };

    const unsubscribe = events.onRequest(id, wake);
    const timer = expired
      ? undefined
      : clock.setTimeout(() => {
          expired = true;
          wake();
        }, waitMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    pump();
  });
}
