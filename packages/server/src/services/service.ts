/**
 * A background service: something the engine starts once and stops once.
 * `start()` resolves when the service is running (a first sweep may be
 * awaited); `stop()` resolves when nothing it started is still running, and
 * is idempotent and safe before `start()`. `await using` stops it too.
 */
export interface Service extends AsyncDisposable {
  start(): Promise<void>;
  stop(): Promise<void>;
}
