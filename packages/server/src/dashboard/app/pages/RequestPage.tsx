/**
 * One request: live progress, current step and message, the event timeline,
 * result or error, the webhook delivery log, and the actions cancel, retry
 * and redeliver. It follows `GET /v1/requests/{id}/events` (which replays the
 * log first, so the timeline is complete) and resumes with Last-Event-ID.
 * Deliveries have no stream: the log is re-read while one is under way.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { describeError, isTerminal, type Api, type DeliveryView, type RequestView } from '../api.js';
import { ErrorNote, ProgressBar, StatusBadge } from '../components.js';
import { formatDuration, formatJson, formatTime } from '../format.js';
import { navigate, requestHref } from '../router.js';
import { follow } from '../sse.js';

interface TimelineEntry {
  seq: string;
  type: string;
  summary: string;
}

/** Re-read the delivery log this often while it may change, and at most this many times per page visit. */
const DELIVERY_POLL_MS = 1000;
const DELIVERY_POLL_MAX = 120;

export function RequestPage({ api, id }: { api: Api; id: string }) {
  const [request, setRequest] = useState<RequestView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [actionNote, setActionNote] = useState<string | null>(null);
  const [timeline, setTimeline] = useState<TimelineEntry[]>([]);
  const [deliveries, setDeliveries] = useState<DeliveryView[] | null>(null);
  const [deliveryRound, setDeliveryRound] = useState(0);
  const path = `/v1/requests/${encodeURIComponent(id)}`;

  const reload = useCallback(() => {
    void api.get<RequestView>(path).then(
      (r) => (setRequest(r), setError(null)),
      (err) => setError(describeError(err)),
    );
  }, [api, path]);

  useEffect(reload, [reload]);

  // The live stream: progress and status change the view in place; the end re-reads the resource.
  useEffect(() => {
    const abort = new AbortController();
    void follow(`${path}/events`, {
      headers: api.headers(),
      signal: abort.signal,
      endsWhenDone: true,
      onMessage: (m) => {
        let data: Record<string, unknown> = {};
        try {
          data = JSON.parse(m.data) as Record<string, unknown>;
        } catch {
          return;
        }
        setTimeline((old) =>
          old.some((e) => e.seq === m.id && m.id !== null)
            ? old
            : [...old, { seq: m.id ?? '', type: m.event, summary: summarize(m.event, data) }],
        );
        if (m.event === 'progress') setRequest((r) => (r ? { ...r, ...progressFields(data) } : r));
        else if (m.event === 'status')
          setRequest((r) => (r ? { ...r, status: data.status as RequestView['status'], attempt: Number(data.attempt ?? r.attempt) } : r));
        else if (m.event === 'completed' || m.event === 'failed' || m.event === 'cancelled') setRequest(data as unknown as RequestView);
      },
      onRefused: (status) => {
        if (status !== 404 && status !== 410) setError(`Live updates stopped: the server answered ${status}.`);
      },
    });
    return () => abort.abort();
  }, [api, path]);

  const loadDeliveries = useCallback(() => {
    void api.get<{ data: DeliveryView[] }>(`${path}/deliveries`).then(
      (answer) => setDeliveries(answer.data),
      () => {},
    );
  }, [api, path]);

  // Deliveries start when the request ends: re-read while one is pending or being sent (bounded).
  const terminal = request !== null && isTerminal(request.status);
  useEffect(() => {
    if (!terminal) return;
    loadDeliveries();
  }, [terminal, loadDeliveries, deliveryRound]);
  const busyDeliveries = deliveries?.some((d) => d.status === 'pending' || d.status === 'delivering') ?? false;
  const polls = useRef(0);
  useEffect(() => {
    if (!terminal || !busyDeliveries || polls.current >= DELIVERY_POLL_MAX) return;
    const timer = setTimeout(() => {
      polls.current++;
      loadDeliveries();
    }, DELIVERY_POLL_MS);
    return () => clearTimeout(timer);
  }, [terminal, busyDeliveries, deliveries, loadDeliveries]);

  const act = (what: () => Promise<void>) => {
    setActionError(null);
    setActionNote(null);
    void what().catch((err: unknown) => setActionError(describeError(err)));
  };

  if (!request) {
    return (
      // Same first elements as the loaded view, so the heading that has focus is kept, not replaced.
      <section aria-labelledby="request-title">
        <p>
          <a href="#/requests">← Requests</a>
        </p>
        <h1 id="request-title" tabIndex={-1}>
          Request <span class="mono">{id}</span>
        </h1>
        {error ? <ErrorNote text={error} /> : <p class="loading">Loading…</p>}
      </section>
    );
  }

  const canCancel = request.status === 'pending' || request.status === 'processing';
  const canRetry = request.status === 'failed' || request.status === 'cancelled';
  return (
    <section aria-labelledby="request-title">
      <p>
        <a href="#/requests">← Requests</a>
      </p>
      <h1 id="request-title" tabIndex={-1}>
        Request <span class="mono">{request.request_id}</span>
      </h1>
      <ErrorNote text={error} />
      <div class="summary">
        <StatusBadge status={request.status} />
        <span>
          Operation <strong>{request.operation}</strong>
        </span>
        <span>
          Attempt {request.attempt} of {request.max_attempts}
        </span>
      </div>
      <ProgressBar percent={request.progress} label="Progress" />
      <dl class="facts">
        <dt>Current step</dt>
        <dd data-testid="current-step">
          {request.current_step ?? '—'}
          {request.total_steps !== null && ` (${request.completed_steps ?? 0} of ${request.total_steps} steps done)`}
        </dd>
        <dt>Message</dt>
        <dd data-testid="message">{request.message ?? '—'}</dd>
        <dt>Created</dt>
        <dd>{formatTime(request.created_at)}</dd>
        <dt>Started</dt>
        <dd>{formatTime(request.started_at)}</dd>
        <dt>Finished</dt>
        <dd>{formatTime(request.completed_at)}</dd>
        <dt>Duration</dt>
        <dd>{formatDuration(request.duration_ms)}</dd>
        {request.retry_of && (
          <>
            <dt>Retry of</dt>
            <dd>
              <a href={requestHref(request.retry_of)} class="mono">
                {request.retry_of}
              </a>
            </dd>
          </>
        )}
      </dl>

      <div class="actions">
        <button
          type="button"
          disabled={!canCancel}
          onClick={() =>
            act(async () => {
              await api.send('DELETE', path);
              setActionNote('Cancelled.');
              reload();
            })
          }
        >
          Cancel request
        </button>
        <button
          type="button"
          disabled={!canRetry}
          onClick={() =>
            act(async () => {
              const answer = await api.send<{ request_id: string }>('POST', `${path}/retry`);
              navigate(requestHref(answer.request_id));
            })
          }
        >
          Retry as a new request
        </button>
      </div>
      <ErrorNote text={actionError} />
      {actionNote && <p role="status">{actionNote}</p>}

      {request.status === 'completed' && (
        <section aria-labelledby="result-title">
          <h2 id="result-title">Result</h2>
          <pre data-testid="result">{formatJson(request.result)}</pre>
        </section>
      )}
      {(request.error ?? request.last_error) && (
        <section aria-labelledby="error-title">
          <h2 id="error-title">{request.error ? 'Error' : 'Error of the previous attempt'}</h2>
          <p data-testid="error">
            <strong class="mono">{(request.error ?? request.last_error)?.type}</strong>: {(request.error ?? request.last_error)?.message}
          </p>
        </section>
      )}
      {request.metadata && (
        <section aria-labelledby="metadata-title">
          <h2 id="metadata-title">Metadata</h2>
          <pre data-testid="metadata">{formatJson(request.metadata)}</pre>
        </section>
      )}

      <section aria-labelledby="timeline-title">
        <h2 id="timeline-title">Events</h2>
        <ol class="timeline" data-testid="timeline">
          {timeline.map((e) => (
            <li key={`${e.seq}-${e.type}`}>
              <span class="mono">#{e.seq}</span> <strong>{e.type}</strong> {e.summary}
            </li>
          ))}
        </ol>
      </section>

      <section aria-labelledby="deliveries-title">
        <h2 id="deliveries-title">Webhook deliveries</h2>
        {deliveries === null || deliveries.length === 0 ? (
          <p class="empty">{terminal ? 'No webhook deliveries for this request.' : 'Deliveries start when the request ends.'}</p>
        ) : (
          <table class="deliveries">
            <thead>
              <tr>
                <th scope="col">Delivery</th>
                <th scope="col">URL</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last answer</th>
                <th scope="col">Action</th>
              </tr>
            </thead>
            <tbody>
              {deliveries.map((d) => (
                <tr key={d.delivery_id} data-delivery-id={d.delivery_id}>
                  <td class="mono">{d.delivery_id}</td>
                  <td class="mono">{d.url}</td>
                  <td>
                    <span class={`badge delivery-${d.status}`}>{d.status}</span>
                  </td>
                  <td>
                    series {d.series}, attempt {d.attempt}
                    <ul class="attempts">
                      {(d.attempts ?? []).map((a) => (
                        <li key={`${a.series}.${a.attempt}`}>
                          {a.series}.{a.attempt}: {a.status_code ?? a.error?.type ?? '—'} in {formatDuration(a.duration_ms)}
                        </li>
                      ))}
                    </ul>
                  </td>
                  <td>{d.last_status_code ?? d.last_error?.message ?? '—'}</td>
                  <td>
                    <button
                      type="button"
                      class="secondary"
                      disabled={d.status === 'delivering'}
                      onClick={() =>
                        act(async () => {
                          await api.send('POST', `${path}/deliveries/${encodeURIComponent(d.delivery_id)}/redeliver`);
                          setActionNote(`Redelivery of ${d.delivery_id} started.`);
                          polls.current = 0;
                          setDeliveryRound((n) => n + 1);
                        })
                      }
                    >
                      Redeliver
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {terminal && (
          <button type="button" class="secondary" onClick={loadDeliveries}>
            Refresh deliveries
          </button>
        )}
      </section>
    </section>
  );
}

function progressFields(data: Record<string, unknown>): Partial<RequestView> {
  const out: Partial<RequestView> = {};
  if (typeof data.percent === 'number') out.progress = data.percent;
  if (typeof data.message === 'string') out.message = data.message;
  if (typeof data.current_step === 'string') out.current_step = data.current_step;
  if (typeof data.total_steps === 'number') out.total_steps = data.total_steps;
  if (typeof data.completed_steps === 'number') out.completed_steps = data.completed_steps;
  return out;
}

/** One line per event, as text. */
function summarize(type: string, data: Record<string, unknown>): string {
  if (type === 'progress') {
    const parts = [typeof data.percent === 'number' ? `${data.percent} %` : null, data.current_step, data.message].filter(
      (p) => typeof p === 'string' || typeof p === 'number',
    );
    return parts.join(' — ');
  }
  if (type === 'status') {
    const error = data.error as { type?: string; message?: string } | undefined;
    return `${String(data.status)} (attempt ${String(data.attempt)})${error ? ` after ${error.type ?? 'error'}: ${error.message ?? ''}` : ''}`;
  }
  if (type === 'output') return formatJson(data).slice(0, 200);
  return type === 'completed' ? 'finished' : String((data.error as { message?: string } | undefined)?.message ?? type);
}
