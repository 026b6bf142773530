/**
 * Just enough of the DNS wire format (RFC 1035) for a forwarder: the header, the first
 * question, the records of a response, and the few responses tp writes itself. Anything that
 * does not parse throws, and the server drops the packet.
 */

import { HEADER_LENGTH, encodeName, nameToString, readName } from './name.js';

export const Rcode = { noError: 0, formErr: 1, servFail: 2, nxDomain: 3, notImp: 4, refused: 5 };
export const RrType = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, AAAA: 28, SRV: 33 };
const OPT = 41;
export const CLASS_IN = 1;

const Flag = { qr: 0x8000, aa: 0x0400, tc: 0x0200, rd: 0x0100, ra: 0x0080 };

export interface Header {
  id: number;
  flags: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  rcode: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

export interface Question {
  /** Lowercased, dot-separated, without the trailing dot; the root is ''. */
  name: string;
  /** The name as sent, uncompressed, including the terminating zero byte. */
  wire: Buffer;
  type: number;
  class: number;
  /** Offset just past the question: bytes 12..end are the question section as sent. */
  end: number;
}

export interface ResourceRecord {
  /** Uncompressed owner name. */
  owner: Buffer;
  type: number;
  class: number;
  ttl: number;
  /** With the names inside it decompressed, so the record can be copied to another message. */
  rdata: Buffer;
}

export function readHeader(msg: Buffer): Header {
  if (msg.length < HEADER_LENGTH) throw new Error(`DNS message of ${msg.length} bytes`);
  const flags = msg.readUInt16BE(2);
  return {
    id: msg.readUInt16BE(0),
    flags,
    qr: (flags & Flag.qr) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & Flag.aa) !== 0,
    tc: (flags & Flag.tc) !== 0,
    rd: (flags & Flag.rd) !== 0,
    rcode: flags & 0xf,
    qdcount: msg.readUInt16BE(4),
    ancount: msg.readUInt16BE(6),
    nscount: msg.readUInt16BE(8),
    arcount: msg.readUInt16BE(10),
  };
}

export function readQuestion(msg: Buffer): Question {
  if (readHeader(msg).qdcount < 1) throw new Error('message has no question');
  const { wire, end } = readName(msg, HEADER_LENGTH);
  if (end + 4 > msg.length) throw new Error('question runs past the end of the message');
  return {
    name: nameToString(wire),
    wire,
    type: msg.readUInt16BE(end),
    class: msg.readUInt16BE(end + 2),
    end: end + 4,
  };
}

/** A copy of the message with another id. */
export function withId(msg: Buffer, id: number): Buffer {
  const copy = Buffer.from(msg);
  copy.writeUInt16BE(id, 0);
  return copy;
}

/** Every section of a message; names in known record types are decompressed. */
export function readSections(msg: Buffer): {
  header: Header;
  question: Question;
  answers: ResourceRecord[];
  authority: ResourceRecord[];
  additional: ResourceRecord[];
} {
  const header = readHeader(msg);
  const question = readQuestion(msg);
  let pos = question.end;
  for (let i = 1; i < header.qdcount; i++) pos = readName(msg, pos).end + 4;
  const section = (count: number): ResourceRecord[] => {
    const records: ResourceRecord[] = [];
    for (let i = 0; i < count; i++) {
      const { record, end } = readRecord(msg, pos);
      records.push(record);
      pos = end;
    }
    return records;
  };
  const answers = section(header.ancount);
  const authority = section(header.nscount);
  return { header, question, answers, authority, additional: section(header.arcount) };
}

function readRecord(msg: Buffer, offset: number): { record: ResourceRecord; end: number } {
  const { wire: owner, end: nameEnd } = readName(msg, offset);
  if (nameEnd + 10 > msg.length) throw new Error('record runs past the end of the message');
  const type = msg.readUInt16BE(nameEnd);
  const rdlength = msg.readUInt16BE(nameEnd + 8);
  const start = nameEnd + 10;
  const end = start + rdlength;
  if (end > msg.length) throw new Error('record data runs past the end of the message');
  const record = {
    owner,
    type,
    class: msg.readUInt16BE(nameEnd + 2),
    ttl: msg.readUInt32BE(nameEnd + 4),
    rdata: decompressRdata(msg, type, start, end),
  };
  return { record, end };
}

/** RFC 3597: only the RFC 1035 types (and SRV, by practice) may carry compressed names. */
function decompressRdata(msg: Buffer, type: number, start: number, end: number): Buffer {
  // [fixed bytes before the names, number of names, fixed bytes after]
  const layout: Partial<Record<number, [number, number, number]>> = {
    [RrType.NS]: [0, 1, 0],
    [RrType.CNAME]: [0, 1, 0],
    [RrType.PTR]: [0, 1, 0],
    [RrType.MX]: [2, 1, 0],
    [RrType.SRV]: [6, 1, 0],
    [RrType.SOA]: [0, 2, 20],
  };
  const shape = layout[type];
  if (shape === undefined) return Buffer.from(msg.subarray(start, end));
  const [before, names, after] = shape;
  const parts = [msg.subarray(start, start + before)];
  let pos = start + before;
  for (let i = 0; i < names; i++) {
    const { wire, end: next } = readName(msg, pos);
    parts.push(wire);
    pos = next;
  }
  parts.push(msg.subarray(pos, pos + after));
  if (pos + after !== end) throw new Error(`record of type ${type} has a bad length`);
  return Buffer.concat(parts);
}

/** The UDP payload size the sender accepts: its EDNS0 size, or 512 without EDNS0. */
export function udpPayloadLimit(msg: Buffer): number {
  return Math.max(512, findOpt(msg)?.class ?? 512);
}

function findOpt(msg: Buffer): ResourceRecord | undefined {
  try {
    return readSections(msg).additional.find((r) => r.type === OPT);
  } catch {
    return undefined;
  }
}

export interface ResponseOptions {
  rcode: number;
  answers?: readonly ResourceRecord[];
  aa?: boolean;
  tc?: boolean;
}

/** A response to `query`: its id, opcode, RD bit and question, with the given answers. */
export function buildResponse(query: Buffer, opts: ResponseOptions): Buffer {
  const header = readHeader(query);
  const question = readQuestion(query);
  const answers = opts.answers ?? [];
  // A client that sent EDNS0 gets an OPT back, or it may conclude that tp does not speak it.
  const edns = findOpt(query) !== undefined;
  const flags =
    Flag.qr |
    (header.opcode << 11) |
    (opts.aa === true ? Flag.aa : 0) |
    (opts.tc === true ? Flag.tc : 0) |
    (header.rd ? Flag.rd : 0) |
    Flag.ra |
    (opts.rcode & 0xf);
  const head = Buffer.alloc(HEADER_LENGTH);
  head.writeUInt16BE(header.id, 0);
  head.writeUInt16BE(flags, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answers.length, 6);
  head.writeUInt16BE(edns ? 1 : 0, 10);
  const records = answers.map(encodeRecord);
  if (edns) records.push(encodeRecord(optRecord(1232)));
  return Buffer.concat([head, query.subarray(HEADER_LENGTH, question.end), ...records]);
}

/** SERVFAIL, NXDOMAIN, REFUSED...: the question copied, no records. */
export function errorResponse(query: Buffer, rcode: number): Buffer {
  return buildResponse(query, { rcode });
}

/** What a UDP client gets when the answer is too big: the question and TC, so it asks over TCP. */
export function truncateResponse(response: Buffer): Buffer {
  const header = readHeader(response);
  const question = readQuestion(response);
  const head = Buffer.alloc(HEADER_LENGTH);
  head.writeUInt16BE(header.id, 0);
  head.writeUInt16BE(header.flags | Flag.tc, 2);
  head.writeUInt16BE(1, 4);
  return Buffer.concat([head, response.subarray(HEADER_LENGTH, question.end)]);
}

export function encodeRecord(r: ResourceRecord): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(r.type, 0);
  fixed.writeUInt16BE(r.class, 2);
  fixed.writeUInt32BE(r.ttl, 4);
  fixed.writeUInt16BE(r.rdata.length, 8);
  return Buffer.concat([r.owner, fixed, r.rdata]);
}

const optRecord = (udpSize: number): ResourceRecord => ({
  owner: Buffer.of(0),
  type: OPT,
  class: udpSize,
  ttl: 0,
  rdata: Buffer.alloc(0),
});

export interface QueryOptions {
  id: number;
  /** A dotted name, or an uncompressed wire name. */
  name: string | Buffer;
  type: number;
  rd?: boolean;
  /** Adds an EDNS0 OPT record advertising this UDP payload size. */
  udpSize?: number;
}

export function buildQuery(opts: QueryOptions): Buffer {
  const head = Buffer.alloc(HEADER_LENGTH);
  head.writeUInt16BE(opts.id, 0);
  head.writeUInt16BE(opts.rd === false ? 0 : Flag.rd, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(opts.udpSize === undefined ? 0 : 1, 10);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(opts.type, 0);
  tail.writeUInt16BE(CLASS_IN, 2);
  const name = typeof opts.name === 'string' ? encodeName(opts.name) : opts.name;
  const opt = opts.udpSize === undefined ? [] : [encodeRecord(optRecord(opts.udpSize))];
  return Buffer.concat([head, name, tail, ...opt]);
}
