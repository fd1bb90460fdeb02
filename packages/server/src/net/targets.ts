/**
 * The SSRF guard: which addresses Errand's own outbound HTTP may reach — webhook
 * deliveries (`webhooks.allow`) and operations' fetches (`fetch.allow`, see
 * fetch.ts). One policy, one list of forbidden ranges.
 *
 * By default a connection may not go to loopback, private (RFC 1918,
 * fc00::/7), link-local (169.254/16, fe80::/10), shared CGNAT (100.64/10),
 * unspecified, multicast, documentation, reserved or cloud-metadata addresses
 * (169.254.169.254, fd00:ec2::254), nor to IPv6 forms that reach IPv4 or
 * tunnel to somewhere else: deprecated IPv4-compatible (::/96), local-use NAT64 (64:ff9b:1::/48), Teredo (2001::/32) and the rest of
 * the IETF protocol block (2001::/23); the IPv4 address inside IPv4-mapped
 * (::ffff:0:0/96), well-known NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
 * addresses is checked as IPv4 first. An
 * allowlist lists hosts or CIDRs that may be reached anyway.
 *
 * The check runs where the socket is opened: undici's `connect.lookup` is
 * {@link TargetPolicy.lookup}, which resolves the name and refuses the
 * connection if any address is forbidden — so a name that resolved to a public
 * address at submit time and to 127.0.0.1 now (DNS rebinding) is still refused,
 * before a packet is sent. IP literals (which Node connects to without a
 * lookup) are checked by {@link TargetPolicy.refusalForUrl} before the request.
 * At submit time the same function refuses what is knowable without DNS.
 */
import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/** One resolved address. */
interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to all its addresses. Tests inject a stub so no real DNS (or packet) is involved. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** The system resolver (getaddrinfo, like every Node client). */
export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
      if (err) reject(err);
      else resolve(addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })));
    });
  });

/** A resolver that answers the names in `hosts` (name → IP address) itself and asks `fallback` for the rest. */
export function withHosts(hosts: Readonly<Record<string, string>>, fallback: Resolver): Resolver {
  const fixed = new Map(Object.entries(hosts).map(([name, address]) => [name.replace(/\.$/, '').toLowerCase(), address]));
  if (fixed.size === 0) return fallback;
  return async (hostname) => {
    const address = fixed.get(hostname.replace(/\.$/, '').toLowerCase());
    return address === undefined ? fallback(hostname) : [{ address, family: isIP(address) === 6 ? 6 : 4 }];
  };
}

/** The `code` of a {@link ForbiddenTargetError}, wherever undici wraps it. */
export const FORBIDDEN_TARGET_CODE = 'ERR_WEBHOOK_FORBIDDEN_TARGET';

/**
 * The error a refused connection fails with (`code` is what the deliverer and
 * the guarded fetch match). Its `message` is what a tenant may see: that the
 * target is not allowed and which allowlist would open it, never the address
 * a name resolved to (a tenant could map internal DNS with it); `detail` has
 * the address and the resolution, for the operator's log.
 */
export class ForbiddenTargetError extends Error {
  readonly code = FORBIDDEN_TARGET_CODE;
  /**
   * @param reason What the address is, without it: "a loopback address".
   * @param detail The refusal with the address, for logs: "10.0.0.5 is a private address (db.corp resolves to it); …".
   */
  constructor(
    message: string,
    readonly reason = 'a forbidden address',
    readonly detail = message,
  ) {
    super(message);
    this.name = 'ForbiddenTargetError';
  }
}

const RANGES: readonly [cidr: string, reason: string][] = [
  ['169.254.169.254/32', 'a cloud metadata address'],
  ['0.0.0.0/8', 'an unspecified address'],
  ['127.0.0.0/8', 'a loopback address'],
  ['10.0.0.0/8', 'a private address'],
  ['172.16.0.0/12', 'a private address'],
  ['192.168.0.0/16', 'a private address'],
  ['100.64.0.0/10', 'a shared (CGNAT) address'],
  ['169.254.0.0/16', 'a link-local address'],
  ['192.0.0.0/24', 'a reserved address'],
  ['198.18.0.0/15', 'a reserved (benchmarking) address'],
  ['224.0.0.0/4', 'a multicast address'],
  ['240.0.0.0/4', 'a reserved address'],
  ['192.0.2.0/24', 'a documentation address'],
  ['198.51.100.0/24', 'a documentation address'],
  ['203.0.113.0/24', 'a documentation address'],
  ['192.88.99.0/24', 'a reserved (6to4 relay) address'],
  ['fd00:ec2::254/128', 'a cloud metadata address'],
  ['::/128', 'an unspecified address'],
  ['::1/128', 'a loopback address'],
  ['fc00::/7', 'a private (unique local) address'],
  ['fe80::/10', 'a link-local address'],
  ['fec0::/10', 'a private (site-local) address'],
  ['ff00::/8', 'a multicast address'],
  ['::/96', 'a deprecated IPv4-compatible address'],
  ['64:ff9b:1::/48', 'a local-use NAT64 address'],
  ['100::/64', 'a discard-only address'],
  ['2001::/32', 'a Teredo tunnelling address'],
  ['2001:db8::/32', 'a documentation address'],
  ['2001::/23', 'a reserved (IETF protocol) address'],
  ['3fff::/20', 'a documentation address'],
];

const FORBIDDEN = RANGES.map(([cidr, reason]) => {
  const list = new BlockList();
  addCidr(list, cidr);
  return { list, reason };
});

function addCidr(list: BlockList, cidr: string): void {
  const [address = '', bits] = cidr.split('/');
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  if (bits === undefined) list.addAddress(address, family);
  else list.addSubnet(address, Number(bits), family);
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any. */
function embeddedIPv4(address: string): string | null {
  const groups = expandIPv6(address);
  if (!groups) return null;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const [g0, g1, g2, g3, g4, g5, g6 = 0, g7 = 0] = groups;
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && (g5 === 0xffff || g5 === 0) && (g6 !== 0 || g7 > 1)) return v4(g6, g7);
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return v4(g6, g7);
  if (g0 === 0x2002 && g1 !== undefined && g2 !== undefined) return v4(g1, g2);
  return null;
}

/** The eight 16-bit groups of an IPv6 address (dotted IPv4 tail allowed), or null. */
function expandIPv6(address: string): number[] | null {
  if (isIP(address) !== 6) return null;
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[1].split('.').map(Number);
    text = `${text.slice(0, -dotted[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  const groups = [...left, ...fill, ...right].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

/** Why `address` is forbidden by default ("a private address"), or null when it is a public address. */
export function forbiddenReason(address: string): string | null {
  const plain = address.split('%')[0] ?? address;
  const family = isIP(plain);
  if (family === 0) return 'not an IP address';
  const inner = family === 6 ? embeddedIPv4(plain) : null;
  const innerReason = inner === null ? null : forbiddenReason(inner);
  if (innerReason !== null) return innerReason;
  const type = family === 6 ? 'ipv6' : 'ipv4';
  for (const { list, reason } of FORBIDDEN) if (list.check(plain, type)) return reason;
  return null;
}

/** The URL host without IPv6 brackets or a trailing dot, lower-case. */
export function hostOf(url: URL): string {
  return url.hostname
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')
    .toLowerCase();
}

/** Longest webhook URL accepted. */
const WEBHOOK_URL_MAX_LENGTH = 2048;

/** Whose policy it is, for messages: "webhooks may not reach it unless webhooks.allow lists it". */
export interface PolicyLabel {
  /** Who is refused: `webhooks`, `operations`. */
  subject: string;
  /** The config key of the allowlist: `webhooks.allow`, `fetch.allow`. */
  setting: string;
}

/** What may be reached: the default refusals minus an allowlist (`webhooks.allow`, `fetch.allow`). */
export class TargetPolicy {
  private readonly hosts = new Set<string>();
  private readonly allowed = new BlockList();

  /** `allow`: host names, IP addresses or CIDRs (validated by the config schema). */
  constructor(
    allow: readonly string[] = [],
    private readonly label: PolicyLabel = { subject: 'webhooks', setting: 'webhooks.allow' },
  ) {
    for (const entry of allow) {
      const address = entry.split('/')[0] ?? '';
      if (isIP(address) !== 0) addCidr(this.allowed, entry);
      else this.hosts.add(entry.replace(/\.$/, '').toLowerCase());
    }
  }

  /** Why connecting to `address` (resolved from `host`) is refused, or null when it is allowed. */
  refusal(host: string, address: string): string | null {
    const reason = forbiddenReason(address);
    if (reason === null || this.hosts.has(host.toLowerCase()) || this.isAllowedAddress(address)) return null;
    const via = host === address ? '' : ` (${host} resolves to it)`;
    return `${address} is ${reason}${via}; ${this.label.subject} may not reach it unless ${this.label.setting} lists it`;
  }

  private isAllowedAddress(address: string): boolean {
    const plain = address.split('%')[0] ?? address;
    const family = isIP(plain);
    if (family !== 0 && this.allowed.check(plain, family === 6 ? 'ipv6' : 'ipv4')) return true;
    const inner = family === 6 ? embeddedIPv4(plain) : null;
    return inner !== null && this.allowed.check(inner, 'ipv4');
  }

  /**
   * What is wrong with `url` as a target that is knowable without DNS:
   * not http(s), longer than `maxLength`, or a literal forbidden address (or
   * `localhost`) not allowlisted. Null when it is acceptable (names are checked
   * again at connect time).
   */
  refusalForUrl(url: string, maxLength = WEBHOOK_URL_MAX_LENGTH): string | null {
    if (url.length > maxLength) return `must be at most ${maxLength} characters`;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return 'must be an http(s) URL';
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'must be an http(s) URL';
    const host = hostOf(parsed);
    if (isIP(host) !== 0) return this.refusal(host, host);
    if ((host === 'localhost' || host.endsWith('.localhost')) && !this.hosts.has(host)) {
      return `${host} is a loopback name; ${this.label.subject} may not reach it unless ${this.label.setting} lists it`;
    }
    return null;
  }

  /**
   * A `lookup` for `net.connect` (undici's `connect.lookup`): resolves with
   * `resolver` and fails with {@link ForbiddenTargetError} — before any socket
   * connects — if any address is refused.
   */
  lookup(resolver: Resolver) {
    return (
      hostname: string,
      options: { all?: boolean; family?: number | string } | number | undefined,
      callback: (err: Error | null, address?: string | ResolvedAddress[], family?: number) => void,
    ): void => {
      const opts = typeof options === 'object' && options !== null ? options : { family: options };
      const wanted = opts.family === 4 || opts.family === 'IPv4' ? 4 : opts.family === 6 || opts.family === 'IPv6' ? 6 : 0;
      resolver(hostname).then(
        (found) => {
          const addresses = wanted === 0 ? found : found.filter((a) => a.family === wanted);
          const first = addresses[0];
          if (!first) {
            callback(Object.assign(new Error(`${hostname} did not resolve to an address`), { code: 'ENOTFOUND' }));
            return;
          }
          for (const { address } of addresses) {
            const refusal = this.refusal(hostname, address);
            if (refusal !== null) {
              const shown = `The target is not allowed: ${this.label.subject} may not reach ${hostname} unless ${this.label.setting} lists it`;
              callback(new ForbiddenTargetError(shown, forbiddenReason(address) ?? undefined, refusal));
              return;
            }
          }
          if (opts.all) callback(null, addresses);
          else callback(null, first.address, first.family);
        },
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    };
  }
}
