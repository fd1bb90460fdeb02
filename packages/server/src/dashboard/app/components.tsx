/** Small shared pieces: status badge, progress bar, error box. */
import type { RequestStatus } from './api.js';

export function StatusBadge({ status }: { status: RequestStatus }) {
  return <span class={`badge badge-${status}`}>{status}</span>;
}

export function ProgressBar({ percent, label }: { percent: number | null; label: string }) {
  const value = percent === null ? 0 : Math.max(0, Math.min(100, percent));
  return (
    <div
      class="progress"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={percent === null ? undefined : Math.round(value)}
      aria-valuetext={percent === null ? 'no progress reported' : `${Math.round(value)} percent`}
    >
      <div class="progress-fill" style={{ width: `${value}%` }} />
      <span class="progress-text">{percent === null ? '—' : `${Math.round(value)} %`}</span>
    </div>
  );
}

/** A plain-words error, announced to screen readers. */
export function ErrorNote({ text }: { text: string | null }) {
  if (!text) return null;
  return (
    <p class="error-note" role="alert">
      {text}
    </p>
  );
}
