import { isIPv4, isIPv6 } from 'node:net';

/**
 * The header the Go netstack writes at the start of every flow's unix-socket connection
 * (netstack/internal/header has the other half; netstack/testdata/header-vectors.json keeps
 * the two byte-compatible). Addresses are always 16 bytes, IPv4 as IPv4-mapped IPv6, so the
 * same header carries IPv6 when the stack routes it.
 *
 *   magic "TPF1" | version u8 | proto u8 | family u8 | reserved u8 |
 *   src addr [16] | src port u16 | dst addr [16] | dst port u16 | flow id u64     (big-endian)
 */
export const HEADER_LENGTH = 52;
export const HEADER_VERSION = 1;
const MAGIC = Buffer.from('TPF1', 'ascii');

export type Protocol = 'tcp' | 'udp';

export interface Endpoint {
  address: string;
  port: number;
}

export interface FlowHeader {
  proto: Protocol;
  family: 4 | 6;
  src: Endpoint;
  dst: Endpoint;
  flowId: bigint;
}

/** The one byte Node answers a new flow with. */
export const Verdict = { accept: 0, refused: 1, unreachable: 2 } as const;
export type VerdictName = keyof typeof Verdict;

const protoNumbers: Record<Protocol, number> = { tcp: 6, udp: 17 };

export class HeaderError extends Error {
  override readonly name = 'HeaderError';
}

export function encodeHeader(h: FlowHeader): Buffer {
  const buf = Buffer.alloc(HEADER_LENGTH);
  MAGIC.copy(buf, 0);
  buf.writeUInt8(HEADER_VERSION, 4);
  buf.writeUInt8(protoNumbers[h.proto], 5);
  buf.writeUInt8(h.family, 6);
  encodeAddress(h.src.address, h.family).copy(buf, 8);
  buf.writeUInt16BE(h.src.port, 24);
  encodeAddress(h.dst.address, h.family).copy(buf, 26);
  buf.writeUInt16BE(h.dst.port, 42);
  buf.writeBigUInt64BE(h.flowId, 44);
  return buf;
}

export function decodeHeader(buf: Buffer): FlowHeader {
  if (buf.length < HEADER_LENGTH)
    throw new HeaderError(`header is ${buf.length} bytes, want ${HEADER_LENGTH}`);
  if (!buf.subarray(0, 4).equals(MAGIC))
    throw new HeaderError(`bad magic ${buf.subarray(0, 4).toString('hex')}`);
  const version = buf.readUInt8(4);
  if (version !== HEADER_VERSION) throw new HeaderError(`unsupported header version ${version}`);
  const protoNumber = buf.readUInt8(5);
  const proto = protoNumber === 6 ? 'tcp' : protoNumber === 17 ? 'udp' : undefined;
  if (proto === undefined) throw new HeaderError(`unknown protocol ${protoNumber}`);
  const family = buf.readUInt8(6);
  if (family !== 4 && family !== 6) throw new HeaderError(`unknown address family ${family}`);
  if (buf.readUInt8(7) !== 0) throw new HeaderError('the reserved byte is not zero');
  return {
    proto,
    family,
    src: { address: decodeAddress(buf.subarray(8, 24), family), port: buf.readUInt16BE(24) },
    dst: { address: decodeAddress(buf.subarray(26, 42), family), port: buf.readUInt16BE(42) },
    flowId: buf.readBigUInt64BE(44),
  };
}

function encodeAddress(address: string, family: 4 | 6): Buffer {
  const out = Buffer.alloc(16);
  if (family === 4) {
    if (!isIPv4(address)) throw new HeaderError(`${address} is not an IPv4 address`);
    out.writeUInt16BE(0xffff, 10);
    address.split('.').forEach((o, i) => out.writeUInt8(Number(o), 12 + i));
    return out;
  }
  if (!isIPv6(address)) throw new HeaderError(`${address} is not an IPv6 address`);
  const [head = '', tail = ''] = address.split('::');
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = address.includes('::') ? groups(tail) : [];
  const all = address.includes('::')
    ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
    : h;
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

const v4Prefix = Buffer.from('00000000000000000000ffff', 'hex');

function decodeAddress(b: Buffer, family: 4 | 6): string {
  // The family and the address must agree, as the Go codec insists: an IPv4 flow carries an
  // IPv4-mapped address and an IPv6 flow never does.
  const mapped = b.subarray(0, 12).equals(v4Prefix);
  if (family === 4) {
    if (!mapped) throw new HeaderError('family 4 with an address that is not IPv4-mapped');
    return [...b.subarray(12, 16)].join('.');
  }
  if (mapped) throw new HeaderError('family 6 with an IPv4-mapped address');
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  // RFC 5952: compress the longest run of two or more zero groups, the first if tied.
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > best.len && j - i >= 2) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}
