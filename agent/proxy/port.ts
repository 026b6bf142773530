/**
 * A proxied port (intercept, wiretap): the Service sends its clients here, and each goes on
 * to the app unless a session takes it. With no tap at the port, or none that filters, the
 * connection is spliced whole and no byte is parsed. With filters, what it speaks decides:
 * the Service's appProtocol, then its port name, then the client's first bytes; HTTP/1.x
 * and HTTP/2 are routed request by request, anything else goes to the app.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { ProxyPort } from '../../src/contract/agent.js';
import type { ActiveTap } from '../taps.js';
import { serveHttp1 } from './http1.js';
import { http2Server } from './http2.js';
import { Copy, dialAndSplice } from './raw.js';
import { connectionLevel } from './route.js';
import { declaredProtocol } from '../../src/contract/app-protocol.js';

export interface ProxyDeps {
  /** Where the app listens: the pod's loopback. */
  appHost: string;
  /** Where the port listens: all interfaces in a pod. */
  host: string;
  taps(target: number): { intercepts: readonly ActiveTap[]; wiretaps: readonly ActiveTap[] };
  track(s: Socket): void;
  log(o: object): void;
  /** How long a client that says nothing is waited for before it goes to the app unparsed. */
  firstBytesMs?: number;
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');
const HTTP1_START = /^[A-Z]{1,20} [^\s]/;

export interface ProxyListener {
  readonly port: number;
  close(): Promise<void>;
}

export async function listenProxy(p: ProxyPort, deps: ProxyDeps): Promise<ProxyListener> {
  const taps = (): ReturnType<ProxyDeps['taps']> => deps.taps(p.target);
  const common = {
    appHost: deps.appHost,
    appPort: p.target,
    taps,
    log: (o: object) => {
      deps.log(o);
    },
  };
  const h2 = http2Server(common);
  const declared = declaredProtocol(p.appProtocol);

  const whole = (client: Socket, head?: Buffer): void => {
    const { intercepts, wiretaps } = taps();
    const intercept = intercepts.find((t) => t.filter === undefined);
    if (intercept !== undefined) intercept.stats.taken += 1;
    for (const w of wiretaps.filter((t) => t.filter === undefined)) copyWhole(client, w, head);
    if (intercept === undefined) dialAndSplice(client, deps.appHost, p.target, head);
    else dialAndSplice(client, '127.0.0.1', intercept.door, head);
  };

  const server: Server = createServer(
    { allowHalfOpen: true, noDelay: true, pauseOnConnect: true },
    (client) => {
      deps.track(client);
      client.on('error', () => undefined);
      const { intercepts, wiretaps } = taps();
      const all = [...intercepts, ...wiretaps];
      if (all.length === 0) {
        dialAndSplice(client, deps.appHost, p.target);
        return;
      }
      if (connectionLevel(all) || declared === 'tcp') {
        whole(client);
        return;
      }
      // Most requests go to the app: its connection is opened while the client's first bytes
      // are on their way, as a client of the app alone would have it open by then.
      const early = connect({
        host: deps.appHost,
        port: p.target,
        noDelay: true,
        allowHalfOpen: true,
      });
      early.on('error', () => undefined);
      const timer = setTimeout(() => {
        client.off('readable', first);
        early.destroy();
        whole(client);
      }, deps.firstBytesMs ?? 500);
      const first = (): void => {
        const chunk = client.read() as Buffer | null;
        if (chunk === null) {
          client.once('readable', first);
          return;
        }
        clearTimeout(timer);
        // The parsers read the connection from its first byte.
        client.unshift(chunk);
        // The HTTP/2 preface first: it reads as an HTTP/1 request line too (`PRI * HTTP/2.0`).
        if (startsWith(chunk, H2_PREFACE)) {
          early.destroy();
          h2.emit('connection', client);
        } else if (HTTP1_START.test(chunk.subarray(0, 32).toString('latin1'))) {
          void serveHttp1(client, common, early);
        } else {
          early.destroy();
          whole(client);
        }
      };
      client.once('readable', first);
      client.once('end', () => {
        clearTimeout(timer);
      });
      client.once('close', () => {
        clearTimeout(timer);
      });
    },
  );

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(p.listen, deps.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise((resolve) => {
        h2.close();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** A prefix of the preface is enough to decide: a client sends it whole, but maybe in parts. */
function startsWith(chunk: Buffer, preface: Buffer): boolean {
  const n = Math.min(chunk.length, preface.length);
  return n >= 3 && chunk.subarray(0, n).equals(preface.subarray(0, n));
}

/** A wiretap of a whole connection: the client's bytes, copied as they pass. */
function copyWhole(client: Socket, w: ActiveTap, head?: Buffer): void {
  const copy = new Copy(w.door, () => (w.stats.dropped += 1));
  w.stats.taken += 1;
  if (head !== undefined) copy.write(head);
  client.on('data', (d: Buffer) => {
    copy.write(d);
  });
  client.once('end', () => {
    copy.end();
  });
  client.once('close', () => {
    copy.end();
  });
}
