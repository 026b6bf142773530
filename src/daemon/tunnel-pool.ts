/**
 * Streams to tp-manager, one per flow. Opening a port-forward stream costs a TLS handshake
 * and an upgrade through the API server, the kubelet and the runtime (several round trips),
 * so a few are kept open ahead of need: a new flow takes one that is already connected to the
 * manager and only pays for its own request line.
 */
import type { Duplex } from 'node:stream';
import {
  TUNNEL_VERSION,
  encodeLine,
  readLine,
  type DialFailure,
  type DialRequest,
  type HeartbeatRequest,
  type ManagerInfo,
  type TunnelReply,
} from '../tunnel/protocol.js';
import type { TunnelState, TunnelStatus } from '../contract/session.js';

export type { TunnelStatus };

export interface TunnelPoolOptions {
  /** Opens one raw stream to the manager (a port-forward). */
  open(): Promise<Duplex>;
  /** Called after an open fails, so the next open looks for the manager afresh. */
  onOpenFailure?(err: unknown): void;
  size: number;
  replyTimeoutMs?: number;
  log?: (o: object) => void;
}

export type DialResult =
  { ok: true; stream: Duplex } | { ok: false; error: DialFailure; message: string };

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class TunnelPool implements AsyncDisposable {
  private readonly idle = new Set<Duplex>();
  private opening = 0;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly status: TunnelStatus = {
    state: 'connecting',
    since: new Date().toISOString(),
    reconnects: 0,
    idle: 0,
    opened: 0,
    dials: 0,
    failedDials: 0,
    events: [],
  };

  constructor(private readonly opts: TunnelPoolOptions) {}

  /** Opens the first stream and fills the pool; rejects when the manager cannot be reached. */
  async start(): Promise<ManagerInfo> {
    const info = await this.info();
    this.setState('ready', 'connected to tp-manager');
    this.refill();
    return info;
  }

  /** Asks the manager about itself over a fresh stream. */
  async info(): Promise<ManagerInfo> {
    const stream = await this.openCounted();
    try {
      stream.write(encodeLine({ v: TUNNEL_VERSION, op: 'info' }));
      return JSON.parse(await this.reply(stream)) as ManagerInfo;
    } finally {
      stream.destroy();
    }
  }

  snapshot(): TunnelStatus {
    return { ...this.status, idle: this.idle.size, events: [...this.status.events] };
  }

  /** A stream connected to `host:port` in the cluster, or why the manager could not dial it. */
  async dial(proto: DialRequest['proto'], host: string, port: number): Promise<DialResult> {
    this.status.dials += 1;
    const req: DialRequest = { v: TUNNEL_VERSION, op: 'dial', proto, host, port };
    // A pre-opened stream may have died since (API server restart): then try a fresh one.
    for (let attempt = 0; ; attempt++) {
      const fromPool = this.takeIdle();
      let stream: Duplex;
      try {
        stream = fromPool ?? (await this.openCounted());
      } catch (err) {
        this.status.failedDials += 1;
        return { ok: false, error: 'unreachable', message: `tunnel: ${messageOf(err)}` };
      }
      try {
        stream.write(encodeLine(req));
        const reply = JSON.parse(await this.reply(stream)) as
          { ok: true } | { ok: false; error: DialFailure; message: string };
        // Replaced only now: opening a stream (a TLS handshake on this event loop) would
        // otherwise delay the very flow that took one.
        this.refill();
        if (reply.ok) return { ok: true, stream };
        stream.destroy();
        this.status.failedDials += 1;
        return reply;
      } catch (err) {
        stream.destroy();
        this.refill();
        if (fromPool !== undefined && attempt === 0) continue;
        this.status.failedDials += 1;
        return { ok: false, error: 'unreachable', message: `tunnel: ${messageOf(err)}` };
      }
    }
  }

  /**
   * Tells the manager the session is alive, on a stream of its own (a pooled one when there is
   * one); rejects when the manager cannot be reached or refuses.
   */
  async heartbeat(session: string, grace: number): Promise<void> {
    const req: HeartbeatRequest = { v: TUNNEL_VERSION, op: 'heartbeat', session, grace };
    if (this.stopped) throw new Error('the tunnel is stopped');
    for (let attempt = 0; ; attempt++) {
      const fromPool = this.takeIdle();
      const stream = fromPool ?? (await this.openCounted());
      let reply: TunnelReply;
      try {
        stream.write(encodeLine(req));
        reply = JSON.parse(await this.reply(stream)) as TunnelReply;
      } catch (err) {
        // A pre-opened stream may have died since: then try a fresh one, as a dial does.
        if (fromPool !== undefined && attempt === 0) continue;
        throw err;
      } finally {
        stream.destroy();
        this.refill();
      }
      if (!reply.ok) throw new Error(`tp-manager refused the heartbeat: ${reply.message}`);
      return;
    }
  }

  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      clearTimeout(this.retryTimer);
      for (const s of this.idle) s.destroy();
      this.idle.clear();
      this.setState('stopped', 'session ended');
    }
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private takeIdle(): Duplex | undefined {
    for (const s of this.idle) {
      this.idle.delete(s);
      if (!s.destroyed && s.readable && s.writable) return s;
      s.destroy();
    }
    return undefined;
  }

  private async openCounted(): Promise<Duplex> {
    try {
      const s = await this.opts.open();
      this.status.opened += 1;
      if (this.failures > 0) {
        this.failures = 0;
        this.status.reconnects += 1;
        this.setState('ready', 'reconnected to tp-manager');
      }
      return s;
    } catch (err) {
      this.failures += 1;
      this.status.lastError = messageOf(err);
      this.opts.onOpenFailure?.(err);
      if (this.status.state === 'ready') this.setState('reconnecting', messageOf(err));
      throw err;
    }
  }

  private refill(): void {
    if (this.stopped || this.retryTimer !== undefined) return;
    while (this.idle.size + this.opening < this.opts.size) {
      this.opening += 1;
      this.openCounted()
        .then((s) => {
          this.opening -= 1;
          if (this.stopped) {
            s.destroy();
            return;
          }
          this.idle.add(s);
          // A pooled stream that dies (API server restart, pod gone) leaves the pool at once.
          s.once('close', () => {
            if (this.idle.delete(s)) this.refill();
          });
          s.on('error', () => s.destroy());
        })
        .catch(() => {
          this.opening -= 1;
          // Back off while the manager cannot be reached: 250 ms doubling to 5 s.
          const delay = Math.min(5000, 250 * 2 ** Math.min(this.failures, 5));
          this.retryTimer ??= setTimeout(() => {
            this.retryTimer = undefined;
            this.refill();
          }, delay);
        });
    }
  }

  private reply(stream: Duplex): Promise<string> {
    const timeoutMs = this.opts.replyTimeoutMs ?? 15_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no reply from tp-manager within ${timeoutMs} ms`));
      }, timeoutMs);
      readLine(stream).then(
        (line) => {
          clearTimeout(timer);
          resolve(line);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  private setState(state: TunnelState, message: string): void {
    if (this.status.state !== state) this.status.since = new Date().toISOString();
    this.status.state = state;
    this.status.events.push({ time: new Date().toISOString(), state, message });
    if (this.status.events.length > 20) this.status.events.shift();
    this.opts.log?.({ msg: 'tunnel', state, detail: message });
  }
}
