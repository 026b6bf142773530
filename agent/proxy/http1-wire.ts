/**
 * HTTP/1.x as bytes on the wire, for a proxy that passes them on unchanged: where a message's
 * head ends and what it says, and where its body ends (RFC 9112 §6), read as the bytes go
 * by. Ambiguous framing that could let the agent and the app disagree on where a request
 * ends (both Content-Length and Transfer-Encoding, differing lengths, folded header lines)
 * is refused, as the parsers of Node and Go refuse it.
 */
import type { Socket } from 'node:net';

/** A head larger than this is refused: Node's and Go's own limits are of this size. */
export const MAX_HEAD = 64 * 1024;

export class WireError extends Error {}

export interface Head {
  /** The head as received, request or status line to the empty line included. */
  raw: Buffer;
  /** Request: method, target; response: status. */
  method: string;
  target: string;
  status: number;
  version: string;
  /** Names in lower case, in order, duplicates kept. */
  headers: [string, string][];
}

export type Framing =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  /** A response without a length: its body ends when the connection does. */
  | { kind: 'close' };

/** Reads a socket as a sequence of buffers that can be put back, without losing its pace. */
export class Pull {
  private readonly chunks: Buffer[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  private buffered = 0;

  private readonly onData = (d: Buffer): void => {
    this.chunks.push(d);
    this.buffered += d.length;
    // Reading ahead to a limit, not a chunk at a time: pausing and resuming the socket for
    // each chunk halved the throughput of a large body.
    if (this.buffered > Pull.HIGH_WATER) this.socket.pause();
    this.signal();
  };

  private static readonly HIGH_WATER = 1024 * 1024;

  private readonly onEnd = (): void => {
    this.ended = true;
    this.signal();
  };

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.once('end', this.onEnd);
    socket.once('close', this.onEnd);
  }

  /** Stops reading the socket, for a splice to take it (what was read stays in takeAll). */
  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
  }

  /** The next bytes, or null once the peer has ended (or the socket has gone). */
  async next(): Promise<Buffer | null> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk !== undefined) {
        this.buffered -= chunk.length;
        if (this.buffered <= Pull.HIGH_WATER && this.socket.isPaused()) this.socket.resume();
        return chunk;
      }
      if (this.ended) return null;
      this.socket.resume();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  unshift(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.unshift(chunk);
    this.buffered += chunk.length;
  }

  /** Bytes read and not taken yet. */
  takeAll(): Buffer[] {
    this.buffered = 0;
    return this.chunks.splice(0);
  }

  private signal(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The next head, or null when the peer ends before sending a byte of one. */
export async function readHead(pull: Pull, kind: 'request' | 'response'): Promise<Head | null> {
  let buffered: Buffer = Buffer.alloc(0);
  for (;;) {
    const chunk = await pull.next();
    if (chunk === null) {
      if (buffered.length === 0) return null;
      throw new WireError('the connection ended inside a head');
    }
    const from = Math.max(0, buffered.length - 3);
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf(CRLFCRLF, from);
    if (end < 0) {
      if (buffered.length > MAX_HEAD) throw new WireError('head too large');
      continue;
    }
    pull.unshift(buffered.subarray(end + 4));
    return parseHead(buffered.subarray(0, end + 4), kind);
  }
}

export function parseHead(raw: Buffer, kind: 'request' | 'response'): Head {
  const lines = raw.toString('latin1').slice(0, -4).split('\r\n');
  const first = lines.shift() ?? '';
  const head: Head = { raw, method: '', target: '', status: 0, version: '', headers: [] };
  if (kind === 'request') {
    const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/(1\.[01])$/.exec(first);
    if (m === null) throw new WireError('not an HTTP/1 request line');
    head.method = m[1] ?? '';
    head.target = m[2] ?? '';
    head.version = m[3] ?? '';
  } else {
    const m = /^HTTP\/(1\.[01]) (\d{3})(?: .*)?$/.exec(first);
    if (m === null) throw new WireError('not an HTTP/1 status line');
    head.version = m[1] ?? '';
    head.status = Number(m[2]);
  }
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    // A folded line or a name with spaces: parsers disagree on these, so none is passed on.
    if (!TOKEN.test(name))
      throw new WireError(`malformed header line ${JSON.stringify(line.slice(0, 40))}`);
    head.headers.push([name.toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return head;
}

export function headerValues(head: Head, name: string): string[] {
  return head.headers.filter(([n]) => n === name).map(([, v]) => v);
}

/** Connection tokens, lower case: `close`, `keep-alive`, `upgrade`. */
export function connectionTokens(head: Head): Set<string> {
  return new Set(
    headerValues(head, 'connection').flatMap((v) =>
      v.split(',').map((t) => t.trim().toLowerCase()),
    ),
  );
}

function lengthOf(head: Head): number | undefined {
  const values = headerValues(head, 'content-length').flatMap((v) =>
    v.split(',').map((x) => x.trim()),
  );
  if (values.length === 0) return undefined;
  const first = values[0] ?? '';
  if (!/^\d{1,15}$/.test(first) || values.some((v) => v !== first))
    throw new WireError('an invalid or ambiguous Content-Length');
  return Number(first);
}

function chunked(head: Head): boolean | undefined {
  const codings = headerValues(head, 'transfer-encoding').flatMap((v) =>
    v.split(',').map((x) => x.trim().toLowerCase()),
  );
  if (codings.length === 0) return undefined;
  return codings[codings.length - 1] === 'chunked';
}

export function requestFraming(head: Head): Framing {
  const isChunked = chunked(head);
  const length = lengthOf(head);
  if (isChunked !== undefined) {
    if (length !== undefined) throw new WireError('both Content-Length and Transfer-Encoding');
    if (!isChunked) throw new WireError('a request body not ending in chunked');
    return { kind: 'chunked' };
  }
  return length === undefined || length === 0 ? { kind: 'none' } : { kind: 'length', length };
}

export function responseFraming(head: Head, requestMethod: string): Framing {
  if (
    requestMethod === 'HEAD' ||
    (head.status >= 100 && head.status < 200) ||
    head.status === 204 ||
    head.status === 304
  )
    return { kind: 'none' };
  const isChunked = chunked(head);
  if (isChunked === true) return { kind: 'chunked' };
  if (isChunked === false) return { kind: 'close' };
  const length = lengthOf(head);
  if (length === undefined) return { kind: 'close' };
  return length === 0 ? { kind: 'none' } : { kind: 'length', length };
}

/** Whether the connection stays open after this exchange, by both heads (RFC 9112 §9.3). */
export function keepsAlive(request: Head, response: Head, framing: Framing): boolean {
  if (framing.kind === 'close') return false;
  for (const h of [request, response]) {
    const tokens = connectionTokens(h);
    if (tokens.has('close')) return false;
    if (h.version === '1.0' && !tokens.has('keep-alive')) return false;
  }
  return true;
}

const enum C {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  LineStart,
  Trailer,
  TrailerLf,
  EndLf,
  Done,
}

/** Finds the end of a chunked body in the bytes as they come, without changing them. */
export class ChunkedScanner {
  private state = C.Size;
  private size = 0;
  private digits = 0;

  /** How many bytes of `buf` belong to the body; all of them until it ends. */
  feed(buf: Buffer): { used: number; done: boolean } {
    let i = 0;
    while (i < buf.length && this.state !== C.Done) {
      const b = buf[i] ?? 0;
      switch (this.state) {
        case C.Size: {
          const v = hexValue(b);
          if (v >= 0) {
            if (++this.digits > 15) throw new WireError('a chunk size too large');
            this.size = this.size * 16 + v;
          } else if (this.digits > 0 && (b === 0x3b || b === 0x20 || b === 0x09)) {
            this.state = C.Ext;
          } else if (this.digits > 0 && b === 0x0d) {
            this.state = C.SizeLf;
          } else {
            throw new WireError('a malformed chunk size');
          }
          i += 1;
          break;
        }
        case C.Ext:
          if (b === 0x0d) this.state = C.SizeLf;
          else if (b === 0x0a) throw new WireError('a bare LF in a chunk size line');
          i += 1;
          break;
        case C.SizeLf:
          if (b !== 0x0a) throw new WireError('a chunk size line without CRLF');
          this.state = this.size === 0 ? C.LineStart : C.Data;
          i += 1;
          break;
        case C.Data: {
          const take = Math.min(this.size, buf.length - i);
          this.size -= take;
          i += take;
          if (this.size === 0) this.state = C.DataCr;
          break;
        }
        case C.DataCr:
          if (b !== 0x0d) throw new WireError('chunk data longer than its size');
          this.state = C.DataLf;
          i += 1;
          break;
        case C.DataLf:
          if (b !== 0x0a) throw new WireError('chunk data without CRLF');
          this.state = C.Size;
          this.size = 0;
          this.digits = 0;
          i += 1;
          break;
        case C.LineStart:
          this.state = b === 0x0d ? C.EndLf : C.Trailer;
          i += 1;
          break;
        case C.Trailer:
          if (b === 0x0d) this.state = C.TrailerLf;
          i += 1;
          break;
        case C.TrailerLf:
          if (b !== 0x0a) throw new WireError('a trailer line without CRLF');
          this.state = C.LineStart;
          i += 1;
          break;
        case C.EndLf:
          if (b !== 0x0a) throw new WireError('a chunked body without its last CRLF');
          this.state = C.Done;
          i += 1;
          break;
      }
    }
    return { used: i, done: this.state === C.Done };
  }
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  return -1;
}

/**
 * Passes one body from `pull` to each of `to`, unchanged, and stops where it ends; bytes of
 * what follows stay in `pull`. `write` says when to wait for a slow reader.
 */
export async function forwardBody(
  pull: Pull,
  framing: Framing,
  write: (chunk: Buffer) => Promise<void>,
): Promise<void> {
  if (framing.kind === 'none') return;
  const scanner = framing.kind === 'chunked' ? new ChunkedScanner() : undefined;
  let left = framing.kind === 'length' ? framing.length : Infinity;
  for (;;) {
    const chunk = await pull.next();
    if (chunk === null) {
      if (framing.kind === 'close') return;
      throw new WireError('the connection ended inside a body');
    }
    let used = chunk.length;
    let done = false;
    if (scanner !== undefined) {
      ({ used, done } = scanner.feed(chunk));
    } else if (framing.kind === 'length') {
      used = Math.min(left, chunk.length);
      left -= used;
      done = left === 0;
    }
    await write(used === chunk.length ? chunk : chunk.subarray(0, used));
    if (done) {
      pull.unshift(chunk.subarray(used));
      return;
    }
  }
}
