/**
 * Human units at the config edge. Durations are a number of seconds (`300`,
 * `1.5`) or a string with a unit (`"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"7d"`);
 * sizes are a number of bytes or a string (`"512kb"`, `"1mb"`). Everything
 * inside the server is milliseconds and bytes.
 */

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds from a config duration, or an error message saying what is accepted. */
export function parseDurationMs(value: unknown): number | string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return 'must be a non-negative number of seconds';
    return Math.round(value * 1000);
  }
  if (typeof value === 'string') {
    const match = DURATION.exec(value.trim());
    if (match?.[1] !== undefined && match[2] !== undefined) {
      return Math.round(Number(match[1]) * (DURATION_UNIT_MS[match[2]] ?? 1000));
    }
    if (/^\d+(?:\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  }
  return 'must be seconds (e.g. 300) or a duration string such as "500ms", "30s", "5m", "2h", "7d"';
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?$/i;
const SIZE_UNIT: Record<string, number> = { b: 1, kb: 1024, kib: 1024, mb: 1024 ** 2, mib: 1024 ** 2, gb: 1024 ** 3, gib: 1024 ** 3 };

/** Bytes from a config size, or an error message saying what is accepted. */
export function parseSizeBytes(value: unknown): number | string {
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  if (typeof value === 'string') {
    const match = SIZE.exec(value.trim());
    if (match?.[1] !== undefined) return Math.round(Number(match[1]) * (SIZE_UNIT[(match[2] ?? 'b').toLowerCase()] ?? 1));
  }
  return 'must be a positive number of bytes or a size string such as "512kb" or "1mb"';
}

/** Seconds for display, e.g. `300` → `"300s"`. */
export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(3).replace(/0+$/, '')}s`;
}
