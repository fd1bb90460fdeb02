/**
 * Type tests for the public types: compiled (never run) by `npm run typecheck`
 * (tsc -p test/tsconfig.json). Each `@ts-expect-error` line must fail to
 * compile, or tsc reports the directive as unused.
 */
import {
  Errand,
  ErrandApiError,
  type ErrandError,
  isTerminal,
  RequestFailedError,
  verifyWebhook,
  type ChatStreamEvent,
  type ListOptions,
  type RequestEventMessage,
  type RequestHandle,
  type RequestStatus,
  type StatusResource,
  type SubmitOptions,
  type TailEvent,
  type WaitOptions,
} from '../src/index.js';

declare const errand: Errand;
declare const handle: RequestHandle;
declare const status: StatusResource;

export async function checks(): Promise<void> {
  // Construction: every option is optional; unknown ones are refused.
  new Errand();
  new Errand({ baseUrl: 'http://127.0.0.1:8001', apiKey: 'k', maxRetries: 0, headers: { 'x-a': 'b' } });
  // @ts-expect-error -- not an option
  new Errand({ url: 'http://x' });

  // Submissions return handles (chat() the terminal resource).
  const h: RequestHandle = await errand.submit('op', { any: 'json' });
  const s: StatusResource = await errand.chat('hi');
  await errand.chatAsync('hi', { webhookUrl: 'https://x', onComplete: (done) => done.result });
  await errand.trigger('name', { a: 1 }, { mode: 'async' });
  // @ts-expect-error -- mode is sync | async | auto
  await errand.submit('op', {}, { mode: 'later' });
  // @ts-expect-error -- the operation name is a string
  await errand.submit(42, {});
  void h;
  void s;

  // The status resource: the statuses are a closed union; progress may be null.
  const st: RequestStatus = status.status;
  // @ts-expect-error -- not a status
  const bad: RequestStatus = 'running';
  void bad;
  const pct: number = status.progress ?? 0;
  // @ts-expect-error -- progress may be null
  const raw: number = status.progress;
  void raw;
  if (isTerminal(st)) {
    const t: 'completed' | 'failed' | 'cancelled' = st;
    void t;
  }
  void pct;

  // result() is generic; wait() takes WaitOptions.
  const text: string = (await handle.result<{ text: string }>()).text;
  const w: WaitOptions = { timeoutMs: 1000, signal: AbortSignal.timeout(1), onProgress: (p) => p.progress };
  // @ts-expect-error -- timeoutMs is a number of ms
  const w2: WaitOptions = { timeoutMs: '10s' };
  void w2;
  await handle.wait(w);
  void text;

  // Events narrow on `event`.
  for await (const e of handle.events()) {
    const m: RequestEventMessage = e;
    if (m.event === 'progress') {
      const p: number | undefined = m.data.percent;
      void p;
    } else if (m.event === 'completed') {
      const r: StatusResource = m.data;
      void r;
    }
    // @ts-expect-error -- no such event type
    if (m.event === 'tick') break;
  }
  for await (const c of errand.chatStream('hi')) {
    const e: ChatStreamEvent = c;
    if (e.event === 'request') {
      const id: string = e.data.request_id;
      void id;
    }
  }
  for await (const t of errand.tail({ operation: 'op' })) {
    const ev: TailEvent = t;
    void ev.request_id;
  }

  // list() takes a status or several.
  const lo: ListOptions = { status: ['pending', 'failed'], limit: 10 };
  // @ts-expect-error -- not a status
  const lo2: ListOptions = { status: 'done' };
  void lo2;
  for await (const r of errand.list(lo)) void r.request_id;

  // Errors: the hierarchy and its fields.
  const err: unknown = null;
  if (err instanceof ErrandApiError) {
    const fields: [number, string, string | undefined, string | undefined] = [err.status, err.type, err.field, err.requestId];
    void fields;
  }
  if (err instanceof RequestFailedError) {
    const e: ErrandError = err;
    const type: string = err.error.type;
    void e;
    void type;
  }

  // verifyWebhook
  const payload: unknown = await verifyWebhook('{}', { 'webhook-id': 'a' }, 'whsec_x');
  // @ts-expect-error -- the secret is a string or several
  await verifyWebhook('{}', {}, 42);
  void payload;

  const so: SubmitOptions = { idempotencyKey: 'k', priority: 1, runAt: new Date(), onError: (e) => e };
  void so;
}
