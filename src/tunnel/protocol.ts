/**
 * The tunnel's wire protocol, shared by the daemon and tp-manager. Every flow is its own
 * port-forward stream, so there is nothing to multiplex: a stream opens with one JSON request
 * line from the daemon and one JSON reply line from the manager, and then carries frames
 * (frames.ts) for the flow's bytes. A heartbeat is a stream of its own too: one request, one
 * reply, closed.
 */
import type { Readable } from 'node:stream';

export const TUNNEL_VERSION = 1;

/** A request line longer than this is not a request. */
export const MAX_LINE = 4096;

export type FlowProto = 'tcp' | 'udp';

export interface DialRequest {
  v: typeof TUNNEL_VERSION;
  op: 'dial';
  proto: FlowProto;
  host: string;
  port: number;
}

export interface InfoRequest {
  v: typeof TUNNEL_VERSION;
  op: 'info';
}

/**
 * "This session is alive": sent by the daemon for as long as its session runs, so that
 * tp-manager restores what a session engages once it has been silent for its grace.
 */
export interface HeartbeatRequest {
  v: typeof TUNNEL_VERSION;
  op: 'heartbeat';
  session: string;
  /** The session's grace in seconds, as the daemon was told it. */
  grace?: number;
}

export type TunnelRequest = DialRequest | InfoRequest | HeartbeatRequest;

/** Why a dial failed, in the terms the netstack can answer with (RST or ICMP unreachable). */
export type DialFailure = 'refused' | 'unreachable' | 'timeout' | 'bad-request';

export type TunnelReply = { ok: true } | { ok: false; error: DialFailure; message: string };

/** What the manager tells a daemon about where it runs; DNS settings come from its pod. */
export interface ManagerInfo {
  ok: true;
  version: string;
  tunnel: typeof TUNNEL_VERSION;
  namespace: string;
  podIP: string;
  nameservers: string[];
  search: string[];
  clusterDomain: string;
}

export function encodeLine(value: object): Buffer {
  return Buffer.from(`${JSON.stringify(value)}\n`);
}

export function parseRequest(line: string): TunnelRequest {
  const value = JSON.parse(line) as {
    v?: unknown;
    op?: unknown;
    proto?: unknown;
    host?: unknown;
    port?: unknown;
    session?: unknown;
    grace?: unknown;
  };
  if (value.v !== TUNNEL_VERSION) throw new Error(`tunnel version ${String(value.v)}`);
  if (value.op === 'info') return { v: TUNNEL_VERSION, op: 'info' };
  if (value.op === 'heartbeat') return heartbeat(value.session, value.grace);
  if (value.op !== 'dial') throw new Error(`unknown op ${String(value.op)}`);
  const { proto, host, port } = value;
  if (proto !== 'tcp' && proto !== 'udp') throw new Error(`unknown proto ${String(proto)}`);
  if (typeof host !== 'string' || host === '') throw new Error('no host');
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`bad port ${String(port)}`);
  }
  return { v: TUNNEL_VERSION, op: 'dial', proto, host, port };
}

function heartbeat(session: unknown, grace: unknown): HeartbeatRequest {
  // A session is named as a Docker container is (src/session/naming.ts).
  if (typeof session !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,126}$/.test(session)) {
    throw new Error(`bad session ${JSON.stringify(session)}`);
  }
  if (grace === undefined) return { v: TUNNEL_VERSION, op: 'heartbeat', session };
  if (typeof grace !== 'number' || !Number.isFinite(grace) || grace <= 0) {
    throw new Error(`bad grace ${JSON.stringify(grace)}`);
  }
  return { v: TUNNEL_VERSION, op: 'heartbeat', session, grace };
}

/**
 * Reads one newline-terminated line and puts back whatever followed it, so the stream can be
 * handed on. Rejects when the stream ends or errors first, or the line is too long.
 */
export function readLine(stream: Readable, max = MAX_LINE): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const cleanup = (): void => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error('stream closed before a full line'));
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = stream.read() as Buffer | null) !== null) {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        const nl = buffered.indexOf(0x0a);
        if (nl >= 0) {
          cleanup();
          const rest = buffered.subarray(nl + 1);
          if (rest.length > 0) stream.unshift(rest);
          resolve(buffered.subarray(0, nl).toString('utf8'));
          return;
        }
        if (buffered.length > max) {
          cleanup();
          reject(new Error(`line longer than ${max} bytes`));
          return;
        }
      }
    };
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.once('error', onError);
    onReadable();
  });
}
