/**
 * The sessions that take traffic at the proxied ports (intercept, wiretap), each for as long
 * as its `tap` stream lives. A session's traffic reaches it through a door on the pod's
 * loopback, one per proxied port, whose clients are handed to that session's `accept`
 * streams as a replaced port's are (agent/engaged.ts). A tap whose stream ends or falls
 * silent is dropped at once, so the app gets its traffic back when a daemon dies or its
 * tunnel is cut, without waiting for tp-manager.
 */
import type { Socket } from 'node:net';
import {
  TAP_BEAT_MS,
  TAP_SILENCE_MS,
  type AgentReply,
  type Tap,
  type TapStats,
} from '../src/contract/agent.js';
import { encodeLine } from '../src/tunnel/protocol.js';
import { AcceptQueue, listenTcp, type EngagedOptions, type Listener } from './engaged.js';
import { orderIntercepts } from './proxy/route.js';

/** A tap as the proxies use it. */
export interface ActiveTap extends Tap {
  /** The session's door for this port: a connection there reaches the local container. */
  readonly door: number;
  readonly stats: TapStats;
}

interface Session {
  queue: AcceptQueue;
  doors: Map<number, Promise<Listener>>;
  taps: Set<ActiveTap>;
}

export interface TapsOptions {
  /** The app ports the agent proxies. */
  targets: readonly number[];
  acceptWaitMs: number;
  track: EngagedOptions['track'];
  log(o: object): void;
  silenceMs?: number;
  beatMs?: number;
}

export class Taps {
  private readonly sessions = new Map<string, Session>();
  private readonly byTarget = new Map<number, { intercepts: ActiveTap[]; wiretaps: ActiveTap[] }>();

  constructor(private readonly opts: TapsOptions) {}

  /** The intercepts (in the order they are asked) and wiretaps at an app port. */
  at(target: number): { intercepts: readonly ActiveTap[]; wiretaps: readonly ActiveTap[] } {
    return this.byTarget.get(target) ?? { intercepts: [], wiretaps: [] };
  }

  /** Serves a `tap` stream until it ends or falls silent. */
  async serve(stream: Socket, tap: Tap): Promise<void> {
    if (!this.opts.targets.includes(tap.target)) {
      stream.end(line({ ok: false, error: `port ${tap.target} is not proxied by this agent` }));
      return;
    }
    const session = this.session(tap.session);
    let door: number;
    try {
      door = (await this.door(session, tap.target)).port;
    } catch (err) {
      stream.end(line({ ok: false, error: `cannot open the session's door: ${String(err)}` }));
      this.forgetIfIdle(tap.session);
      return;
    }
    const active: ActiveTap = { ...tap, door, stats: { taken: 0, dropped: 0 } };
    session.taps.add(active);
    this.index();
    this.opts.log({ msg: 'tap started', session: tap.session, mode: tap.mode, target: tap.target });
    stream.write(line({ ok: true, tapped: true }));

    let heard = Date.now();
    stream.on('data', () => {
      heard = Date.now();
    });
    const beat = setInterval(() => {
      if (Date.now() - heard > (this.opts.silenceMs ?? TAP_SILENCE_MS)) {
        this.opts.log({ msg: 'tap silent: dropped', session: tap.session, target: tap.target });
        stream.destroy();
        return;
      }
      if (stream.writable) stream.write(line({ ok: true, tapStats: { ...active.stats } }));
    }, this.opts.beatMs ?? TAP_BEAT_MS);
    await new Promise<void>((resolve) => {
      stream.once('close', resolve);
      stream.once('end', () => stream.destroy());
      stream.on('error', () => stream.destroy());
    });
    clearInterval(beat);
    session.taps.delete(active);
    this.index();
    this.opts.log({ msg: 'tap ended', session: tap.session, target: tap.target, ...active.stats });
    this.forgetIfIdle(tap.session);
  }

  /** An `accept` stream of a session: refused unless the session taps something. */
  offer(session: string, stream: Socket): void {
    const s = this.sessions.get(session);
    if (s === undefined || s.taps.size === 0) {
      stream.end(line({ ok: false, error: `session ${session} taps nothing here` }));
      return;
    }
    s.queue.offer(stream);
  }

  close(): void {
    for (const name of [...this.sessions.keys()]) this.forget(name);
  }

  private session(name: string): Session {
    let s = this.sessions.get(name);
    if (s === undefined) {
      s = { queue: new AcceptQueue(this.opts.acceptWaitMs), doors: new Map(), taps: new Set() };
      this.sessions.set(name, s);
    }
    return s;
  }

  private door(session: Session, target: number): Promise<Listener> {
    let door = session.doors.get(target);
    if (door === undefined) {
      door = listenTcp(
        { port: target, protocol: 'TCP' },
        {
          host: '127.0.0.1',
          queue: session.queue,
          udpIdleMs: 0,
          track: (s) => {
            this.opts.track(s);
          },
          log: (o) => {
            this.opts.log(o);
          },
        },
        0,
      );
      session.doors.set(target, door);
    }
    return door;
  }

  private forgetIfIdle(name: string): void {
    if (this.sessions.get(name)?.taps.size === 0) this.forget(name);
  }

  private forget(name: string): void {
    const s = this.sessions.get(name);
    if (s === undefined) return;
    this.sessions.delete(name);
    s.queue.close();
    for (const door of s.doors.values()) void door.then((l) => l.close()).catch(() => undefined);
  }

  private index(): void {
    this.byTarget.clear();
    for (const target of this.opts.targets) {
      const all = [...this.sessions.values()].flatMap((s) =>
        [...s.taps].filter((t) => t.target === target),
      );
      this.byTarget.set(target, {
        intercepts: orderIntercepts(all.filter((t) => t.mode === 'intercept')),
        wiretaps: all.filter((t) => t.mode === 'wiretap'),
      });
    }
  }
}

const line = (r: AgentReply): Buffer => encodeLine(r);
