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
  connectionTokens,
  forwardBody,
  parseHead,
  keepsAlive,
  readHead,
  requestFraming,
  responseFraming,
  Pull,
  type Framing,
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

const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

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

/**
 * Connections to a wiretap's session door, reused copy after copy: each new one costs the
 * daemon a port-forward stream, so a connection a copy could not keep up with requests that
 * follow each other closely. With all of them busy, a copy is dropped.
 */
const MAX_COPY_CONNECTIONS = 8;
const COPY_TIMEOUT_MS = 60_000;

class CopyPool {
  private readonly idle: Upstream[] = [];
  private open = 0;

  constructor(private readonly door: number) {}

  take(): Upstream | undefined {
    for (let u = this.idle.pop(); u !== undefined; u = this.idle.pop()) {
      if (!u.socket.destroyed && !u.socket.readableEnded) return u;
    }
    if (this.open >= MAX_COPY_CONNECTIONS) return undefined;
    this.open += 1;
    const u = dial('127.0.0.1', this.door);
    u.socket.once('close', () => {
      this.open -= 1;
      const i = this.idle.indexOf(u);
      if (i >= 0) this.idle.splice(i, 1);
    });
    // An idle connection the session never closes goes after a while.
    u.socket.setTimeout(COPY_TIMEOUT_MS, () => {
      u.socket.destroy();
    });
    return u;
  }

  give(u: Upstream): void {
    if (!u.socket.destroyed) this.idle.push(u);
  }
}

const pools = new WeakMap<ActiveTap, CopyPool>();

/** One wiretap's copy of one request: sent raw, its answer read to its end and dropped. */
class CopyOut {
  private dropped = false;
  private finish: () => void = () => undefined;
  private readonly sent = new Promise<void>((resolve) => {
    this.finish = resolve;
  });
  private readonly onError = (): void => {
    this.drop();
  };

  constructor(
    private readonly tap: ActiveTap,
    private readonly up: Upstream,
    private readonly pool: CopyPool,
    head: Head,
  ) {
    tap.stats.taken += 1;
    up.socket.on('error', this.onError);
    this.write(copyHead(head));
    void this.drain(head);
  }

  write(chunk: Buffer): void {
    if (this.dropped) return;
    if (this.up.socket.writableLength > COPY_LIMIT) this.drop();
    else this.up.socket.write(chunk);
  }

  /** The request has been written whole. */
  end(): void {
    this.finish();
  }

  drop(): void {
    if (this.dropped) return;
    this.dropped = true;
    this.tap.stats.dropped += 1;
    this.up.socket.destroy();
    this.finish();
  }

  private async drain(request: Head): Promise<void> {
    try {
      for (;;) {
        const answer = await readHead(this.up.pull, 'response');
        if (answer === null) throw new WireError('the session closed the copy');
        const framing = responseFraming(answer, request.method);
        await forwardBody(this.up.pull, framing, () => Promise.resolve());
        if (answer.status < 200 && answer.status !== 101) continue;
        await this.sent;
        if (
          !this.dropped &&
          answer.status !== 101 &&
          keepsAlive(parseHead(copyHead(request), 'request'), answer, framing)
        ) {
          this.up.socket.off('error', this.onError);
          this.pool.give(this.up);
          return;
        }
        break;
      }
    } catch {
      // What the session answers is dropped anyway.
    }
    this.up.socket.destroy();
  }
}

/**
 * The head a copy is sent with: the request's, except that it keeps the connection open, so
 * that copies of requests whose clients close after each one still reuse the pool's
 * connections (a new one costs the daemon a port-forward stream). The session's answer is
 * thrown away, so nothing the client sees changes.
 */
function copyHead(head: Head): Buffer {
  const tokens = connectionTokens(head);
  if (!tokens.has('close') && (head.version === '1.1' || tokens.has('keep-alive'))) return head.raw;
  const lines = head.raw.toString('latin1').split('\r\n').slice(0, -2);
  const kept = lines.filter((l, i) => i === 0 || !/^connection\s*:/i.test(l));
  if (head.version === '1.0') kept.push('Connection: keep-alive');
  return Buffer.from(`${kept.join('\r\n')}\r\n\r\n`, 'latin1');
}

function copiesFor(wiretaps: readonly ActiveTap[], head: Head): CopyOut[] {
  const out: CopyOut[] = [];
  for (const w of wiretaps) {
    let pool = pools.get(w);
    if (pool === undefined) {
      pool = new CopyPool(w.door);
      pools.set(w, pool);
    }
    const up = pool.take();
    if (up === undefined) w.stats.dropped += 1;
    else out.push(new CopyOut(w, up, pool, head));
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
      let head: Head | null;
      let framing: Framing;
      try {
        head = await readHead(pull, 'request');
        if (head === null) break;
        framing = requestFraming(head);
      } catch (err) {
        // What the agent cannot frame, nothing after it could: the client is told so.
        if (err instanceof WireError && !client.destroyed) client.end(BAD_REQUEST);
        throw err;
      }
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
        for (const c of copies) c.end();
      })();
      sent.catch(() => undefined);
      let answer: Head | null;
      for (;;) {
        answer = await readHead(up.pull, 'response');
        if (answer === null) throw new WireError('the upstream closed without an answer');
        if (answer.status === 101) {
          await write(client, answer.raw);
          break;
        }
        const answerFraming = responseFraming(answer, head.method);
        // The head goes out with the body's first bytes, in one segment when they fit.
        const held: { head: Buffer | undefined } = { head: answer.raw };
        await forwardBody(up.pull, answerFraming, (chunk) => {
          const out = held.head === undefined ? chunk : Buffer.concat([held.head, chunk]);
          held.head = undefined;
          return write(client, out);
        });
        if (held.head !== undefined) await write(client, held.head);
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
    // A reset upstream: the client sees its connection go, as it would; a 400 is let out.
    if (!client.destroyed && !client.writableEnded) client.resetAndDestroy();
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
