/**
 * The DNS messages tp reads and writes, on dns-packet. tp forwards most messages as the bytes
 * it got (only the 16-bit id changes), so this decodes a query once to route it and encodes
 * only the few responses tp writes itself: errors, truncations and short-name answers.
 */
import dnsPacket, { type Answer, type DecodedPacket, type Packet } from 'dns-packet';

export type { Answer };

/** dns-packet's decoded fields that its type definitions leave out. */
type Decoded = DecodedPacket & { opcode?: string; rcode?: string };

// dns-packet decodes the rcode and opcode but encodes only the flags word: tp sets them there.
const rcodes = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };
export type Rcode = keyof typeof rcodes;

export interface Query {
  id: number;
  /** Lowercased, without the trailing dot; the root is ''. */
  name: string;
  /** As dns-packet names it: 'A', 'AAAA', 'PTR', 'SRV', ... or 'UNKNOWN_<n>'. */
  type: string;
  class: string;
  opcode: string;
  /** The opcode's 4 bits as sent, copied into tp's responses. */
  opcodeBits: number;
  rd: boolean;
  /** The UDP payload size the client accepts: its EDNS0 size, or 512 without EDNS0. */
  udpLimit: number;
  edns: boolean;
  packet: Decoded;
}

const HEADER_LENGTH = 12;

/** A message that parses, with its first question; throws on anything else. */
export function decode(msg: Buffer): Decoded & { question: NonNullable<Packet['questions']>[0] } {
  if (msg.length < HEADER_LENGTH) throw new Error(`DNS message of ${msg.length} bytes`);
  const packet = dnsPacket.decode(msg) as Decoded;
  const question = packet.questions?.[0];
  if (question === undefined) throw new Error('message has no question');
  return { ...packet, question };
}

/** A query tp must answer; throws for responses and for messages that do not parse. */
export function parseQuery(msg: Buffer): Query {
  const packet = decode(msg);
  if (packet.flag_qr) throw new Error('a response, not a query');
  const opt = packet.additionals?.find((a) => a.type === 'OPT');
  const size = opt?.type === 'OPT' ? opt.udpPayloadSize : undefined;
  return {
    id: packet.id ?? 0,
    name: normalise(packet.question.name),
    type: packet.question.type,
    class: packet.question.class ?? 'IN',
    opcode: packet.opcode ?? 'QUERY',
    opcodeBits: (msg.readUInt16BE(2) >> 11) & 0xf,
    rd: packet.flag_rd,
    udpLimit: Math.max(512, size ?? 512),
    edns: opt !== undefined,
    packet,
  };
}

export function normalise(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

export function idOf(msg: Buffer): number {
  return msg.readUInt16BE(0);
}

/** A copy of the message with another id: the one change a forwarder makes. */
export function withId(msg: Buffer, id: number): Buffer {
  const copy = Buffer.from(msg);
  copy.writeUInt16BE(id, 0);
  return copy;
}

/** True when `answer` is a response to `query`: same id, same question. */
export function answers(query: Buffer, answer: Buffer): boolean {
  try {
    const q = decode(query);
    const a = decode(answer);
    return (
      a.flag_qr &&
      a.id === q.id &&
      normalise(a.question.name) === normalise(q.question.name) &&
      a.question.type === q.question.type &&
      a.question.class === q.question.class
    );
  } catch {
    return false;
  }
}

export interface ResponseFields {
  rcode: Rcode;
  answers?: Answer[];
  aa?: boolean;
  tc?: boolean;
}

/** A response to `query`: its id, opcode, RD bit and question, with the given answers. */
export function respond(query: Query, fields: ResponseFields): Buffer {
  const flags =
    (fields.aa === true ? dnsPacket.AUTHORITATIVE_ANSWER : 0) |
    (fields.tc === true ? dnsPacket.TRUNCATED_RESPONSE : 0) |
    (query.rd ? dnsPacket.RECURSION_DESIRED : 0) |
    dnsPacket.RECURSION_AVAILABLE |
    (query.opcodeBits << 11) |
    rcodes[fields.rcode];
  const packet: Packet = {
    type: 'response',
    id: query.id,
    flags,
    questions: query.packet.questions ?? [],
    answers: fields.answers ?? [],
    // A client that sent EDNS0 gets an OPT back, or it may conclude that tp does not speak it.
    additionals: query.edns
      ? [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: 1232,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: 0,
            flag_do: false,
            options: [],
          },
        ]
      : [],
  };
  return dnsPacket.encode(packet);
}

/** SERVFAIL, NXDOMAIN, REFUSED...: the question copied, no records. */
export function errorResponse(query: Query, rcode: Rcode): Buffer {
  return respond(query, { rcode });
}

/** What a UDP client gets when the answer is too big for it: TC set, so it asks over TCP. */
export function truncated(query: Query, response: Buffer): Buffer {
  const decoded = decode(response);
  return respond(query, {
    rcode: (decoded.rcode ?? 'NOERROR') as Rcode,
    aa: decoded.flag_aa,
    tc: true,
  });
}

export function buildQuery(opts: {
  id: number;
  name: string;
  type: string;
  udpSize?: number;
}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: opts.id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name: opts.name, type: opts.type as 'A', class: 'IN' }],
    additionals:
      opts.udpSize === undefined
        ? []
        : [
            {
              type: 'OPT',
              name: '.',
              udpPayloadSize: opts.udpSize,
              extendedRcode: 0,
              ednsVersion: 0,
              flags: 0,
              flag_do: false,
              options: [],
            },
          ],
  });
}
