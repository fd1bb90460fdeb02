import { monotonicFactory } from 'ulid';

/** Prefix of every request id. */
export const REQUEST_ID_PREFIX = 'req_';

const nextUlid = monotonicFactory();

/** A new time-ordered request id: `req_` + a monotonic ULID (sorts by creation time). */
export function newRequestId(nowMs: number = Date.now()): string {
  return REQUEST_ID_PREFIX + nextUlid(nowMs).toLowerCase();
}

const REQUEST_ID_PATTERN = /^req_[0-9a-hjkmnp-tv-z]{26}$/;

/** True when `value` has the shape of a request id. */
export function isRequestId(value: string): boolean {
  return REQUEST_ID_PATTERN.test(value);
}
