import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { TpError, systemErrorCode } from '../../lib/errors.js';
import { answers, decode, idOf, withId } from './message.js';

/** A nameserver to forward to. */
export interface Nameserver {
  address: string;
  port: number;
}

/** `10.0.0.2`, `10.0.0.2:5353`, `fd00::1` or `[fd00::1]:5353`; the port defaults to 53. */
export function parseNameserver(spec: string): Nameserver {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec);
  const v4WithPort = /^([\d.]+):(\d+)$/.exec(spec);
  const [address, port] = bracketed
    ? [bracketed[1] ?? '', bracketed[2]]
    : v4WithPort
      ? [v4WithPort[1] ?? '', v4WithPort[2]]
      : [spec, undefined];
  const n = port === undefined ? 53 : Number(port);
  if (isIP(address) === 0 || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new TpError(
      'config',
      `DNS upstream "${spec}" is not an IP address with an optional port`,
      {
        code: 'DNS_UPSTREAM_INVALID',
        fix: 'List nameservers as IP addresses in /etc/resolv.conf (e.g. "nameserver 10.0.0.2").',
      },
    );
  }
  return { address, port: n };
}

export function formatNameserver(ns: Nameserver): string {
  return isIP(ns.address) === 6 ? `[${ns.address}]:${ns.port}` : `${ns.address}:${ns.port}`;
}

/**
 * Forwards a query to each nameserver in turn until one answers, sharing `timeoutMs` between
 * them so the client gets an answer (or SERVFAIL) before its own resolver gives up. Every
 * attempt gets a fresh random id on its own socket: the client's id may be predictable, and
 * the answer must not be easy to spoof. A truncated UDP answer is asked again over TCP.
 */
export async function forward(
  nameservers: readonly Nameserver[],
  query: Buffer,
  timeoutMs: number,
): Promise<Buffer> {
  const clientId = idOf(query);
  const end = Date.now() + timeoutMs;
  const errors: string[] = [];
  for (const [i, ns] of nameservers.entries()) {
    // What is left, shared with the servers still to try: a refusal passes its time on.
    const perServer = Math.max(1, (end - Date.now()) / (nameservers.length - i));
    const deadline = Date.now() + perServer;
    const attempt = withId(query, randomInt(0x10000));
    try {
      let answer = await exchangeUdp(ns, attempt, perServer);
      if (decode(answer).flag_tc) {
        // The truncated answer is still an answer: the client can retry over TCP itself.
        answer = await exchangeTcp(ns, attempt, Math.max(1, deadline - Date.now())).catch(
          () => answer,
        );
      }
      return withId(answer, clientId);
    } catch (err) {
      errors.push(`${formatNameserver(ns)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(errors.length === 0 ? 'no upstream nameserver' : errors.join('; '));
}

export function exchangeUdp(ns: Nameserver, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(ns.address) === 6 ? 'udp6' : 'udp4');
    let settled = false;
    const settle = (err: Error | undefined, answer?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      if (answer === undefined) reject(err ?? new Error('no answer'));
      else resolve(answer);
    };
    const timer = setTimeout(() => {
      settle(new Error(`no answer within ${Math.round(timeoutMs)} ms`));
    }, timeoutMs);
    // A connected socket hears ICMP port unreachable as ECONNREFUSED: the next server, at once.
    socket.on('error', (err) => {
      settle(err);
    });
    // Anything else arriving on this port (a late or forged datagram) is ignored.
    socket.on('message', (msg) => {
      if (answers(query, msg)) settle(undefined, msg);
    });
    socket.connect(ns.port, ns.address, () => {
      socket.send(query, (err) => {
        if (err) settle(err);
      });
    });
  });
}

export function exchangeTcp(ns: Nameserver, query: Buffer, timeoutMs: number): Promise<Buffer> {
  const socket = connect({ host: ns.address, port: ns.port });
  return exchangeOverStream(socket, query, timeoutMs).catch((err: unknown) => {
    throw new Error(
      `TCP: ${systemErrorCode(err) ?? (err instanceof Error ? err.message : String(err))}`,
    );
  });
}

/**
 * One query and its answer over a byte stream in DNS's TCP framing: a TCP connection to a
 * nameserver, or a tunnel stream to the cluster's. The stream is destroyed either way.
 */
export function exchangeOverStream(
  stream: Duplex,
  query: Buffer,
  timeoutMs: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let pending: Buffer = Buffer.alloc(0);
    const done = (err: Error | undefined, answer?: Buffer): void => {
      clearTimeout(timer);
      stream.destroy();
      if (answer === undefined) reject(err ?? new Error('no answer'));
      else resolve(answer);
    };
    const timer = setTimeout(() => {
      done(new Error(`no answer over TCP within ${Math.round(timeoutMs)} ms`));
    }, timeoutMs);
    stream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      const { messages, rest } = unframe(pending);
      pending = rest;
      const answer = messages.find((m) => answers(query, m));
      if (answer !== undefined) done(undefined, answer);
    });
    stream.once('close', () => {
      done(new Error('connection closed without an answer'));
    });
    stream.on('error', (err) => {
      done(err);
    });
    stream.write(frame(query));
  });
}

/** DNS over TCP (RFC 1035 section 4.2.2): each message after its 16-bit big-endian length. */
export function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length, 0);
  return Buffer.concat([len, msg]);
}

/** The complete messages at the start of `buf`, and the bytes of the next, incomplete one. */
export function unframe(buf: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let pos = 0;
  while (buf.length - pos >= 2) {
    const len = buf.readUInt16BE(pos);
    if (buf.length - pos - 2 < len) break;
    messages.push(buf.subarray(pos + 2, pos + 2 + len));
    pos += 2 + len;
  }
  return { messages, rest: buf.subarray(pos) };
}
