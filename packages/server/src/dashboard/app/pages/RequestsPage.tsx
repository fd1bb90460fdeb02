/**
 * The requests list: filters (status, operation, time range) kept in the URL
 * hash, search by id, "load more" paging, a form to submit work, and live
 * updates from `GET /v1/events` — rows change in place, new requests that
 * match the filters appear at the top, without reloading.
 *
 * The time range is applied here: the API lists newest first, so the first
 * request older than the range ends the list (nothing after it can match).
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { describeError, isTerminal, REQUEST_STATUSES, type Api, type ListPage, type RequestView, type StatsView } from '../api.js';
import { ErrorNote, ProgressBar, StatusBadge } from '../components.js';
import { formatDuration, formatTime } from '../format.js';
import { useTenantEvents, type TenantEvent } from '../live.js';
import { navigate, requestHref } from '../router.js';

const PAGE_SIZE = 25;

const TIME_RANGES: { minutes: string; label: string }[] = [
  { minutes: '', label: 'Any time' },
  { minutes: '15', label: 'Last 15 minutes' },
  { minutes: '60', label: 'Last hour' },
  { minutes: '1440', label: 'Last 24 hours' },
  { minutes: '10080', label: 'Last 7 days' },
];

interface Filters {
  status: string;
  operation: string;
  since: string;
}

function filtersOf(query: URLSearchParams): Filters {
  return { status: query.get('status') ?? '', operation: query.get('operation') ?? '', since: query.get('since') ?? '' };
}

function hashOf(filters: Filters): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
  const text = query.toString();
  return text ? `#/requests?${text}` : '#/requests';
}

function sinceMs(filters: Filters): number | null {
  return filters.since ? Date.now() - Number(filters.since) * 60_000 : null;
}

function matches(filters: Filters, r: RequestView): boolean {
  if (filters.status && r.status !== filters.status) return false;
  if (filters.operation && r.operation !== filters.operation) return false;
  const since = sinceMs(filters);
  return since === null || Date.parse(r.created_at) >= since;
}

export function RequestsPage({ api, query }: { api: Api; query: URLSearchParams }) {
  const filters = filtersOf(query);
  const filterKey = hashOf(filters);
  const [rows, setRows] = useState<RequestView[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [operations, setOperations] = useState<string[]>([]);
  const filtersRef = useRef(filters);
  filtersRef.current = filters;

  const load = useCallback(
    async (after: string | null) => {
      setLoading(true);
      const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (filters.status) params.set('status', filters.status);
      if (filters.operation) params.set('operation', filters.operation);
      if (after) params.set('cursor', after);
      try {
        const page = await api.get<ListPage>(`/v1/requests?${params.toString()}`);
        const since = sinceMs(filters);
        const kept = since === null ? page.data : page.data.filter((r) => Date.parse(r.created_at) >= since);
        const ended = kept.length < page.data.length;
        setRows((old) => mergeRows(after ? old : [], kept));
        setCursor(page.has_more && !ended ? page.next_cursor : null);
        setError(null);
      } catch (err) {
        setError(describeError(err));
      } finally {
        setLoading(false);
      }
    },
    // filterKey stands for the filters (a new object every render).
    [api, filterKey],
  );

  useEffect(() => {
    setRows([]);
    void load(null);
  }, [load]);

  useEffect(() => {
    void api.get<StatsView>('/v1/stats?window_minutes=5').then(
      (stats) => setOperations(stats.operations.map((o) => o.operation)),
      () => setOperations([]),
    );
  }, [api]);

  // Ids fetched after a live event, with the status they were fetched for: each is read once per status, not per event.
  const checked = useRef(new Map<string, string>());
  const rowsRef = useRef(rows);
  rowsRef.current = rows;
  useEffect(() => checked.current.clear(), [filterKey]);

  const onEvent = useCallback(
    (event: TenantEvent) => {
      const f = filtersRef.current;
      const row = rowsRef.current.find((r) => r.request_id === event.request_id);
      const fetchOne = () => {
        if (checked.current.get(event.request_id) === event.status) return;
        checked.current.set(event.request_id, event.status);
        void api.get<RequestView>(`/v1/requests/${encodeURIComponent(event.request_id)}`).then(
          (r) => {
            if (row || matches(filtersRef.current, r)) setRows((now) => mergeRows(now, [r]));
          },
          () => {},
        );
      };
      if (!row) {
        // Not shown yet: read it when the event says it may match the filters (the time range needs the request).
        if ((!f.status || event.status === f.status) && (!f.operation || event.operation === f.operation)) fetchOne();
        return;
      }
      setRows((now) => now.map((r) => (r.request_id === event.request_id ? patchRow(r, event) : r)));
      // The end carries result or error and the duration: read the whole resource once.
      if (isTerminal(event.status) && !isTerminal(row.status)) fetchOne();
    },
    [api],
  );
  const live = useTenantEvents(api, filters.operation, onEvent);

  const setFilter = (name: keyof Filters, value: string) => navigate(hashOf({ ...filters, [name]: value }));

  return (
    <section aria-labelledby="requests-title">
      <h1 id="requests-title" tabIndex={-1}>
        Requests
      </h1>
      <p class="live" aria-live="polite" data-testid="live-state">
        {live === 'live'
          ? 'Live: updates appear as they happen.'
          : live === 'refused'
            ? 'Live updates are not available for this key.'
            : 'Connecting to live updates…'}
      </p>
      <div class="toolbar">
        <form class="filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
          <label>
            Status
            <select value={filters.status} onChange={(e) => setFilter('status', e.currentTarget.value)}>
              <option value="">Any status</option>
              {REQUEST_STATUSES.map((s) => (
                <option value={s}>{s}</option>
              ))}
            </select>
          </label>
          <label>
            Operation
            <select value={filters.operation} onChange={(e) => setFilter('operation', e.currentTarget.value)}>
              <option value="">Any operation</option>
              {[...new Set([...operations, ...(filters.operation ? [filters.operation] : [])])].map((o) => (
                <option value={o}>{o}</option>
              ))}
            </select>
          </label>
          <label>
            Created
            <select value={filters.since} onChange={(e) => setFilter('since', e.currentTarget.value)}>
              {TIME_RANGES.map((t) => (
                <option value={t.minutes}>{t.label}</option>
              ))}
            </select>
          </label>
        </form>
        <SearchById api={api} />
      </div>
      <SubmitForm api={api} operations={operations} />
      <ErrorNote text={error} />
      <table class="requests" aria-describedby="requests-title">
        <thead>
          <tr>
            <th scope="col">Request</th>
            <th scope="col">Operation</th>
            <th scope="col">Status</th>
            <th scope="col">Progress</th>
            <th scope="col">Created</th>
            <th scope="col">Duration</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.request_id} data-request-id={r.request_id}>
              <td>
                <a href={requestHref(r.request_id)} class="mono">
                  {r.request_id}
                </a>
              </td>
              <td>{r.operation}</td>
              <td>
                <StatusBadge status={r.status} />
              </td>
              <td>
                <ProgressBar percent={r.progress} label={`Progress of ${r.request_id}`} />
              </td>
              <td>{formatTime(r.created_at)}</td>
              <td>{formatDuration(r.duration_ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && rows.length === 0 && !error && <p class="empty">No requests match these filters.</p>}
      {loading && <p class="loading">Loading…</p>}
      {cursor && !loading && (
        <button type="button" class="secondary" onClick={() => void load(cursor)}>
          Load more
        </button>
      )}
    </section>
  );
}

/** Adds or replaces rows by id, newest (highest id) first. */
function mergeRows(old: RequestView[], fresh: RequestView[]): RequestView[] {
  const byId = new Map(old.map((r) => [r.request_id, r]));
  for (const r of fresh) byId.set(r.request_id, r);
  return [...byId.values()].sort((a, b) => (a.request_id < b.request_id ? 1 : a.request_id > b.request_id ? -1 : 0));
}

/** Applies one live event to a row (the status resource's fields that events carry). */
function patchRow(row: RequestView, event: TenantEvent): RequestView {
  const next: RequestView = { ...row, status: event.status };
  if (event.type === 'progress') {
    const d = event.data;
    if (typeof d.percent === 'number') next.progress = d.percent;
    if (typeof d.message === 'string') next.message = d.message;
    if (typeof d.current_step === 'string') next.current_step = d.current_step;
    if (typeof d.total_steps === 'number') next.total_steps = d.total_steps;
    if (typeof d.completed_steps === 'number') next.completed_steps = d.completed_steps;
  }
  if (event.type === 'status' && typeof event.data.attempt === 'number') next.attempt = event.data.attempt;
  if (event.status === 'completed') next.progress = 100;
  return next;
}

function SearchById({ api }: { api: Api }) {
  const [id, setId] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      class="search"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        const wanted = id.trim();
        if (!wanted) return setError('Enter a request id, such as req_01kf3v6q4c8x0d2m5n7p9r1s3t.');
        void api.get<RequestView>(`/v1/requests/${encodeURIComponent(wanted)}`).then(
          (r) => navigate(requestHref(r.request_id)),
          (err) => setError(`${describeError(err)} (searched for "${wanted}")`),
        );
      }}
    >
      <label for="search-id">Find by request id</label>
      <input id="search-id" value={id} onInput={(e) => setId(e.currentTarget.value)} placeholder="req_…" spellcheck={false} />
      <button type="submit">Find</button>
      <ErrorNote text={error} />
    </form>
  );
}

function SubmitForm({ api, operations }: { api: Api; operations: string[] }) {
  const [operation, setOperation] = useState('');
  const [input, setInput] = useState('{}');
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const chosen = operation || operations[0] || '';
  return (
    <details class="submit">
      <summary>Submit a request</summary>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setCreated(null);
          let body: unknown;
          try {
            body = JSON.parse(input);
          } catch (err) {
            return setError(`The input is not valid JSON: ${(err as Error).message}`);
          }
          if (!chosen) return setError('Choose an operation.');
          void api.send<{ request_id: string }>('POST', `/v1/operations/${encodeURIComponent(chosen)}?async=true`, body).then(
            (answer) => {
              setError(null);
              setCreated(answer.request_id);
            },
            (err) => setError(describeError(err)),
          );
        }}
      >
        <label>
          Operation
          <select value={chosen} onChange={(e) => setOperation(e.currentTarget.value)}>
            {operations.map((o) => (
              <option value={o}>{o}</option>
            ))}
          </select>
        </label>
        <label for="submit-input">Input (JSON)</label>
        <textarea id="submit-input" rows={4} value={input} onInput={(e) => setInput(e.currentTarget.value)} spellcheck={false} />
        <button type="submit">Submit</button>
        <ErrorNote text={error} />
        {created && (
          <p role="status">
            Submitted: <a href={requestHref(created)}>{created}</a>
          </p>
        )}
      </form>
    </details>
  );
}
