/**
 * Connections carried as bytes: to the app or a session when no filter looks into them, and
 * wiretap copies, which must never hold the original back.
 */
import { connect, type Socket } from 'node:net';
import type { Writable } from 'node:stream';

/** A copy's bytes held for a slow session before the copy is dropped. */
export const COPY_LIMIT = 4 * 1024 * 1024;

/**
 * Joins two sockets both ways, with half-closes passed on and a reset on one end passed to
 * the other as a reset, as a client of the app alone would see it.
 */
export function splice(a: Socket, b: Socket): void {
  const fail = (other: Socket) => (): void => {
    if (!other.destroyed) other.resetAndDestroy();
  };
  a.on('error', fail(b));
  b.on('error', fail(a));
  a.pipe(b);
  b.pipe(a);
  const closeWhenDone = (): void => {
    if (a.readableEnded && b.readableEnded && a.writableFinished && b.writableFinished) {
      a.destroy();
      b.destroy();
    }
  };
  for (const s of [a, b]) {
    s.on('end', closeWhenDone);
    s.on('finish', closeWhenDone);
    s.once('close', () => {
      const other = s === a ? b : a;
      // A side that closed before both halves ended was cut: the other goes too.
      if (!other.destroyed && !(s.readableEnded && s.writableFinished)) other.destroy();
    });
  }
}

/** Dials `port` on loopback; the client is reset when nothing listens there. */
export function dialAndSplice(client: Socket, host: string, port: number, head?: Buffer): Socket {
  const upstream = connect({ host, port, allowHalfOpen: true, noDelay: true });
  if (head !== undefined && head.length > 0) upstream.write(head);
  splice(client, upstream);
  client.resume();
  return upstream;
}

/**
 * A wiretap's copy: bytes written here reach the session's door as long as it keeps up;
 * once more than COPY_LIMIT wait, or the door fails, the copy stops and counts one drop.
 * What the session answers is read and thrown away.
 */
export class Copy {
  private readonly socket: Socket;
  private dropped = false;

  constructor(
    port: number,
    private readonly onDrop: () => void,
  ) {
    this.socket = connect({ host: '127.0.0.1', port, allowHalfOpen: false, noDelay: true });
    this.socket.on('error', () => {
      this.drop();
    });
    this.socket.resume();
  }

  get stream(): Writable {
    return this.socket;
  }

  write(chunk: Buffer | string): void {
    if (this.dropped) return;
    if (this.socket.writableLength > COPY_LIMIT) {
      this.drop();
      return;
    }
    this.socket.write(chunk);
  }

  end(): void {
    if (!this.dropped) this.socket.end();
  }

  drop(): void {
    if (this.dropped) return;
    this.dropped = true;
    this.socket.destroy();
    this.onDrop();
  }
}
