/** DNS names on the wire (RFC 1035 section 4.1.4): labels, compression, presentation form. */

export const HEADER_LENGTH = 12;
const MAX_NAME_LENGTH = 255;

/** Reads a possibly compressed name; returns it uncompressed and the offset after it. */
export function readName(msg: Buffer, offset: number): { wire: Buffer; end: number } {
  const labels: Buffer[] = [];
  let length = 1;
  let pos = offset;
  let end: number | undefined;
  // Each pointer must go strictly backwards, and never into the header: loops cannot happen.
  let limit = offset;
  for (;;) {
    if (pos >= msg.length) throw new Error('name runs past the end of the message');
    const len = msg.readUInt8(pos);
    if (len === 0) break;
    if ((len & 0xc0) === 0xc0) {
      if (pos + 2 > msg.length) throw new Error('truncated compression pointer');
      const target = msg.readUInt16BE(pos) & 0x3fff;
      if (target >= limit || target < HEADER_LENGTH) throw new Error('bad compression pointer');
      end ??= pos + 2;
      limit = target;
      pos = target;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new Error(`unsupported label type 0x${len.toString(16)}`);
    if (pos + 1 + len > msg.length) throw new Error('label runs past the end of the message');
    length += 1 + len;
    if (length > MAX_NAME_LENGTH) throw new Error('name longer than 255 bytes');
    labels.push(msg.subarray(pos, pos + 1 + len));
    pos += 1 + len;
  }
  labels.push(Buffer.of(0));
  return { wire: Buffer.concat(labels), end: end ?? pos + 1 };
}

/** Presentation form: lowercased, bytes outside [a-z0-9_-] and '*' escaped as \DDD. */
export function nameToString(wire: Buffer): string {
  const char = (b: number): string => {
    const c = String.fromCharCode(b);
    return /[a-z0-9_*-]/.test(c) ? c : `\\${b.toString().padStart(3, '0')}`;
  };
  return splitLabels(lowerWire(wire))
    .map((label) => [...label].map(char).join(''))
    .join('.');
}

/** The labels of an uncompressed name, without their length bytes. */
export function splitLabels(wire: Buffer): Buffer[] {
  const labels: Buffer[] = [];
  for (let pos = 0; pos < wire.length && wire.readUInt8(pos) !== 0;) {
    const len = wire.readUInt8(pos);
    labels.push(wire.subarray(pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  return labels;
}

/** ASCII-lowercases a copy: DNS names compare case-insensitively, and only in ASCII. */
export function lowerWire(buf: Buffer): Buffer {
  const out = Buffer.from(buf);
  for (let i = 0; i < out.length; i++) {
    const b = out.readUInt8(i);
    if (b >= 0x41 && b <= 0x5a) out.writeUInt8(b + 0x20, i);
  }
  return out;
}

/** Encodes a plain dotted name (no escapes); a trailing dot is optional, '' is the root. */
export function encodeName(name: string): Buffer {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  const labels = trimmed === '' ? [] : trimmed.split('.').map((l) => Buffer.from(l, 'latin1'));
  for (const l of labels) {
    if (l.length === 0 || l.length > 63) throw new Error(`bad label in name "${name}"`);
  }
  const wire = Buffer.concat([...labels.flatMap((l) => [Buffer.of(l.length), l]), Buffer.of(0)]);
  if (wire.length > MAX_NAME_LENGTH) throw new Error(`name "${name}" is longer than 255 bytes`);
  return wire;
}
