/**
 * Wiretap copies of HTTP/1.x requests: the same request, sent to each matching session as
 * the original streams to the app; the session's answer is read and thrown away. A copy
 * that cannot keep up (more than COPY_LIMIT waiting, or more than MAX_WAITING requests
 * queued for a session) is dropped and counted, so the original never waits for it.
 */
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import type { ActiveTap } from '../taps.js';
import { COPY_LIMIT } from './raw.js';

/** Connections to one session's door, and requests queued behind them. */
const MAX_SOCKETS = 16;
const MAX_WAITING = 64;

export interface CopySink {
  write(d: Buffer): void;
  end(trailers: [string, string][]): void;
}

const none: CopySink = { write: () => undefined, end: () => undefined };

export class HttpCopies {
  private readonly agents = new Map<number, Agent>();

  start(req: IncomingMessage, wiretaps: readonly ActiveTap[]): CopySink {
    if (wiretaps.length === 0) return none;
    const copies = wiretaps.flatMap((w) => {
      const c = this.copy(req, w);
      return c === undefined ? [] : [c];
    });
    return {
      write: (d) => {
        for (const c of copies) c.write(d);
      },
      end: (trailers) => {
        for (const c of copies) c.end(trailers);
      },
    };
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }

  private copy(req: IncomingMessage, w: ActiveTap): CopySink | undefined {
    const agent = this.agent(w.door);
    const queued = Object.values(agent.requests).reduce((n, q) => n + (q?.length ?? 0), 0);
    if (queued >= MAX_WAITING) {
      w.stats.dropped += 1;
      return undefined;
    }
    w.stats.taken += 1;
    let dropped = false;
    const drop = (): void => {
      if (dropped) return;
      dropped = true;
      w.stats.dropped += 1;
      up.destroy();
    };
    const up: ClientRequest = request({
      host: '127.0.0.1',
      port: w.door,
      method: req.method,
      path: req.url,
      headers: req.rawHeaders,
      agent,
      setHost: false,
    });
    up.on('error', drop);
    up.on('response', (answer) => {
      answer.resume();
      answer.on('error', () => undefined);
    });
    return {
      write: (d) => {
        if (dropped) return;
        if (up.writableLength > COPY_LIMIT) drop();
        else up.write(d);
      },
      end: (trailers) => {
        if (dropped) return;
        if (trailers.length > 0) up.addTrailers(trailers);
        up.end();
      },
    };
  }

  private agent(port: number): Agent {
    let a = this.agents.get(port);
    if (a === undefined) {
      a = new Agent({ keepAlive: true, maxSockets: MAX_SOCKETS });
      this.agents.set(port, a);
    }
    return a;
  }
}
