import { randomBytes } from 'node:crypto';
import { monotonicFactory } from 'ulid';

/** Prefix of every request id. */
const REQUEST_ID_PREFIX = 'req_';

/**
 * ulid's default source calls crypto.getRandomValues once per character; a
 * pooled buffer of the same CSPRNG bytes is ~40× cheaper. Divide by 256, not
 * 255: the result must stay below 1 or ulid indexes past its alphabet.
 */
let pool = randomBytes(4096);
let offset = 0;
function pooledRandom(): number {
  if (offset >= pool.length) {
    pool = randomBytes(4096);
    offset = 0;
  }
  return (pool[offset++] as number) / 256;
}

const nextUlid = monotonicFactory(pooledRandom);

/** A new time-ordered request id: `req_` + a monotonic ULID (sorts by creation time). */
export function newRequestId(nowMs: number = Date.now()): string {
  return REQUEST_ID_PREFIX + nextUlid(nowMs).toLowerCase();
}

const REQUEST_ID_PATTERN = /^req_[0-9a-hjkmnp-tv-z]{26}$/;

/** True when `value` has the shape of a request id. */
export function isRequestId(value: string): boolean {
  return REQUEST_ID_PATTERN.test(value);
}

/** Prefix of every batch id. */
const BATCH_ID_PREFIX = 'bat_';

/** A new time-ordered batch id: `bat_` + a monotonic ULID. */
export function newBatchId(nowMs: number = Date.now()): string {
  return BATCH_ID_PREFIX + nextUlid(nowMs).toLowerCase();
}

/** True when `value` has the shape of a batch id. */
export function isBatchId(value: string): boolean {
  return /^bat_[0-9a-hjkmnp-tv-z]{26}$/.test(value);
}

/** Prefix of every webhook delivery id (also its `webhook-id` header). */
const DELIVERY_ID_PREFIX = 'dlv_';

/** A new time-ordered delivery id: `dlv_` + a monotonic ULID. */
export function newDeliveryId(nowMs: number = Date.now()): string {
  return DELIVERY_ID_PREFIX + nextUlid(nowMs).toLowerCase();
}

/** True when `value` has the shape of a delivery id. */
export function isDeliveryId(value: string): boolean {
  return /^dlv_[0-9a-hjkmnp-tv-z]{26}$/.test(value);
}
