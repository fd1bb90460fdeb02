/** Hooks around the SSE streams: the caller's live events (`GET /v1/events`). */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api, RequestStatus } from './api.js';
import { follow } from './sse.js';

/** One message of `GET /v1/events` (docs/api.md#get-v1events). */
export interface TenantEvent {
  request_id: string;
  operation: string;
  tenant: string;
  seq: number;
  type: 'status' | 'progress' | 'output';
  data: Record<string, unknown>;
  status: RequestStatus;
  created_at: string;
}

export type LiveState = 'connecting' | 'live' | 'refused';

/** Follows `/v1/events` (optionally of one operation) while mounted; says whether it is live. */
export function useTenantEvents(api: Api, operation: string, onEvent: (event: TenantEvent) => void): LiveState {
  const [state, setState] = useState<LiveState>('connecting');
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    const abort = new AbortController();
    setState('connecting');
    const url = operation ? `/v1/events?operation=${encodeURIComponent(operation)}` : '/v1/events';
    void follow(url, {
      headers: api.headers(),
      signal: abort.signal,
      endsWhenDone: false,
      onOpen: () => setState('live'),
      onDrop: () => setState('connecting'),
      onMessage: (m) => {
        try {
          handler.current(JSON.parse(m.data) as TenantEvent);
        } catch {
          // A message that is not JSON is not ours to show.
        }
      },
      onRefused: () => setState('refused'),
    });
    return () => abort.abort();
  }, [api, operation]);
  return state;
}
