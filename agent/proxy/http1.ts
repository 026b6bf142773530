/**
 * HTTP/1.x at a proxied port, request by request: each one goes to the session whose
 * intercept matches it or else to the app, so consecutive requests on one keep-alive
 * connection can go different ways. The app gets a connection of its own for each client
 * connection, as it would without the agent, and sees the client's headers as sent (names'
 * case and order, duplicates), its body as it streams, and its trailers; the client sees the
 * app's answer the same way. Upgrades (WebSocket, h2c) go whole to where their request goes.
 */
import {
  Agent,
  createServer,
  request,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import type { ActiveTap } from '../taps.js';
import { Copy, dialAndSplice } from './raw.js';
import { route, type RequestView } from './route.js';
import { HttpCopies } from './http-copy.js';

export interface Http1Deps {
  appHost: string;
  appPort: number;
  taps(): { intercepts: readonly ActiveTap[]; wiretaps: readonly ActiveTap[] };
  log(o: object): void;
}

/** The upstreams one client connection has used, each a connection of its own. */
class ConnectionState {
  private readonly agents = new Map<number, Agent>();

  agent(port: number): Agent {
    let a = this.agents.get(port);
    if (a === undefined) {
      a = new Agent({ keepAlive: true, maxSockets: 1 });
      this.agents.set(port, a);
    }
    return a;
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

const viewOf = (req: IncomingMessage): RequestView => ({
  path: req.url ?? '/',
  header: (name) => req.headers[name],
});

/** Raw header pairs, as Node's message.rawHeaders lists them, to `[name, value]` tuples. */
function pairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] ?? '', raw[i + 1] ?? '']);
  return out;
}

export function http1Server(deps: Http1Deps, copies: HttpCopies): Server {
  const states = new WeakMap<Socket, ConnectionState>();
  const stateOf = (socket: Socket): ConnectionState => {
    let s = states.get(socket);
    if (s === undefined) {
      const created = new ConnectionState();
      states.set(socket, created);
      socket.once('close', () => {
        created.close();
      });
      s = created;
    }
    return s;
  };

  const server = createServer({ requestTimeout: 0, keepAliveTimeout: 0 }, (req, res) => {
    const { intercept, wiretaps } = route(
      deps.taps().intercepts,
      deps.taps().wiretaps,
      viewOf(req),
    );
    const port = intercept?.door ?? deps.appPort;
    const host = intercept === undefined ? deps.appHost : '127.0.0.1';
    if (intercept !== undefined) intercept.stats.taken += 1;
    forward(
      req,
      res,
      { host, port, agent: stateOf(req.socket).agent(port) },
      copies.start(req, wiretaps),
    );
  });
  // The app decides how long a connection may idle and how long a request may take.
  server.headersTimeout = 0;
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const { intercept, wiretaps } = route(
      deps.taps().intercepts,
      deps.taps().wiretaps,
      viewOf(req),
    );
    if (intercept !== undefined) intercept.stats.taken += 1;
    const requestHead = headOf(req);
    for (const w of wiretaps) {
      const copy = new Copy(w.door, () => (w.stats.dropped += 1));
      w.stats.taken += 1;
      copy.write(requestHead);
      copy.write(head);
      socket.on('data', (d: Buffer) => {
        copy.write(d);
      });
      socket.once('end', () => {
        copy.end();
      });
    }
    dialAndSplice(
      socket,
      intercept === undefined ? deps.appHost : '127.0.0.1',
      intercept?.door ?? deps.appPort,
      Buffer.concat([requestHead, head]),
    );
  });
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    dialAndSplice(socket, deps.appHost, deps.appPort, Buffer.concat([headOf(req), head]));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // What Node's parser refuses, the app would likely refuse too; it is not sent on.
    deps.log({ msg: 'http: bad request from client', error: err.code ?? err.message });
    if (!socket.destroyed && socket.writable && err.code !== 'ECONNRESET') {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    } else {
      socket.destroy();
    }
  });
  return server;
}

/** The request line and headers, as the client sent them. */
function headOf(req: IncomingMessage): Buffer {
  let head = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
  for (const [k, v] of pairs(req.rawHeaders)) head += `${k}: ${v}\r\n`;
  return Buffer.from(`${head}\r\n`, 'latin1');
}

interface Upstream {
  host: string;
  port: number;
  agent: Agent;
}

function forward(
  req: IncomingMessage,
  res: ServerResponse,
  to: Upstream,
  copy: { write(d: Buffer): void; end(trailers: [string, string][]): void },
): void {
  res.sendDate = false;
  const up = request({
    host: to.host,
    port: to.port,
    method: req.method,
    path: req.url,
    headers: req.rawHeaders,
    agent: to.agent,
    setHost: false,
  });
  req.on('data', (d: Buffer) => {
    copy.write(d);
    if (!up.write(d)) req.pause();
  });
  up.on('drain', () => req.resume());
  req.once('end', () => {
    const trailers = pairs(req.rawTrailers);
    copy.end(trailers);
    if (trailers.length > 0) up.addTrailers(trailers);
    up.end();
  });
  // A client that leaves mid-request takes its request to the app with it.
  req.once('close', () => {
    if (!req.complete) up.destroy();
  });
  res.once('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  up.once('response', (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
    answer.on('data', (d: Buffer) => {
      if (!res.write(d)) answer.pause();
    });
    res.on('drain', () => answer.resume());
    answer.once('end', () => {
      const trailers = pairs(answer.rawTrailers);
      if (trailers.length > 0) res.addTrailers(trailers);
      res.end();
    });
    answer.once('error', () => res.destroy());
  });
  up.once('error', () => {
    // The app (or session) reset or refused: the client sees its connection go, as it would.
    if (res.headersSent) res.destroy();
    else req.socket.resetAndDestroy();
  });
}
