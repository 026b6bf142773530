/**
 * HTTP/1.x at a proxied port, request by request: each request goes to the session whose
 * intercept matches it or else to the app, so consecutive requests on one keep-alive
 * connection can go different ways. The bytes pass unchanged (request line, headers in
 * their case and order, bodies chunked or not, trailers, interim answers such as
 * `100 Continue`); only where each message ends is read (http1-wire.ts). The app gets a
 * connection of its own for each client connection, as it would without the agent. An
 * upgrade (WebSocket, h2c) that the upstream accepts turns the connection into a splice.
 */
import { connect, type Socket } from 'node:net';
import type { ActiveTap } from '../taps.js';
import {
  WireError,
  forwardBody,
  keepsAlive,
  readHead,
  requestFraming,
  responseFraming,
  Pull,
  type Head,
} from './http1-wire.js';
import { COPY_LIMIT, splice } from './raw.js';
import { route, type RequestView } from './route.js';

export interface Http1Deps {
  appHost: string;
  appPort: number;
  taps(): { intercepts: readonly ActiveTap[]; wiretaps: readonly ActiveTap[] };
  log(o: object): void;
}

/** Copies a wiretap's session may have in flight before more are dropped. */
const MAX_COPIES = 64;
const COPY_TIMEOUT_MS = 60_000;

interface Upstream {
  socket: Socket;
  pull: Pull;
}

const viewOf = (head: Head): RequestView => ({
  path: head.target,
  header: (name) => {
    const values = head.headers.filter(([n]) => n === name).map(([, v]) => v);
    return values.length <= 1 ? values[0] : values;
  },
});

function write(socket: Socket, chunk: Buffer): Promise<void> {
  if (socket.destroyed) return Promise.reject(new WireError('the peer has gone'));
  if (socket.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', gone);
      resolve();
    };
    const gone = (): void => {
      socket.off('drain', done);
      reject(new WireError('the peer has gone'));
    };
    socket.once('drain', done);
    socket.once('close', gone);
  });
}

function dial(host: string, port: number): Upstream {
  const socket = connect({ host, port, noDelay: true, allowHalfOpen: true });
  socket.on('error', () => undefined);
  return { socket, pull: new Pull(socket) };
}

/** In-flight copies per wiretap, across connections. */
const inFlight = new WeakMap<ActiveTap, number>();

/** One wiretap's copy of one request: sent raw, its answer read to its end and dropped. */
class CopyOut {
  private readonly up: Upstream;
  private dropped = false;

  constructor(
    private readonly tap: ActiveTap,
    head: Head,
  ) {
    tap.stats.taken += 1;
    inFlight.set(tap, (inFlight.get(tap) ?? 0) + 1);
    this.up = dial('127.0.0.1', tap.door);
    this.up.socket.once('close', () => {
      inFlight.set(tap, (inFlight.get(tap) ?? 1) - 1);
    });
    this.up.socket.once('error', () => {
      this.drop();
    });
    this.up.socket.setTimeout(COPY_TIMEOUT_MS, () => {
      this.up.socket.destroy();
    });
    this.write(head.raw);
    void this.drain(head.method);
  }

  write(chunk: Buffer): void {
    if (this.dropped) return;
    if (this.up.socket.writableLength > COPY_LIMIT) this.drop();
    else this.up.socket.write(chunk);
  }

  drop(): void {
    if (this.dropped) return;
    this.dropped = true;
    this.tap.stats.dropped += 1;
    this.up.socket.destroy();
  }

  private async drain(method: string): Promise<void> {
    try {
      for (;;) {
        const answer = await readHead(this.up.pull, 'response');
        if (answer === null) break;
        await forwardBody(this.up.pull, responseFraming(answer, method), () => Promise.resolve());
        if (answer.status >= 200 || answer.status === 101) break;
      }
    } catch {
      // What the session answers is dropped anyway.
    }
    this.up.socket.destroy();
  }
}

function copiesFor(wiretaps: readonly ActiveTap[], head: Head): CopyOut[] {
  const out: CopyOut[] = [];
  for (const w of wiretaps) {
    if ((inFlight.get(w) ?? 0) >= MAX_COPIES) w.stats.dropped += 1;
    else out.push(new CopyOut(w, head));
  }
  return out;
}

/**
 * Serves one client connection, from its first byte. `early` is a connection to the app
 * opened as the client's arrived, used for the first request that goes there.
 */
export async function serveHttp1(client: Socket, deps: Http1Deps, early?: Socket): Promise<void> {
  const pull = new Pull(client);
  const upstreams = new Map<string, Upstream>();
  if (early !== undefined)
    upstreams.set(`${deps.appHost}:${deps.appPort}`, { socket: early, pull: new Pull(early) });
  const upstream = (host: string, port: number): Upstream => {
    const key = `${host}:${port}`;
    let up = upstreams.get(key);
    if (up === undefined || up.socket.destroyed || up.socket.readableEnded) {
      up?.socket.destroy();
      up = dial(host, port);
      upstreams.set(key, up);
    }
    return up;
  };
  client.once('close', () => {
    for (const u of upstreams.values()) u.socket.destroy();
  });
  try {
    for (;;) {
      const head = await readHead(pull, 'request').catch((err: unknown) => {
        if (err instanceof WireError && !client.destroyed)
          client.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        throw err;
      });
      if (head === null) break;
      const framing = requestFraming(head);
      const { intercepts, wiretaps } = deps.taps();
      const { intercept, wiretaps: copying } = route(intercepts, wiretaps, viewOf(head));
      if (intercept !== undefined) intercept.stats.taken += 1;
      const up =
        intercept === undefined
          ? upstream(deps.appHost, deps.appPort)
          : upstream('127.0.0.1', intercept.door);
      const copies = copiesFor(copying, head);
      if (head.method === 'CONNECT') {
        await write(up.socket, head.raw);
        for (const c of copies) c.drop();
        spliceRest(client, pull, up);
        return;
      }
      // The request goes on while the answer comes back: a 100 Continue needs both at once.
      const sent = (async () => {
        await write(up.socket, head.raw);
        await forwardBody(pull, framing, async (chunk) => {
          for (const c of copies) c.write(chunk);
          await write(up.socket, chunk);
        });
      })();
      sent.catch(() => undefined);
      let answer: Head | null;
      for (;;) {
        answer = await readHead(up.pull, 'response');
        if (answer === null) throw new WireError('the upstream closed without an answer');
        await write(client, answer.raw);
        if (answer.status === 101) break;
        const answerFraming = responseFraming(answer, head.method);
        await forwardBody(up.pull, answerFraming, (chunk) => write(client, chunk));
        if (answer.status >= 200) {
          await sent;
          if (!keepsAlive(head, answer, answerFraming)) {
            client.end();
            return;
          }
          break;
        }
      }
      if (answer.status === 101) {
        // Switched protocols (WebSocket, h2c): bytes both ways from here, unread.
        spliceRest(client, pull, up);
        return;
      }
    }
    client.end();
  } catch (err) {
    if (!(err instanceof WireError)) deps.log({ msg: 'http: proxy failed', error: String(err) });
    // A reset or a malformed message: the client sees its connection go, as it would.
    if (!client.destroyed) client.resetAndDestroy();
  }
}

/** Hands both sockets to a splice, with what each side sent already passed on first. */
function spliceRest(client: Socket, pull: Pull, up: Upstream): void {
  pull.detach();
  up.pull.detach();
  for (const chunk of pull.takeAll()) up.socket.write(chunk);
  for (const chunk of up.pull.takeAll()) client.write(chunk);
  splice(client, up.socket);
  client.resume();
  up.socket.resume();
}
