/**
 * Per-caller caps on what holds a connection open on this node: event streams
 * (`limits.streams_per_caller`) and waits (`limits.waits_per_caller`). A
 * caller is the tenant its key files requests under (admin keys share one).
 * Counts live in this process: connections belong to one node.
 */
import { ErrandError } from '../../model/index.js';

export class CallerSlots {
  private readonly open = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly error: 'too_many_streams' | 'too_many_waits',
  ) {}

  /** Takes one slot of `caller`, or throws a 429; the returned function gives it back (once). */
  acquire(caller: string): () => void {
    const held = this.open.get(caller) ?? 0;
    if (held >= this.max) throw new ErrandError(this.error, undefined, { retryAfterSeconds: 1, details: { limit: this.max } });
    this.open.set(caller, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const now = (this.open.get(caller) ?? 1) - 1;
      if (now <= 0) this.open.delete(caller);
      else this.open.set(caller, now);
    };
  }

  /** Slots `caller` holds now. */
  held(caller: string): number {
    return this.open.get(caller) ?? 0;
  }
}
