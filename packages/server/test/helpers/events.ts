import type { EngineEventMap, EngineEventName, EngineEvents } from '../../src/engine/index.js';
import { SAFETY_NET_MS } from './timing.js';

/**
 * Resolves with the first `name` event matching `predicate`; rejects after
 * `timeoutMs` of real time (a safety net, not a wait).
 */
export function waitForEvent<K extends EngineEventName>(
  events: EngineEvents,
  name: K,
  predicate: (payload: EngineEventMap[K]) => boolean = () => true,
  { timeoutMs = SAFETY_NET_MS }: { timeoutMs?: number } = {},
): Promise<EngineEventMap[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${name}`));
    }, timeoutMs);
    const off = events.on(name, (payload) => {
      if (!predicate(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}
