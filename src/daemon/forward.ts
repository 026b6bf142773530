/**
 * The `forward` role of the daemon image: the helper that publishes a `--docker-run`
 * container's `-p` ports (src/docker/publish.ts). Docker cannot publish ports of a container
 * that shares another's network namespace, so this one, on the session network, takes the
 * published ports and relays each connection (TCP) or each client's datagrams (UDP) to the
 * daemon's address there, where the joined container listens.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';

export type ForwardProtocol = 'tcp' | 'udp';

export interface ForwardPort {
  /** The port to listen on; 0 takes a free one (tests). */
  listen: number;
  /** The port on the target. */
  port: number;
  protocol: ForwardProtocol;
}

export interface ForwardOptions {
  /** Where connections go: the daemon's address on the session network. */
  target: string;
  ports: ForwardPort[];
  /** Where the ports listen; every interface unless told. */
  listenHost?: string;
  /** A UDP client silent this long loses its relay socket. */
  udpIdleMs?: number;
}

export interface Forwarder extends AsyncDisposable {
  /** The ports listened on, in the order given. */
  readonly bound: { listen: number; port: number; protocol: ForwardProtocol }[];
  stop(): Promise<void>;
}

/** `forward TARGET PORT/PROTO...`, the helper container's command. */
export function parseForwardArgs(args: readonly string[]): ForwardOptions {
  const [target, ...specs] = args;
  if (target === undefined || target === '' || specs.length === 0)
    throw new Error('usage: forward TARGET PORT/tcp|udp...');
  const ports = specs.map((s): ForwardPort => {
    const m = /^(\d+)\/(tcp|udp)$/.exec(s);
    const port = Number(m?.[1]);
    const protocol = m?.[2];
    if (protocol !== 'tcp' && protocol !== 'udp') throw new Error(`bad port ${s}`);
    if (!(port > 0 && port < 65536)) throw new Error(`bad port ${s}`);
    return { listen: port, port, protocol };
  });
  return { target, ports };
}

export async function startForwarder(opts: ForwardOptions): Promise<Forwarder> {
  const host = opts.listenHost ?? '0.0.0.0';
  const closers: (() => Promise<void>)[] = [];
  const bound: Forwarder['bound'] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= Promise.all(closers.map((c) => c())).then(() => undefined));
  try {
    for (const p of opts.ports) {
      const relay =
        p.protocol === 'tcp'
          ? await relayTcp(host, p.listen, opts.target, p.port)
          : await relayUdp(host, p.listen, opts.target, p.port, opts.udpIdleMs ?? 60_000);
      closers.push(relay.close);
      bound.push({ listen: relay.port, port: p.port, protocol: p.protocol });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { bound, stop, [Symbol.asyncDispose]: stop };
}

interface Relay {
  port: number;
  close: () => Promise<void>;
}

function relayTcp(host: string, listen: number, target: string, port: number): Promise<Relay> {
  const open = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const upstream = connect({ host: target, port, allowHalfOpen: true, noDelay: true });
    for (const s of [client, upstream]) {
      open.add(s);
      s.once('close', () => open.delete(s));
    }
    // Each side's end is passed on, so a half-closed request still gets its answer.
    client.pipe(upstream);
    upstream.pipe(client);
    // A refusal or reset on one side is a reset on the other, as a direct connection would see.
    upstream.once('error', () => {
      if (!client.destroyed) client.resetAndDestroy();
    });
    client.once('error', () => {
      if (!upstream.destroyed) upstream.resetAndDestroy();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr !== null ? addr.port : listen,
        close: () =>
          new Promise<void>((done) => {
            for (const s of open) s.destroy();
            server.close(() => {
              done();
            });
          }),
      });
    });
  });
}

/** One relay socket per client address, so each client's answers find their way back. */
function relayUdp(
  host: string,
  listen: number,
  target: string,
  port: number,
  idleMs: number,
): Promise<Relay> {
  const front: UdpSocket = createSocket('udp4');
  const clients = new Map<string, { socket: UdpSocket; timer: NodeJS.Timeout }>();
  const drop = (key: string): void => {
    const c = clients.get(key);
    if (c === undefined) return;
    clients.delete(key);
    clearTimeout(c.timer);
    c.socket.close();
  };
  const clientFor = (from: RemoteInfo): UdpSocket => {
    const key = `${from.address}:${String(from.port)}`;
    const found = clients.get(key);
    if (found !== undefined) {
      found.timer.refresh();
      return found.socket;
    }
    const socket = createSocket('udp4');
    socket.on('message', (msg, src) => {
      // Only the target's answers go back: the socket's port is not the client's to share.
      if (src.address !== target || src.port !== port) return;
      clients.get(key)?.timer.refresh();
      front.send(msg, from.port, from.address);
    });
    socket.on('error', () => {
      drop(key);
    });
    clients.set(key, {
      socket,
      timer: setTimeout(() => {
        drop(key);
      }, idleMs),
    });
    return socket;
  };
  front.on('message', (msg, from) => {
    clientFor(from).send(msg, port, target);
  });
  front.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    front.once('error', reject);
    front.bind(listen, host, () => {
      front.off('error', reject);
      resolve({
        port: front.address().port,
        close: () =>
          new Promise<void>((done) => {
            for (const key of [...clients.keys()]) drop(key);
            front.close(() => {
              done();
            });
          }),
      });
    });
  });
}
