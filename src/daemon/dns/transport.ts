import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { TpError, messageOf, systemErrorCode } from '../../lib/errors.js';
import { frame, unframe } from './upstream.js';

export type { UdpSocket };

// RFC 7766 lets a server close idle connections; resolvers reconnect when they need to.
const TCP_IDLE_MS = 10_000;

/**
 * Binds UDP and TCP on the same port. With port 0 the kernel picks the UDP port, and TCP may
 * find it taken by someone else: then both are released and another port is tried.
 */
export async function bindUdpAndTcp(
  host: string,
  port: number,
): Promise<{ udp: UdpSocket; tcp: Server; port: number }> {
  const attempts = port === 0 ? 20 : 1;
  for (let attempt = 1; ; attempt++) {
    const udp = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, host, () => {
          udp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      closeQuietly(udp);
      throw listenError(err, host, port);
    }
    const bound = udp.address().port;
    // allowHalfOpen: a client may shut down its side after its last query and still wait.
    const tcp = createServer({ allowHalfOpen: true });
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(bound, host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      return { udp, tcp, port: bound };
    } catch (err) {
      closeQuietly(udp);
      if (attempt < attempts && systemErrorCode(err) === 'EADDRINUSE') continue;
      throw listenError(err, host, bound);
    }
  }
}

function closeQuietly(udp: UdpSocket): void {
  try {
    udp.close();
  } catch {
    // Never bound: nothing to close.
  }
}

function listenError(err: unknown, host: string, port: number): TpError {
  const where = `${host}:${port}`;
  switch (systemErrorCode(err)) {
    case 'EADDRINUSE':
      return new TpError('unavailable', `DNS port ${where} is already in use`, {
        code: 'DNS_PORT_IN_USE',
        fix: 'Another DNS server listens in the daemon container: remove that container (docker rm -f) and run tp connect --docker again.',
        cause: err,
      });
    case 'EACCES':
      return new TpError('unavailable', `not allowed to listen on DNS port ${where}`, {
        code: 'DNS_PORT_DENIED',
        fix: 'Run the daemon as root or give it CAP_NET_BIND_SERVICE.',
        cause: err,
      });
    default:
      return new TpError('unavailable', `cannot listen on ${where}: ${messageOf(err)}`, {
        code: 'DNS_LISTEN_FAILED',
        fix: `Check that ${host} is an address of the daemon container.`,
        cause: err,
      });
  }
}

/**
 * Serves DNS over TCP on one connection: several queries, each answered as it completes (RFC
 * 7766 allows any order); after the client's FIN the connection stays open until the last
 * answer is written.
 */
export function serveTcp(
  socket: Socket,
  connections: Set<Socket>,
  answer: (query: Buffer) => Promise<Buffer | undefined>,
): void {
  connections.add(socket);
  socket.once('close', () => connections.delete(socket));
  socket.on('error', () => socket.destroy());
  socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
  let pending: Buffer = Buffer.alloc(0);
  let inFlight = 0;
  let ended = false;
  socket.on('data', (chunk: Buffer) => {
    const { messages, rest } = unframe(Buffer.concat([pending, chunk]));
    pending = rest;
    for (const msg of messages) {
      inFlight += 1;
      void answer(msg).then((response) => {
        inFlight -= 1;
        if (response !== undefined && socket.writable) socket.write(frame(response));
        if (ended && inFlight === 0) socket.end();
      });
    }
  });
  socket.once('end', () => {
    ended = true;
    if (inFlight === 0) socket.end();
  });
}
