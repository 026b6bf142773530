import { isIP } from 'node:net';
import { TpError } from './errors.js';

/**
 * IPv4 and IPv6 addresses and ranges as bigints, so both families share one set of operations.
 * Ranges are always normalised: host bits cleared, IPv6 written the RFC 5952 way.
 */
export type IpFamily = 4 | 6;

export interface IpAddress {
  family: IpFamily;
  value: bigint;
}

export interface Cidr {
  family: IpFamily;
  /** The first address of the range (host bits cleared). */
  base: bigint;
  prefix: number;
}

const bitsOf = (family: IpFamily): number => (family === 4 ? 32 : 128);

/** The netmask for `prefix` leading ones. */
function mask(family: IpFamily, prefix: number): bigint {
  const bits = bitsOf(family);
  return ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
}

function ipError(text: string): TpError {
  return new TpError('usage', `"${text}" is not an IP address.`, {
    code: 'IP_INVALID',
    fix: 'Write an IPv4 or IPv6 address, e.g. 10.96.0.1 or fd00::1.',
  });
}

function cidrError(text: string, why: string): TpError {
  return new TpError('usage', `"${text}" is not a CIDR range (${why}).`, {
    code: 'CIDR_INVALID',
    fix: 'Write an IPv4 or IPv6 range as address/prefix-length, e.g. 10.96.0.0/12 or fd00::/108.',
  });
}

function v4Value(text: string): bigint {
  return text.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function v6Value(text: string): bigint {
  let s = text;
  // An embedded dotted quad (::ffff:10.0.0.1) stands for the last two groups.
  const dot = s.lastIndexOf('.');
  if (dot !== -1) {
    const colon = s.lastIndexOf(':');
    const v4 = v4Value(s.slice(colon + 1));
    s = `${s.slice(0, colon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const zeros: string[] = Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].reduce(
    (acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)),
    0n,
  );
}

/** Parses an IPv4 or IPv6 address; zone indices (fe80::1%eth0) are refused. */
export function parseIp(text: string): IpAddress {
  const family = isIP(text);
  if (family === 4) return { family, value: v4Value(text) };
  if (family === 6 && !text.includes('%')) return { family, value: v6Value(text) };
  throw ipError(text);
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((ip.value >> shift) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n)
    groups.push(Number((ip.value >> shift) & 0xffffn));
  // RFC 5952: compress the longest run of two or more zero groups, the first one on a tie.
  let best = { start: -1, length: 1 };
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (best.start === -1) return hex(groups);
  return `${hex(groups.slice(0, best.start))}::${hex(groups.slice(best.start + best.length))}`;
}

/** Parses `address/prefix`, clearing host bits (10.1.2.3/8 is 10.0.0.0/8). */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  if (slash === -1) throw cidrError(text, 'no /prefix-length');
  const addr = text.slice(0, slash);
  const len = text.slice(slash + 1);
  const family = isIP(addr);
  if (family !== 4 && family !== 6) throw cidrError(text, `"${addr}" is not an IP address`);
  if (addr.includes('%')) throw cidrError(text, 'zone indices have no place in a range');
  const bits = bitsOf(family);
  if (!/^\d{1,3}$/.test(len) || Number(len) > bits) {
    throw cidrError(text, `the prefix length must be 0 to ${bits}`);
  }
  const prefix = Number(len);
  const { value } = parseIp(addr);
  return { family, base: value & mask(family, prefix), prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.base })}/${cidr.prefix}`;
}

/** The canonical text of a range: `normaliseCidr('10.1.2.3/8')` is `10.0.0.0/8`. */
export function normaliseCidr(text: string): string {
  return formatCidr(parseCidr(text));
}

/** The single-address range of an IP: /32 or /128. */
export function cidrOfIp(ip: string): string {
  const { family, value } = parseIp(ip);
  return formatCidr({ family, base: value, prefix: bitsOf(family) });
}

export function contains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const a = parseIp(ip);
  return c.family === a.family && (a.value & mask(c.family, c.prefix)) === c.base;
}

function within(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    outer.prefix <= inner.prefix &&
    (inner.base & mask(outer.family, outer.prefix)) === outer.base
  );
}

function overlapping(a: Cidr, b: Cidr): boolean {
  return within(a, b) || within(b, a);
}

/** Two ranges overlap exactly when one contains the other. */
export function overlaps(a: string, b: string): boolean {
  return overlapping(parseCidr(a), parseCidr(b));
}

/** True when `inner` lies entirely inside `outer`. */
export function isWithin(outer: string, inner: string): boolean {
  return within(parseCidr(outer), parseCidr(inner));
}

function compare(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.base !== b.base) return a.base < b.base ? -1 : 1;
  return a.prefix - b.prefix;
}

function aggregateParsed(cidrs: Cidr[]): Cidr[] {
  const sorted = [...cidrs].sort(compare);
  const out: Cidr[] = [];
  for (const c of sorted) {
    const last = out.at(-1);
    if (last !== undefined && within(last, c)) continue;
    out.push(c);
    // Two halves of the same parent become the parent, which may pair up again.
    for (;;) {
      const [a, b] = out.slice(-2);
      if (a === undefined || b?.family !== a.family || b.prefix !== a.prefix || a.prefix === 0)
        break;
      const parent = { family: a.family, base: a.base, prefix: a.prefix - 1 };
      if ((a.base & mask(a.family, parent.prefix)) !== a.base || !within(parent, b)) break;
      out.splice(-2, 2, parent);
    }
  }
  return out;
}

/**
 * The same set of addresses in the fewest ranges: duplicates and ranges inside others are
 * dropped and sibling halves merged. Exact, never wider than the input: IPv4 first, sorted.
 */
export function aggregate(cidrs: string[]): string[] {
  return aggregateParsed(cidrs.map(parseCidr)).map(formatCidr);
}

function subtractOne(from: Cidr, hole: Cidr): Cidr[] {
  if (!overlapping(from, hole)) return [from];
  if (within(hole, from)) return [];
  // The hole is strictly inside: keep the half without it whole, recurse into the other.
  const prefix = from.prefix + 1;
  const low = { family: from.family, base: from.base, prefix };
  const high = {
    family: from.family,
    base: from.base | (1n << BigInt(bitsOf(from.family) - prefix)),
    prefix,
  };
  return [...subtractOne(low, hole), ...subtractOne(high, hole)];
}

/**
 * `ranges` without the addresses in `holes`, as exact ranges. A route cannot have a hole, but
 * the rest of the range can be covered by more specific routes: removing a /24 from a /16
 * leaves eight ranges (one per prefix length from /17 to /24).
 */
export function subtract(ranges: string[], holes: string[]): string[] {
  let rest = ranges.map(parseCidr);
  for (const hole of holes.map(parseCidr)) rest = rest.flatMap((r) => subtractOne(r, hole));
  return aggregateParsed(rest).map(formatCidr);
}

/**
 * Ranges that cover a set of pod IPs, for clusters whose nodes do not say which range they
 * allocate from. Addresses are grouped by IPv4 /16 (IPv6 /48) and each group gets the smallest
 * range holding all of its addresses, but never narrower than /24 (IPv6 /64): a node's pod
 * range is usually that size, so pods started later on the same nodes still fall inside,
 * while two unrelated /16s are not merged into one huge route.
 */
export function coveringCidrs(ips: string[]): string[] {
  const groups = new Map<string, { family: IpFamily; min: bigint; max: bigint }>();
  for (const ip of ips) {
    const { family, value } = parseIp(ip);
    const key = `${family}/${String(value >> (family === 4 ? 16n : 80n))}`;
    const g = groups.get(key);
    if (g === undefined) groups.set(key, { family, min: value, max: value });
    else {
      if (value < g.min) g.min = value;
      if (value > g.max) g.max = value;
    }
  }
  const ranges = [...groups.values()].map(({ family, min, max }) => {
    const bits = bitsOf(family);
    const differing = (min ^ max).toString(2).length - (min === max ? 1 : 0);
    const prefix = Math.min(bits - differing, family === 4 ? 24 : 64);
    return { family, base: min & mask(family, prefix), prefix };
  });
  return aggregateParsed(ranges).map(formatCidr);
}
