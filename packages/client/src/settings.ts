/** What a handle needs from its client: the transport and the waiting/streaming knobs. */
import type { Transport } from './transport.js';

export interface ClientSettings {
  transport: Transport;
  /** Use `?wait=` long-polls in `wait()`. */
  longPoll: boolean;
  /** Seconds each long-poll asks the server to hold the call. */
  longPollSeconds: number;
  /** Polling backoff (when the server does not long-poll): first delay and cap, ms. */
  pollInitialMs: number;
  pollMaxMs: number;
  /** Event streams: reconnects in a row before giving up, and the idle limit, ms. */
  maxReconnects: number;
  idleTimeoutMs: number;
}
