/**
 * One port-forward stream as a Node Duplex, over the API server's WebSocket endpoint
 * (v4.channel.k8s.io). Each stream is its own WebSocket, its own TCP connection to the API
 * server and its own connection into the pod, so flows never queue behind one another and
 * each gets a full TCP window: the point of tp's tunnel.
 *
 * Framing of v4.channel.k8s.io: every binary message starts with a channel byte (0 data,
 * 1 error for the first port); the first two bytes the server sends on each channel are the
 * port number, little-endian.
 */
import { Duplex } from 'node:stream';
import WebSocket from 'ws';
import type { KubeTransport } from './transport.js';

const DATA = 0;
const ERROR = 1;
const CHANNEL_DATA = Buffer.of(DATA);

export interface PortForwardTarget {
  namespace: string;
  pod: string;
  port: number;
}

export class PortForwardError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

class PortForwardStream extends Duplex {
  private prefixLeft = [2, 2];
  private errorText = '';

  constructor(private readonly ws: WebSocket) {
    super({ allowHalfOpen: false });
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary || data.length === 0) return;
      const channel = data[0];
      let payload = data.subarray(1);
      if (channel !== DATA && channel !== ERROR) return;
      const skip = Math.min(this.prefixLeft[channel] ?? 0, payload.length);
      if (skip > 0) {
        this.prefixLeft[channel] = (this.prefixLeft[channel] ?? 0) - skip;
        payload = payload.subarray(skip);
      }
      if (payload.length === 0) return;
      if (channel === ERROR) {
        this.errorText += payload.toString('utf8');
        return;
      }
      if (!this.push(payload)) ws.pause();
    });
    ws.once('close', () => {
      if (this.errorText !== '') this.destroy(new PortForwardError(this.errorText.trim()));
      else this.push(null);
    });
    ws.on('error', (err) => this.destroy(err));
  }

  override _read(): void {
    this.ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.send([chunk], cb);
  }

  /** Corked writes (a frame header and its payload) become one message, copied once. */
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.send(
      chunks.map((c) => c.chunk),
      cb,
    );
  }

  private send(parts: Buffer[], cb: (err?: Error | null) => void): void {
    this.ws.send(Buffer.concat([CHANNEL_DATA, ...parts]), { binary: true }, (err) => {
      cb(err ?? null);
    });
  }

  override _final(cb: (err?: Error | null) => void): void {
    // The protocol has no half-close: ending our side ends the stream.
    this.ws.close(1000);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.terminate();
    }
    cb(err);
  }
}

/** Opens the stream; resolves once the API server has upgraded the connection. */
export function openPortForward(
  t: KubeTransport,
  target: PortForwardTarget,
  timeoutMs = 10_000,
): Promise<Duplex> {
  const url = new URL(
    `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}/portforward?ports=${target.port}`,
    t.server,
  );
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['v4.channel.k8s.io'], {
      ...t.tls,
      headers: t.headers,
      handshakeTimeout: timeoutMs,
      perMessageDeflate: false,
    });
    ws.binaryType = 'nodebuffer';
    const onError = (err: Error): void => {
      ws.off('unexpected-response', onResponse);
      reject(err);
    };
    const onResponse = (_req: unknown, res: { statusCode?: number; resume(): void }): void => {
      ws.off('error', onError);
      res.resume();
      // terminate() on a socket still connecting emits an error that nobody else awaits.
      ws.on('error', () => undefined);
      ws.terminate();
      reject(
        new PortForwardError(
          `the API server answered HTTP ${res.statusCode ?? 0} to a port-forward to ${target.namespace}/${target.pod}`,
          res.statusCode,
        ),
      );
    };
    ws.once('error', onError);
    ws.once('unexpected-response', onResponse);
    ws.once('open', () => {
      ws.off('error', onError);
      ws.off('unexpected-response', onResponse);
      const socket = (ws as unknown as { _socket?: { setNoDelay?(v: boolean): void } })._socket;
      socket?.setNoDelay?.(true);
      resolve(new PortForwardStream(ws));
    });
  });
}
