/**
 * Bounded label values. Every distinct label value is a new time series in
 * Prometheus; tenants come from API keys and could be many. A `LabelCap` keeps
 * the first `max` distinct values of one label and folds every later one into
 * `other`, so a flood of tenants or operations costs at most `max + 1` series
 * per label (documented in docs/observability.md).
 */
const OVERFLOW_LABEL = 'other';

export class LabelCap {
  private readonly seen = new Set<string>();
  private overflowed = false;

  constructor(private readonly max: number) {}

  /** The value to record for `value`: itself while there is room, else `other`. */
  value(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size < this.max) {
      this.seen.add(value);
      return value;
    }
    this.overflowed = true;
    return OVERFLOW_LABEL;
  }

  /** True once a value was folded into `other`. */
  get hasOverflowed(): boolean {
    return this.overflowed;
  }
}
