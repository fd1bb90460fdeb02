/**
 * Throttling of failed keys per client address (`limits.failed_auth`).
 *
 * Each answer `401 unauthorized` counts against the caller's address in a
 * fixed window. Once an address has `max` failures in its window, every call
 * from it that checks a key (`/v1`, `/metrics`) is answered `429
 * too_many_auth_failures` until the window ends — good keys included, or a
 * guesser would still learn which key is right. Other addresses never notice.
 *
 * IPv6 addresses count per /64 (one host usually holds a whole /64); IPv4 and
 * IPv4-mapped IPv6 per address. The address is `request.ip`: the TCP peer,
 * or the forwarded client behind a proxy trusted by `server.trust_proxy`
 * (otherwise all of a proxy's clients would share its address). At most
 * `ADDRESSES_MAX` addresses are tracked (the oldest window is forgotten first).
 * Time comes from the engine's clock.
 */
import { isIPv6 } from 'node:net';
import type { Clock } from '../../clock/index.js';
import { ErrandError } from '../../model/index.js';

const ADDRESSES_MAX = 10_000;

interface Window {
  startedAt: number;
  failures: number;
}

export class FailedAuthThrottle {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly options: { max: number; windowMs: number; clock: Clock }) {}

  /** Throws `too_many_auth_failures` when `address` is over its limit. */
  check(address: string): void {
    const window = this.current(addressKey(address));
    if (window === undefined || window.failures < this.options.max) return;
    const leftMs = window.startedAt + this.options.windowMs - this.options.clock.now();
    throw new ErrandError('too_many_auth_failures', undefined, { retryAfterSeconds: Math.max(1, Math.ceil(leftMs / 1000)) });
  }

  /** Counts one failed key from `address`. */
  recordFailure(address: string): void {
    const key = addressKey(address);
    const window = this.current(key);
    if (window !== undefined) {
      window.failures += 1;
      return;
    }
    if (this.windows.size >= ADDRESSES_MAX) {
      const oldest = this.windows.keys().next();
      if (!oldest.done) this.windows.delete(oldest.value);
    }
    this.windows.set(key, { startedAt: this.options.clock.now(), failures: 1 });
  }

  /** The address's window, unless it has ended (then it is forgotten). */
  private current(key: string): Window | undefined {
    const window = this.windows.get(key);
    if (window === undefined) return undefined;
    if (this.options.clock.now() - window.startedAt < this.options.windowMs) return window;
    this.windows.delete(key);
    return undefined;
  }
}

/** The unit an address is counted in: IPv4 as is, IPv6 by its /64. */
function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = address.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
