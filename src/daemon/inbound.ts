/**
 * The daemon's side of an engagement's traffic: a few `accept` streams kept waiting at each
 * agent pod, so that a client in the cluster pays for no port-forward set-up (the agent holds
 * a client only briefly when none waits). Each connection a stream reports is dialled at
 * `127.0.0.1:<local port>`, where the local container listens in the daemon's network
 * namespace; a refusal there resets the client in the cluster.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AgentReply, Protocol } from '../contract/agent.js';
import { AGENT_MAX_REPLY, parseAgentReply } from '../tunnel/agent-protocol.js';
import { DatagramTunnel, FrameType, encodeFrame, spliceStream } from '../tunnel/frames.js';
import { encodeLine, readLine } from '../tunnel/protocol.js';

export interface InboundOptions {
  /** Opens one raw stream to the agent in `pod` (a port-forward to AGENT_PORT). */
  open(pod: string): Promise<Duplex>;
  /** The engagement's agent pods; `setPods` changes them as they roll. */
  pods: readonly string[];
  /** The port a client reached in the cluster → the local port it is dialled at. */
  ports: ReadonlyMap<number, number>;
  /** Accept streams kept waiting at each pod. */
  streamsPerPod?: number;
  /** intercept, wiretap: the session whose taps the streams wait for (agent/taps.ts). */
  session?: string;
  localHost?: string;
  dialTimeoutMs?: number;
  udpIdleMs?: number;
  log?: (o: object) => void;
}

export interface InboundStats {
  /** Connections the agents handed over. */
  accepted: number;
  /** Of those, dials the local side refused (or no local port is mapped for). */
  refused: number;
  /** Connections relayed now. */
  active: number;
  /** Accept streams waiting at the agents now. */
  waiting: number;
  /** Streams that could not be opened or closed at once. */
  failedOpens: number;
  lastError?: string;
}

interface Pod {
  name: string;
  waiting: Set<Duplex>;
  opening: number;
  failures: number;
  retry: NodeJS.Timeout | undefined;
  gone: boolean;
}

/** A stream that closes sooner than this after opening counts as a failure to open. */
const SHORT_LIVED_MS = 2000;

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class Inbound implements AsyncDisposable {
  private readonly pods = new Map<string, Pod>();
  private readonly active = new Set<Duplex>();
  private readonly counters = { accepted: 0, refused: 0, failedOpens: 0 };
  private lastError: string | undefined;
  private started = false;
  private stopped = false;

  constructor(private readonly opts: InboundOptions) {
    for (const p of opts.pods) this.addPod(p);
  }

  /** Opens the accept streams; more follow as they are used. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    for (const pod of this.pods.values()) this.fill(pod);
  }

  /** A pod that left has its waiting streams closed; its relayed connections go on. */
  setPods(names: readonly string[]): void {
    if (this.stopped) return;
    for (const [name, pod] of this.pods) {
      if (names.includes(name)) continue;
      pod.gone = true;
      clearTimeout(pod.retry);
      for (const s of pod.waiting) s.destroy();
      this.pods.delete(name);
    }
    for (const name of names) {
      if (this.pods.has(name)) continue;
      const pod = this.addPod(name);
      if (this.started) this.fill(pod);
    }
  }

  stats(): InboundStats {
    let waiting = 0;
    for (const pod of this.pods.values()) waiting += pod.waiting.size;
    const s: InboundStats = { ...this.counters, active: this.active.size, waiting };
    if (this.lastError !== undefined) s.lastError = this.lastError;
    return s;
  }

  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      for (const pod of this.pods.values()) {
        pod.gone = true;
        clearTimeout(pod.retry);
        for (const s of pod.waiting) s.destroy();
      }
      this.pods.clear();
      // A lost stream resets both ends of its connection (spliceStream, DatagramTunnel).
      for (const s of this.active) s.destroy();
    }
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private addPod(name: string): Pod {
    const pod: Pod = {
      name,
      waiting: new Set(),
      opening: 0,
      failures: 0,
      retry: undefined,
      gone: false,
    };
    this.pods.set(name, pod);
    return pod;
  }

  private fill(pod: Pod): void {
    const size = this.opts.streamsPerPod ?? 2;
    if (this.stopped || pod.gone || pod.retry !== undefined) return;
    while (pod.waiting.size + pod.opening < size) {
      pod.opening += 1;
      this.opts.open(pod.name).then(
        (stream) => {
          pod.opening -= 1;
          if (this.stopped || pod.gone) stream.destroy();
          else this.wait(pod, stream);
        },
        (err: unknown) => {
          pod.opening -= 1;
          this.failed(pod, err);
        },
      );
    }
  }

  private failed(pod: Pod, err: unknown): void {
    pod.failures += 1;
    this.counters.failedOpens += 1;
    this.lastError = `${pod.name}: ${messageOf(err)}`;
    this.opts.log?.({ msg: 'inbound: accept stream failed', pod: pod.name, error: messageOf(err) });
    if (this.stopped || pod.gone || pod.retry !== undefined) return;
    // 250 ms doubling to 5 s, as the tunnel pool backs off from tp-manager.
    const delay = Math.min(5000, 250 * 2 ** Math.min(pod.failures, 5));
    pod.retry = setTimeout(() => {
      pod.retry = undefined;
      this.fill(pod);
    }, delay);
  }

  private wait(pod: Pod, stream: Duplex): void {
    const openedAt = Date.now();
    pod.waiting.add(stream);
    // Errors surface as the close readLine and spliceStream see; unheard, they would throw.
    stream.on('error', () => undefined);
    stream.write(
      encodeLine(
        this.opts.session === undefined
          ? { op: 'accept' }
          : { op: 'accept', session: this.opts.session },
      ),
    );
    readLine(stream, AGENT_MAX_REPLY).then(
      (line) => {
        pod.waiting.delete(stream);
        let reply: AgentReply;
        try {
          reply = parseAgentReply(line);
          if (!reply.ok) throw new Error(reply.error);
          if (!('conn' in reply)) throw new Error('the agent answered accept with something else');
        } catch (err) {
          stream.destroy();
          this.failed(pod, err);
          return;
        }
        if (this.stopped) {
          stream.destroy();
          return;
        }
        pod.failures = 0;
        this.fill(pod);
        this.relay(reply.conn, stream);
      },
      (err: unknown) => {
        pod.waiting.delete(stream);
        stream.destroy();
        if (this.stopped || pod.gone) return;
        if (Date.now() - openedAt < SHORT_LIVED_MS) {
          this.failed(pod, err);
        } else {
          // A stream that waited long and was closed (an idle timeout on the way): replace it.
          pod.failures = 0;
          this.fill(pod);
        }
      },
    );
  }

  private relay(conn: { port: number; protocol: Protocol; src: string }, stream: Duplex): void {
    this.counters.accepted += 1;
    const local = this.opts.ports.get(conn.port);
    if (local === undefined) {
      this.opts.log?.({ msg: 'inbound: no local port', port: conn.port, src: conn.src });
      this.refuse(stream);
      return;
    }
    this.active.add(stream);
    stream.once('close', () => this.active.delete(stream));
    if (conn.protocol === 'TCP') this.relayTcp(stream, local);
    else this.relayUdp(stream, local);
  }

  private refuse(stream: Duplex): void {
    this.counters.refused += 1;
    if (stream.writable) stream.end(encodeFrame(FrameType.rst));
    else stream.destroy();
  }

  private relayTcp(stream: Duplex, port: number): void {
    const host = this.opts.localHost ?? '127.0.0.1';
    const socket = connect({ host, port, allowHalfOpen: true });
    let connected = false;
    const timer = setTimeout(() => {
      socket.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
    }, this.opts.dialTimeoutMs ?? 5000);
    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      // The client may have gone while we dialled: its stream's close is already past.
      if (stream.destroyed) {
        socket.resetAndDestroy();
        return;
      }
      socket.setNoDelay(true);
      void spliceStream(socket, stream);
    });
    socket.on('error', (err) => {
      if (connected) return; // the splice has it
      clearTimeout(timer);
      this.opts.log?.({ msg: 'inbound: local dial failed', port, error: err.message });
      this.refuse(stream);
    });
  }

  private relayUdp(stream: Duplex, port: number): void {
    const sock = createSocket('udp4');
    // Nothing listening locally yet answers with ICMP, seen here; later datagrams may find it.
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') this.counters.refused += 1;
      else stream.destroy();
    });
    // Datagrams that arrive meanwhile wait in the stream: nothing reads it until then.
    sock.connect(port, this.opts.localHost ?? '127.0.0.1', () => {
      if (stream.destroyed) {
        sock.close();
        return;
      }
      const tunnel = new DatagramTunnel(stream);
      const idleMs = this.opts.udpIdleMs ?? 60_000;
      let idle: NodeJS.Timeout | undefined;
      const touch = (): void => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          tunnel.close();
        }, idleMs);
      };
      touch();
      tunnel.on('datagram', (d) => {
        touch();
        sock.send(d);
      });
      sock.on('message', (d) => {
        touch();
        tunnel.send(d);
      });
      tunnel.once('close', () => {
        clearTimeout(idle);
        sock.close();
      });
    });
  }
}
