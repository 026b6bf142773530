/**
 * Cleartext HTTP/2 (prior knowledge, as gRPC speaks it) at a proxied port, stream by stream:
 * each request goes to the session whose intercept matches it, else to the app, over an
 * HTTP/2 connection of the client connection's own to each. Headers, body, trailers and
 * the end of each stream pass as they come, so gRPC's streaming and status trailers
 * (including trailers-only answers) reach either side unchanged.
 */
import {
  connect,
  constants,
  createServer,
  type ClientHttp2Session,
  type Http2Server,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { ActiveTap } from '../taps.js';
import { COPY_LIMIT } from './raw.js';
import { route } from './route.js';

export interface Http2Deps {
  appHost: string;
  appPort: number;
  taps(): { intercepts: readonly ActiveTap[]; wiretaps: readonly ActiveTap[] };
  log(o: object): void;
}

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = constants;

/** The request's headers for an upstream: all but the pseudo-headers Node sets itself. */
function requestHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = v;
  return out;
}

function responseHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) {
    if (v !== undefined && (k === ':status' || !k.startsWith(':'))) out[k] = v;
  }
  return out;
}

function trailersOf(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !k.startsWith(':')) out[k] = v;
  return out;
}

/** The upstream sessions of one client connection. */
class Upstreams {
  private readonly sessions = new Map<string, ClientHttp2Session>();

  get(host: string, port: number): ClientHttp2Session {
    const key = `${host}:${port}`;
    let s = this.sessions.get(key);
    if (s === undefined || s.closed || s.destroyed) {
      const created = connect(`http://${host.includes(':') ? `[${host}]` : host}:${port}`);
      created.on('error', () => undefined);
      created.once('close', () => {
        if (this.sessions.get(key) === created) this.sessions.delete(key);
      });
      this.sessions.set(key, created);
      s = created;
    }
    return s;
  }

  close(): void {
    for (const s of this.sessions.values()) s.destroy();
    this.sessions.clear();
  }
}

export function http2Server(deps: Http2Deps): Http2Server {
  const server = createServer({ maxSessionMemory: 64 });
  const copies = new Upstreams();
  server.on('session', (session) => {
    const upstreams = new Upstreams();
    session.once('close', () => {
      upstreams.close();
    });
    session.on('error', () => undefined);
    session.on(
      'stream',
      (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => {
        const view = {
          path: headers[':path'] ?? '/',
          header: (name: string) => headers[name],
        };
        const { intercept, wiretaps } = route(deps.taps().intercepts, deps.taps().wiretaps, view);
        if (intercept !== undefined) intercept.stats.taken += 1;
        const upstream = upstreams.get(
          intercept === undefined ? deps.appHost : '127.0.0.1',
          intercept?.door ?? deps.appPort,
        );
        const tees = wiretaps.map((w) => copyStream(copies.get('127.0.0.1', w.door), headers, w));
        forward(stream, headers, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0, upstream, tees);
      },
    );
  });
  server.on('close', () => {
    copies.close();
  });
  return server;
}

interface Tee {
  write(d: Buffer): void;
  end(trailers: OutgoingHttpHeaders | undefined): void;
}

function forward(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  bodiless: boolean,
  upstream: ClientHttp2Session,
  tees: Tee[],
): void {
  stream.on('error', () => undefined);
  let up;
  try {
    up = upstream.request(
      requestHeaders(headers),
      bodiless ? { endStream: true } : { waitForTrailers: true },
    );
  } catch {
    stream.close(NGHTTP2_INTERNAL_ERROR);
    return;
  }
  let requestTrailers: OutgoingHttpHeaders | undefined;
  let responseTrailers: OutgoingHttpHeaders | undefined;
  up.on('error', () => undefined);
  stream.on('trailers', (t: IncomingHttpHeaders) => {
    requestTrailers = trailersOf(t);
  });
  up.on('wantTrailers', () => {
    up.sendTrailers(requestTrailers ?? {});
  });
  stream.on('data', (d: Buffer) => {
    for (const t of tees) t.write(d);
    if (!up.write(d)) stream.pause();
  });
  up.on('drain', () => stream.resume());
  stream.once('end', () => {
    for (const t of tees) t.end(requestTrailers);
    if (!bodiless) up.end();
  });
  up.once('response', (h: IncomingHttpHeaders, flags: number) => {
    if (stream.destroyed) return;
    // END_STREAM on the headers: a trailers-only answer (a gRPC error), passed as one.
    const endStream = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    stream.respond(responseHeaders(h), endStream ? { endStream } : { waitForTrailers: true });
    if (endStream) return;
    stream.on('wantTrailers', () => {
      stream.sendTrailers(responseTrailers ?? {});
    });
    up.on('data', (d: Buffer) => {
      if (!stream.write(d)) up.pause();
    });
    stream.on('drain', () => up.resume());
    up.once('end', () => {
      stream.end();
    });
  });
  up.on('trailers', (t: IncomingHttpHeaders) => {
    responseTrailers = trailersOf(t);
  });
  // A stream reset on either side resets the other, as a cancelled call does; one that ended
  // as it should leaves the other to finish (its trailers may still be on their way).
  let upEnded = false;
  up.once('end', () => {
    upEnded = true;
  });
  up.once('close', () => {
    if (stream.closed || (upEnded && up.rstCode === constants.NGHTTP2_NO_ERROR)) return;
    stream.close(up.rstCode === constants.NGHTTP2_NO_ERROR ? NGHTTP2_CANCEL : up.rstCode);
  });
  stream.once('close', () => {
    if (up.closed) return;
    up.close(stream.rstCode === constants.NGHTTP2_NO_ERROR ? NGHTTP2_CANCEL : stream.rstCode);
  });
}

function copyStream(session: ClientHttp2Session, headers: IncomingHttpHeaders, w: ActiveTap): Tee {
  w.stats.taken += 1;
  let dropped = false;
  let req: ReturnType<ClientHttp2Session['request']> | undefined;
  const drop = (): void => {
    if (dropped) return;
    dropped = true;
    w.stats.dropped += 1;
    req?.close(NGHTTP2_CANCEL);
  };
  try {
    req = session.request(requestHeaders(headers), { waitForTrailers: true });
    req.on('error', drop);
    req.on('response', () => req?.resume());
    req.resume();
  } catch {
    drop();
  }
  let trailers: OutgoingHttpHeaders | undefined;
  const sent = req;
  sent?.on('wantTrailers', () => {
    sent.sendTrailers(trailers ?? {});
  });
  return {
    write: (d) => {
      if (dropped || req === undefined) return;
      if (req.writableLength > COPY_LIMIT) drop();
      else req.write(d);
    },
    end: (t) => {
      if (dropped || req === undefined) return;
      trailers = t;
      req.end();
    },
  };
}

/** Feeds a connection whose first bytes were read already (the preface) to the server. */
export function serveHttp2(server: Http2Server, socket: Socket): void {
  server.emit('connection', socket);
}
