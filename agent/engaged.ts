/**
 * The engaged ports: the agent listens where the app did and hands each client to an
 * `accept` stream the daemon keeps waiting, so a client pays for no port-forward set-up.
 * A client that finds no stream waiting is held briefly (the daemon refills as streams are
 * used), then reset, as a client of a stopped app would be.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import type { AgentPort, AgentReply } from '../src/contract/agent.js';
import { DatagramTunnel, spliceStream } from '../src/tunnel/frames.js';
import { encodeLine } from '../src/tunnel/protocol.js';

interface Waiter {
  take(stream: Socket): void;
  expire(): void;
}

/** Accept streams and clients, each waiting for the other, oldest first. */
export class AcceptQueue {
  private readonly streams: Socket[] = [];
  private readonly waiters = new Map<Waiter, NodeJS.Timeout>();
  private readonly unwatch = new Map<Socket, () => void>();

  constructor(private readonly waitMs: number) {}

  get waiting(): number {
    return this.streams.length;
  }

  /** An accept stream whose request has been read. */
  offer(stream: Socket): void {
    const oldest = this.waiters.keys().next();
    if (!oldest.done) {
      this.handOver(stream, oldest.value);
      return;
    }
    // The daemon sends nothing before the conn reply; reading keeps its FIN (the daemon
    // gone, or a port-forward closed) from going unseen while the stream waits.
    const drop = (): void => {
      this.forget(stream);
      stream.destroy();
    };
    stream.on('data', drop);
    stream.once('end', drop);
    stream.once('close', drop);
    this.unwatch.set(stream, () => {
      stream.pause();
      stream.off('data', drop);
      stream.off('end', drop);
      stream.off('close', drop);
    });
    this.streams.push(stream);
  }

  /** A client for the next stream; returns a cancel for a client that leaves first. */
  claim(waiter: Waiter): () => void {
    const stream = this.takeStream();
    if (stream !== undefined) {
      this.handOver(stream, waiter);
      return () => undefined;
    }
    this.waiters.set(
      waiter,
      setTimeout(() => {
        this.waiters.delete(waiter);
        waiter.expire();
      }, this.waitMs),
    );
    return () => {
      clearTimeout(this.waiters.get(waiter));
      this.waiters.delete(waiter);
    };
  }

  close(): void {
    for (const s of this.streams) s.destroy();
    this.streams.length = 0;
    for (const [w, timer] of this.waiters) {
      clearTimeout(timer);
      w.expire();
    }
    this.waiters.clear();
  }

  private takeStream(): Socket | undefined {
    for (let s = this.streams.shift(); s !== undefined; s = this.streams.shift()) {
      this.unwatch.get(s)?.();
      this.unwatch.delete(s);
      if (!s.destroyed && s.writable) return s;
      s.destroy();
    }
    return undefined;
  }

  private handOver(stream: Socket, waiter: Waiter): void {
    clearTimeout(this.waiters.get(waiter));
    this.waiters.delete(waiter);
    waiter.take(stream);
    // The frames carry the connection's own FIN; the stream's end without one is the daemon
    // gone (a port-forward cannot half-close), which this half-open socket would not show.
    stream.once('end', () => stream.destroy());
    // Paused while unwatched; the splice has its listeners now.
    stream.resume();
  }

  private forget(stream: Socket): void {
    const i = this.streams.indexOf(stream);
    if (i >= 0) this.streams.splice(i, 1);
    this.unwatch.delete(stream);
  }
}

export interface EngagedOptions {
  host: string;
  queue: AcceptQueue;
  udpIdleMs: number;
  /** Every socket that must go when the agent stops. */
  track(s: Socket): void;
  log(o: object): void;
}

const addressOf = (address: string | undefined, port: number | undefined): string =>
  address?.includes(':') === true ? `[${address}]:${port ?? 0}` : `${address ?? ''}:${port ?? 0}`;

const connReply = (p: AgentPort, src: string): Buffer => {
  const reply: AgentReply = { ok: true, conn: { port: p.port, protocol: p.protocol, src } };
  return encodeLine(reply);
};

function reset(client: Socket): void {
  if (!client.destroyed) client.resetAndDestroy();
}

export interface Listener {
  /** The port it listens on: `p.port`, or the one the system chose for `bindPort` 0. */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Clients of `p` handed to the queue's streams. `bindPort` listens elsewhere while the conn
 * reply still names `p.port`: a session's loopback door at a proxied port (agent/taps.ts).
 */
export async function listenTcp(
  p: AgentPort,
  opts: EngagedOptions,
  bindPort = p.port,
): Promise<Listener> {
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    opts.track(client);
    const src = addressOf(client.remoteAddress, client.remotePort);
    const cancel = opts.queue.claim({
      take: (stream) => {
        stream.write(connReply(p, src));
        void spliceStream(client, stream);
      },
      expire: () => {
        opts.log({ msg: 'no accept stream waiting: client reset', port: p.port, src });
        reset(client);
      },
    });
    // Until a stream takes it, a client that resets just leaves the queue (a no-op after).
    client.on('error', () => undefined);
    client.once('close', cancel);
  });
  await listen(server, bindPort, opts.host);
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : bindPort,
    close: () =>
      new Promise((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  };
}

/** One accept stream per client address, as the netstack keeps one flow per 4-tuple. */
export async function listenUdp(p: AgentPort, opts: EngagedOptions): Promise<Listener> {
  const sock: UdpSocket = createSocket('udp4');
  const flows = new Map<string, UdpFlow>();
  sock.on('message', (d, rinfo) => {
    const key = addressOf(rinfo.address, rinfo.port);
    let flow = flows.get(key);
    if (flow === undefined) {
      const created = new UdpFlow(sock, rinfo, opts.udpIdleMs, () => flows.delete(key));
      flows.set(key, created);
      created.cancel = opts.queue.claim({
        take: (stream) => {
          stream.write(connReply(p, key));
          created.connect(stream);
        },
        expire: () => {
          opts.log({ msg: 'no accept stream waiting: datagrams dropped', port: p.port, src: key });
          created.close();
        },
      });
      flow = created;
    }
    flow.deliver(d);
  });
  // A send to a client that has gone answers with an ICMP error: nothing to do about it.
  sock.on('error', (err) => {
    opts.log({ msg: 'udp error', port: p.port, error: err.message });
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(p.port, opts.host, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  return {
    port: p.port,
    close: () =>
      new Promise((resolve) => {
        for (const f of [...flows.values()]) f.close();
        sock.close(() => {
          resolve();
        });
      }),
  };
}

/** A client's datagrams, held while no stream has taken them yet. */
class UdpFlow {
  private static readonly maxHeld = 64;
  private tunnel: DatagramTunnel | undefined;
  private held: Buffer[] = [];
  private idle: NodeJS.Timeout | undefined;
  private closed = false;
  cancel: () => void = () => undefined;

  constructor(
    private readonly sock: UdpSocket,
    private readonly peer: RemoteInfo,
    private readonly idleMs: number,
    private readonly onClose: () => void,
  ) {}

  deliver(d: Buffer): void {
    this.touch();
    if (this.tunnel !== undefined) this.tunnel.send(d);
    else if (this.held.length < UdpFlow.maxHeld) this.held.push(d);
  }

  connect(stream: Socket): void {
    if (this.closed) {
      stream.destroy();
      return;
    }
    const tunnel = new DatagramTunnel(stream);
    this.tunnel = tunnel;
    for (const d of this.held) tunnel.send(d);
    this.held = [];
    tunnel.on('datagram', (d) => {
      this.touch();
      this.sock.send(d, this.peer.port, this.peer.address);
    });
    tunnel.once('close', () => {
      this.close();
    });
    this.touch();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idle);
    this.cancel();
    this.tunnel?.close();
    this.onClose();
  }

  private touch(): void {
    clearTimeout(this.idle);
    if (!this.closed) {
      this.idle = setTimeout(() => {
        this.close();
      }, this.idleMs);
    }
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
