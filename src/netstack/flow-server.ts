import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { HEADER_LENGTH, Verdict, decodeHeader, type FlowHeader } from './header.js';

/** What Node does with a new flow: refuse it, call it unreachable, or take it over. */
export type Answer<T> = 'refused' | 'unreachable' | ((flow: T) => void);

export interface FlowHandler {
  /** After 'accept' the socket carries the flow's bytes both ways; ending it half-closes. */
  tcp(header: FlowHeader): Promise<Answer<Socket>> | Answer<Socket>;
  udp(header: FlowHeader): Promise<Answer<DatagramFlow>> | Answer<DatagramFlow>;
}

export interface FlowServerStats {
  open: number;
  total: number;
  refused: number;
  unreachable: number;
  /** Connections that never produced a valid header. */
  malformed: number;
}

/**
 * The Node end of the netstack's hand-off: a unix socket on which every TCP flow and every UDP
 * 4-tuple arrives as its own connection, header first. The handler answers each with a
 * verdict; backpressure and half-close are the socket's own.
 */
export class FlowServer implements AsyncDisposable {
  private readonly sockets = new Set<Socket>();
  private stopped: Promise<void> | undefined;
  readonly stats: FlowServerStats = { open: 0, total: 0, refused: 0, unreachable: 0, malformed: 0 };

  private constructor(
    private readonly server: Server,
    readonly path: string,
    private readonly handler: FlowHandler,
  ) {
    server.on('connection', (socket) => {
      void this.onConnection(socket);
    });
  }

  static async listen(path: string, handler: FlowHandler): Promise<FlowServer> {
    // A socket file left by a daemon that died is stale by definition: this daemon owns the path.
    rmSync(path, { force: true });
    const server = createServer({ allowHalfOpen: true });
    const flows = new FlowServer(server, path, handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return flows;
  }

  private async onConnection(socket: Socket): Promise<void> {
    this.sockets.add(socket);
    this.stats.open += 1;
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.stats.open -= 1;
    });
    socket.on('error', () => socket.destroy());
    let header: FlowHeader;
    try {
      header = decodeHeader(await readExactly(socket, HEADER_LENGTH));
    } catch {
      this.stats.malformed += 1;
      socket.destroy();
      return;
    }
    this.stats.total += 1;
    try {
      if (header.proto === 'tcp') {
        const answer = await this.handler.tcp(header);
        if (this.answer(socket, answer)) answer(socket);
      } else {
        const answer = await this.handler.udp(header);
        if (this.answer(socket, answer)) answer(new DatagramFlow(socket));
      }
    } catch {
      // A handler that throws has not decided; the flow is refused rather than left hanging.
      this.answer(socket, 'refused');
    }
  }

  /** Writes the verdict; true when the flow was accepted and the caller takes it over. */
  private answer<T>(socket: Socket, answer: Answer<T>): answer is (flow: T) => void {
    if (typeof answer === 'function') {
      socket.write(Buffer.of(Verdict.accept));
      return true;
    }
    this.stats[answer] += 1;
    socket.end(Buffer.of(Verdict[answer]));
    return false;
  }

  /** Closes the listener and every flow; safe to call more than once. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      for (const s of this.sockets) s.destroy();
      this.server.close(() => {
        rmSync(this.path, { force: true });
        resolve();
      });
    });
    return this.stopped;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Reads exactly n bytes and leaves the rest of the stream unread. */
function readExactly(socket: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('readable', tryRead);
      socket.off('end', onEnd);
      socket.off('error', reject);
    };
    const tryRead = (): void => {
      const chunk = socket.read(n) as Buffer | null;
      if (chunk === null) return;
      cleanup();
      if (chunk.length === n) resolve(chunk);
      else reject(new Error(`stream ended after ${chunk.length} of ${n} bytes`));
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`stream ended before ${n} bytes`));
    };
    socket.on('readable', tryRead);
    socket.once('end', onEnd);
    socket.once('error', reject);
    tryRead();
  });
}

/**
 * A UDP 4-tuple as the netstack hands it over: datagrams framed with a 16-bit big-endian
 * length, in both directions. The netstack closes it after an idle timeout.
 */
export class DatagramFlow extends EventEmitter<{ datagram: [Buffer]; close: [] }> {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly socket: Socket) {
    super();
    socket.on('data', (chunk: Buffer) => {
      this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 2) {
        const len = this.pending.readUInt16BE(0);
        if (this.pending.length < 2 + len) break;
        this.emit('datagram', this.pending.subarray(2, 2 + len));
        this.pending = this.pending.subarray(2 + len);
      }
    });
    socket.once('close', () => this.emit('close'));
  }

  /** Sends one datagram back to the flow's source; false when the socket is buffering. */
  send(payload: Buffer): boolean {
    if (payload.length > 0xffff) throw new RangeError(`datagram of ${payload.length} bytes`);
    const frame = Buffer.alloc(2 + payload.length);
    frame.writeUInt16BE(payload.length, 0);
    payload.copy(frame, 2);
    return this.socket.write(frame);
  }

  close(): void {
    this.socket.end();
  }
}
