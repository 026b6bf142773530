/**
 * Frames inside a tunnel stream. A port-forward stream is a plain byte pipe that can only be
 * closed as a whole (the v4 WebSocket protocol has no half-close), so the flow's own FIN and
 * RST travel in-band: [type u8][length u32be][payload]. A UDP datagram is one DATA frame.
 */
import { EventEmitter } from 'node:events';
import { Duplex, Readable, Transform } from 'node:stream';

export const FrameType = { data: 0, fin: 1, rst: 2 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const HEADER = 5;
/** Writers split larger chunks, so a reader never buffers more than this per frame. */
export const MAX_FRAME = 256 * 1024;

export function encodeFrame(type: FrameType, payload?: Buffer): Buffer {
  const len = payload?.length ?? 0;
  const out = Buffer.allocUnsafe(HEADER + len);
  out.writeUInt8(type, 0);
  out.writeUInt32BE(len, 1);
  if (payload !== undefined) payload.copy(out, HEADER);
  return out;
}

/**
 * Parses frames from a byte stream, whatever the chunking. Chunks are kept as they come and
 * joined once a whole frame is there, so a frame split over many chunks is copied once.
 */
export class FrameParser {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly onFrame: (type: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < HEADER) return;
      const head = this.peek(HEADER);
      const len = head.readUInt32BE(1);
      if (len > MAX_FRAME) throw new Error(`frame of ${len} bytes`);
      if (this.buffered < HEADER + len) return;
      const frame = this.take(HEADER + len);
      this.onFrame(frame.readUInt8(0), frame.subarray(HEADER));
    }
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) return first;
    return Buffer.concat(this.chunks, this.buffered).subarray(0, n);
  }

  private take(n: number): Buffer {
    let all = this.chunks[0];
    if (all === undefined || all.length < n) {
      all = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [all];
    }
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    if (rest.length > 0) this.chunks[0] = rest;
    else this.chunks.shift();
    this.buffered -= n;
    return out;
  }
}

/** Writes one DATA frame without copying the payload: header and payload travel corked. */
function writeData(out: Duplex, payload: Buffer): boolean {
  const head = Buffer.allocUnsafe(HEADER);
  head.writeUInt8(FrameType.data, 0);
  head.writeUInt32BE(payload.length, 1);
  out.cork();
  out.write(head);
  const ok = out.write(payload);
  process.nextTick(() => {
    out.uncork();
  });
  return ok;
}

export type SpliceEnd = 'closed' | 'reset' | 'tunnel-lost';

/** A plain endpoint: a TCP socket on the manager's side, the netstack's unix socket on ours. */
export interface PlainEnd extends Duplex {
  resetAndDestroy?: () => unknown;
}

function reset(plain: PlainEnd): void {
  // Only a TCP socket can send a RST; a unix socket just closes.
  if (typeof plain.resetAndDestroy === 'function' && !plain.destroyed) {
    try {
      plain.resetAndDestroy();
      return;
    } catch {
      // not a TCP socket after all
    }
  }
  plain.destroy();
}

/**
 * Relays a byte stream through a tunnel stream until both directions have finished. A clean
 * end on one side is a FIN frame and a half-close on the other; an error on the plain side
 * is a RST frame; the tunnel stream dying resets the plain side.
 */
export function spliceStream(
  plain: PlainEnd,
  tunnel: Duplex,
  /** Resets the plain side's peer when the plain end itself cannot (the netstack's flows). */
  abortPeer?: () => void,
): Promise<SpliceEnd> {
  return new Promise((resolve) => {
    let sentFin = false;
    let gotFin = false;
    let done = false;
    const finish = (how: SpliceEnd): void => {
      if (done) return;
      done = true;
      if (how === 'closed') {
        tunnel.end();
      } else {
        if (how === 'reset' && tunnel.writable) tunnel.end(encodeFrame(FrameType.rst));
        else tunnel.destroy();
        // Before the close: a closed unix socket alone reads as a clean EOF on the other side.
        abortPeer?.();
        reset(plain);
      }
      resolve(how);
    };
    const maybeClosed = (): void => {
      if (sentFin && gotFin) finish('closed');
    };

    const parser = new FrameParser((type, payload) => {
      if (type === FrameType.data) {
        if (!plain.write(payload)) {
          tunnel.pause();
          plain.once('drain', () => tunnel.resume());
        }
      } else if (type === FrameType.fin) {
        gotFin = true;
        plain.end(maybeClosed);
      } else {
        finish('reset');
      }
    });
    tunnel.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch {
        finish('tunnel-lost');
      }
    });
    // A tunnel stream that ends before its FIN frame was lost (a port-forward torn down). On a
    // half-open socket (tp-manager's) no 'close' would follow, and the flow would stay open.
    tunnel.once('end', () => {
      if (!gotFin) finish('tunnel-lost');
    });
    tunnel.once('close', () => {
      finish(sentFin && gotFin ? 'closed' : 'tunnel-lost');
    });
    tunnel.on('error', () => {
      finish('tunnel-lost');
    });

    plain.on('data', (chunk: Buffer) => {
      for (let off = 0; off < chunk.length; off += MAX_FRAME) {
        const part = chunk.subarray(off, off + MAX_FRAME);
        if (!writeData(tunnel, part)) {
          plain.pause();
          tunnel.once('drain', () => plain.resume());
        }
      }
    });
    plain.once('end', () => {
      sentFin = true;
      if (tunnel.writable) tunnel.write(encodeFrame(FrameType.fin));
      maybeClosed();
    });
    plain.on('error', () => {
      finish('reset');
    });
    plain.once('close', () => {
      if (!(sentFin && gotFin)) finish('reset');
    });
  });
}

/** Datagrams both ways through a tunnel stream, one DATA frame each. */
export class DatagramTunnel extends EventEmitter<{ datagram: [Buffer]; close: [] }> {
  private closed = false;

  constructor(private readonly tunnel: Duplex) {
    super();
    const parser = new FrameParser((type, payload) => {
      if (type === FrameType.data) this.emit('datagram', payload);
      else this.close();
    });
    tunnel.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch {
        this.close();
      }
    });
    tunnel.once('close', () => {
      this.close();
    });
    tunnel.on('error', () => {
      this.close();
    });
  }

  send(payload: Buffer): boolean {
    if (this.closed) return false;
    return writeData(this.tunnel, payload);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.tunnel.writable) this.tunnel.end(encodeFrame(FrameType.fin));
    else this.tunnel.destroy();
    this.emit('close');
  }
}

/**
 * A tunnel stream as a plain byte stream, for tp's own clients of a tunnelled TCP flow (the
 * cluster's DNS over TCP): writes become DATA frames, `end()` a FIN; the peer's FIN ends the
 * readable side and a RST or a lost tunnel destroys it.
 */
export class FramedStream extends Duplex {
  constructor(private readonly tunnel: Duplex) {
    super();
    const parser = new FrameParser((type, payload) => {
      if (type === FrameType.data) this.push(payload);
      else if (type === FrameType.fin) this.push(null);
      else this.destroy(new Error('reset by the peer'));
    });
    tunnel.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch (err) {
        this.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    });
    tunnel.once('close', () => {
      if (!this.destroyed) this.destroy(new Error('tunnel stream lost'));
    });
    tunnel.on('error', () => undefined);
  }

  override _read(): void {
    // Frames are pushed as they arrive; a tunnel stream has no backpressure to resume.
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    writeData(this.tunnel, chunk);
    done();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.tunnel.write(encodeFrame(FrameType.fin));
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.tunnel.destroy();
    done(err);
  }
}

/**
 * A byte stream that ends with a FIN frame, for a sender that finishes before its reader: the
 * reader closes the port-forward at the FIN instead of waiting for the runtime to close it,
 * which it does a second after the pod's side (containerd gives the other direction 1 s).
 */
export function finEncoder(): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      for (let off = 0; off < chunk.length; off += MAX_FRAME) {
        this.push(encodeFrame(FrameType.data, chunk.subarray(off, off + MAX_FRAME)));
      }
      done();
    },
    flush(done) {
      done(null, encodeFrame(FrameType.fin));
    },
  });
}

/**
 * The payload of a stream `finEncoder` wrote: it ends at the FIN, which closes `source` unless
 * the reader still has to answer on it (`keepOpen`); the source ending first, or a RST, fails
 * it, so that a cut-short stream never reads as whole.
 */
export function finDecoder(source: Readable, keepOpen = false): Readable {
  let finished = false;
  let atFin = false;
  const out = new Readable({
    read() {
      source.resume();
    },
    destroy(err, done) {
      finished = true;
      // A reader that answers on the source keeps it past the end of the payload.
      if (!(keepOpen && atFin)) source.destroy();
      done(err);
    },
  });
  const parser = new FrameParser((type, payload) => {
    if (finished) return;
    if (type === FrameType.data) {
      if (!out.push(payload)) source.pause();
    } else if (type === FrameType.fin) {
      finished = true;
      atFin = true;
      out.push(null);
      if (keepOpen) {
        source.removeListener('data', onData);
        source.pause();
      } else source.destroy();
    } else {
      out.destroy(new Error('reset by the peer'));
    }
  });
  const onData = (chunk: Buffer): void => {
    try {
      parser.push(chunk);
    } catch (err) {
      out.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  };
  source.on('data', onData);
  source.once('close', () => {
    if (!finished) out.destroy(new Error('the stream ended before its end frame'));
  });
  source.on('error', () => undefined);
  return out;
}
