/**
 * @errand/client — typed SDK for the Errand server.
 *
 * This release is a placeholder that builds; the full handle API (`chat`,
 * `chatAsync`, `submit`, `wait`, `events`, …) lands in a later release.
 */

/** The five request states, shared with the server. */
export const REQUEST_STATUSES = ['pending', 'processing', 'completed', 'failed', 'cancelled'] as const;

/** A request's state. */
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

/** True for the states a request never leaves. */
export function isTerminal(status: RequestStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}
