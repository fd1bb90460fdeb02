/**
 * Operations: for each operation the key's requests use, throughput, success
 * rate, duration percentiles and queue depth over a chosen window, from
 * `GET /v1/stats`, with small charts of the window's buckets. Refreshed every
 * few seconds while the page is open (no reload).
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { describeError, type Api, type OperationStatsView, type StatsView } from '../api.js';
import { Chart } from '../chart.js';
import { ErrorNote } from '../components.js';
import { formatDuration, formatPercent } from '../format.js';

const REFRESH_MS = 5000;
const WINDOWS = [
  { minutes: 15, label: 'Last 15 minutes' },
  { minutes: 60, label: 'Last hour' },
  { minutes: 1440, label: 'Last 24 hours' },
  { minutes: 10080, label: 'Last 7 days' },
];

export function OperationsPage({ api }: { api: Api }) {
  const [minutes, setMinutes] = useState(60);
  const [stats, setStats] = useState<StatsView | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = () => {
      void api.get<StatsView>(`/v1/stats?window_minutes=${minutes}`).then(
        (s) => {
          if (stopped) return;
          setStats(s);
          setError(null);
          timer = setTimeout(tick, REFRESH_MS);
        },
        (err) => {
          if (stopped) return;
          setError(describeError(err));
          timer = setTimeout(tick, REFRESH_MS);
        },
      );
    };
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [api, minutes]);

  return (
    <section aria-labelledby="operations-title">
      <h1 id="operations-title" tabIndex={-1}>
        Operations
      </h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Window
          <select value={String(minutes)} onChange={(e) => setMinutes(Number(e.currentTarget.value))}>
            {WINDOWS.map((w) => (
              <option value={String(w.minutes)}>{w.label}</option>
            ))}
          </select>
        </label>
      </form>
      <ErrorNote text={error} />
      {stats && (
        <>
          <p class="help">
            Requests created since {new Date(stats.window.from).toLocaleString(undefined, { hour12: false })}
            {stats.caller.admin ? ', every tenant' : `, tenant ${stats.caller.tenant ?? ''}`}. Queue depth counts every waiting request.
            {stats.truncated && ' Only the most recent requests were counted (scan limit reached); use /metrics for exact totals.'}
          </p>
          <table class="operations" aria-label="Operation statistics">
            <thead>
              <tr>
                <th scope="col">Operation</th>
                <th scope="col">Queued</th>
                <th scope="col">Running</th>
                <th scope="col">Accepted</th>
                <th scope="col">Completed / min</th>
                <th scope="col">Success rate</th>
                <th scope="col">Duration p50</th>
                <th scope="col">p95</th>
                <th scope="col">p99</th>
              </tr>
            </thead>
            <tbody>
              {stats.operations.map((o) => (
                <tr key={o.operation} data-operation={o.operation}>
                  <th scope="row">
                    <a href={`#/requests?operation=${encodeURIComponent(o.operation)}`}>{o.operation}</a>
                  </th>
                  <td>{o.pending}</td>
                  <td>{o.processing}</td>
                  <td>{o.accepted}</td>
                  <td>{o.throughput_per_minute.toFixed(2)}</td>
                  <td>{formatPercent(o.success_rate)}</td>
                  <td>{formatDuration(o.duration_ms?.p50)}</td>
                  <td>{formatDuration(o.duration_ms?.p95)}</td>
                  <td>{formatDuration(o.duration_ms?.p99)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="charts">
            {stats.operations
              .filter((o) => o.accepted > 0 || o.pending > 0)
              .map((o) => (
                <OperationCharts key={o.operation} stats={o} />
              ))}
          </div>
        </>
      )}
    </section>
  );
}

function OperationCharts({ stats }: { stats: OperationStatsView }) {
  const times = useMemo(() => stats.buckets.map((b) => Date.parse(b.start) / 1000), [stats]);
  const outcomes = useMemo(
    () => [
      { label: 'completed', color: '#1a7f37', values: stats.buckets.map((b) => b.completed) },
      { label: 'failed', color: '#b42318', values: stats.buckets.map((b) => b.failed) },
    ],
    [stats],
  );
  const queue = useMemo(() => [{ label: 'queued', color: '#0b57d0', values: stats.buckets.map((b) => b.queued) }], [stats]);
  return (
    <div class="operation-charts">
      <h2>{stats.operation}</h2>
      <Chart title={`${stats.operation}: finished per interval`} times={times} series={outcomes} />
      <Chart title={`${stats.operation}: queue depth`} times={times} series={queue} />
    </div>
  );
}
