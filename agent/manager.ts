/**
 * tp-manager: dials destinations in the cluster for daemons, and hears their heartbeats (the
 * reaper, reaper.ts, restores what a silent session engages). It listens on the pod's loopback
 * only, so nothing in the cluster can use it as an open proxy: the one way in is a
 * port-forward through the Kubernetes API, which RBAC already guards.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer, isIP, connect, type Socket } from 'node:net';
import { clientVersion } from '../src/lib/package-info.js';
import {
  TUNNEL_VERSION,
  encodeLine,
  parseRequest,
  readLine,
  type DialFailure,
  type DialRequest,
  type HeartbeatRequest,
  type ManagerInfo,
} from '../src/tunnel/protocol.js';
import { DatagramTunnel, spliceStream } from '../src/tunnel/frames.js';

export interface ManagerOptions {
  port: number;
  host?: string;
  dialTimeoutMs?: number;
  udpIdleMs?: number;
  /** A pre-opened stream may wait this long for its request before it is dropped. */
  requestWaitMs?: number;
  log?: (o: object) => void;
  /** Called for each heartbeat a daemon sends. */
  onHeartbeat?: (req: HeartbeatRequest) => void;
}

export function failureOf(err: unknown): DialFailure {
  const code = (err as { code?: unknown }).code;
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ETIMEDOUT') return 'timeout';
  return 'unreachable';
}

export function readManagerInfo(resolvConf = '/etc/resolv.conf'): ManagerInfo {
  let text = '';
  try {
    text = readFileSync(resolvConf, 'utf8');
  } catch {
    // no resolver: report none
  }
  const nameservers: string[] = [];
  const search: string[] = [];
  for (const line of text.split('\n')) {
    const [key, ...values] = line.trim().split(/\s+/);
    if (key === 'nameserver' && values[0] !== undefined) nameservers.push(values[0]);
    if (key === 'search') search.push(...values);
  }
  // The kubelet writes "<ns>.svc.<domain> svc.<domain> <domain>" first; the last of those
  // three is the cluster domain.
  const svcEntry = search.find((s) => s.startsWith('svc.'));
  return {
    ok: true,
    version: clientVersion(),
    tunnel: TUNNEL_VERSION,
    namespace: process.env.TP_POD_NAMESPACE ?? '',
    podIP: process.env.TP_POD_IP ?? '',
    nameservers,
    search,
    clusterDomain: svcEntry === undefined ? 'cluster.local' : svcEntry.slice(4),
  };
}

export async function startManager(
  opts: ManagerOptions,
): Promise<{ port: number; stop(): Promise<void> }> {
  const dialTimeoutMs = opts.dialTimeoutMs ?? 5000;
  const udpIdleMs = opts.udpIdleMs ?? 60_000;
  const requestWaitMs = opts.requestWaitMs ?? 15 * 60_000;
  const log = opts.log ?? (() => undefined);
  const open = new Set<Socket>();
  const stats = { streams: 0, tcp: 0, udp: 0, failed: 0, heartbeats: 0 };

  const dialTcp = (stream: Socket, req: DialRequest): void => {
    const target = connect({ host: req.host, port: req.port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      target.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
    }, dialTimeoutMs);
    let connected = false;
    target.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      target.setNoDelay(true);
      stats.tcp += 1;
      stream.write(encodeLine({ ok: true }));
      void spliceStream(target, stream);
    });
    target.once('error', (err) => {
      clearTimeout(timer);
      if (!connected) {
        stats.failed += 1;
        stream.end(encodeLine({ ok: false, error: failureOf(err), message: err.message }));
      }
    });
  };

  const dialUdp = (stream: Socket, req: DialRequest): void => {
    const family = isIP(req.host) === 6 ? 'udp6' : 'udp4';
    const sock: UdpSocket = createSocket(family);
    let idle: NodeJS.Timeout | undefined;
    const touch = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => tunnel?.close(), udpIdleMs);
    };
    let tunnel: DatagramTunnel | undefined;
    sock.once('error', (err) => {
      if (tunnel === undefined) {
        stats.failed += 1;
        stream.end(encodeLine({ ok: false, error: failureOf(err), message: err.message }));
      } else {
        tunnel.close();
      }
    });
    sock.connect(req.port, req.host, () => {
      stats.udp += 1;
      stream.write(encodeLine({ ok: true }));
      tunnel = new DatagramTunnel(stream);
      touch();
      tunnel.on('datagram', (d) => {
        touch();
        sock.send(d);
      });
      sock.on('message', (d) => {
        touch();
        tunnel?.send(d);
      });
      tunnel.once('close', () => {
        clearTimeout(idle);
        sock.close();
      });
    });
  };

  const server = createServer({ allowHalfOpen: true, noDelay: true }, (stream) => {
    open.add(stream);
    stats.streams += 1;
    stream.once('close', () => open.delete(stream));
    stream.on('error', () => stream.destroy());
    stream.setTimeout(requestWaitMs, () => stream.destroy());
    readLine(stream)
      .then((line) => {
        stream.setTimeout(0);
        let req;
        try {
          req = parseRequest(line);
        } catch (err) {
          stream.end(encodeLine({ ok: false, error: 'bad-request', message: String(err) }));
          return;
        }
        if (req.op === 'info') {
          stream.end(encodeLine({ ...readManagerInfo(), stats }));
        } else if (req.op === 'heartbeat') {
          stats.heartbeats += 1;
          opts.onHeartbeat?.(req);
          stream.end(encodeLine({ ok: true }));
        } else if (req.proto === 'tcp') {
          dialTcp(stream, req);
        } else {
          dialUdp(stream, req);
        }
      })
      .catch(() => stream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.port;
  log({ msg: 'tp-manager listening', port });
  let stopped: Promise<void> | undefined;
  return {
    port,
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => {
          resolve();
        });
      })),
  };
}
