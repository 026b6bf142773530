/**
 * The daemon's side of a tap (intercept, wiretap): one `tap` stream to the agent of each pod,
 * kept alive with a newline every TAP_BEAT_MS, so the agent sends the session traffic only
 * while this daemon lives. The agent's stats lines are summed for `tp status`. A stream that
 * fails is opened again, backing off as the accept streams do.
 */
import type { Duplex } from 'node:stream';
import { TAP_BEAT_MS, type Tap, type TapStats } from '../contract/agent.js';
import { AGENT_MAX_REPLY, parseAgentReply } from '../tunnel/agent-protocol.js';
import { encodeLine, readLine } from '../tunnel/protocol.js';

export interface TapStreamsOptions {
  open(pod: string): Promise<Duplex>;
  pods: readonly string[];
  tap: Tap;
  beatMs?: number;
  log?: (o: object) => void;
}

interface PodTap {
  name: string;
  stream: Duplex | undefined;
  stats: TapStats;
  /** What earlier streams to this pod counted, before the agent's counts began again. */
  before: TapStats;
  failures: number;
  retry: NodeJS.Timeout | undefined;
  ready: Promise<void>;
  markReady: () => void;
  gone: boolean;
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class TapStreams implements AsyncDisposable {
  private readonly pods = new Map<string, PodTap>();
  private stopped = false;
  lastError: string | undefined;

  constructor(private readonly opts: TapStreamsOptions) {
    for (const p of opts.pods) this.add(p);
  }

  /** Resolves once the pod's agent sends this session its traffic. */
  ready(pod: string): Promise<void> {
    return this.pods.get(pod)?.ready ?? Promise.reject(new Error(`${pod} is not tapped`));
  }

  setPods(names: readonly string[]): void {
    if (this.stopped) return;
    for (const [name, pod] of this.pods) {
      if (names.includes(name)) continue;
      this.end(pod);
      this.pods.delete(name);
    }
    for (const name of names) if (!this.pods.has(name)) this.add(name);
  }

  stats(): TapStats {
    let taken = 0;
    let dropped = 0;
    for (const p of this.pods.values()) {
      taken += p.before.taken + p.stats.taken;
      dropped += p.before.dropped + p.stats.dropped;
    }
    return { taken, dropped };
  }

  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      for (const p of this.pods.values()) this.end(p);
      this.pods.clear();
    }
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private add(name: string): void {
    let markReady = (): void => undefined;
    const ready = new Promise<void>((resolve) => {
      markReady = resolve;
    });
    const pod: PodTap = {
      name,
      stream: undefined,
      stats: { taken: 0, dropped: 0 },
      before: { taken: 0, dropped: 0 },
      failures: 0,
      retry: undefined,
      ready,
      markReady,
      gone: false,
    };
    this.pods.set(name, pod);
    void this.run(pod);
  }

  private end(pod: PodTap): void {
    pod.gone = true;
    clearTimeout(pod.retry);
    pod.stream?.destroy();
  }

  private async run(pod: PodTap): Promise<void> {
    let beat: NodeJS.Timeout | undefined;
    try {
      const stream = await this.opts.open(pod.name);
      if (this.stopped || pod.gone) {
        stream.destroy();
        return;
      }
      pod.stream = stream;
      stream.on('error', () => undefined);
      stream.write(encodeLine({ op: 'tap', ...this.opts.tap }));
      const first = parseAgentReply(await readLine(stream, AGENT_MAX_REPLY));
      if (!first.ok) throw new Error(first.error);
      if (!('tapped' in first)) throw new Error('the agent answered tap with something else');
      pod.failures = 0;
      pod.markReady();
      this.opts.log?.({ msg: 'tapped', pod: pod.name, target: this.opts.tap.target });
      beat = setInterval(() => {
        if (stream.writable) stream.write('\n');
      }, this.opts.beatMs ?? TAP_BEAT_MS);
      for (;;) {
        const reply = parseAgentReply(await readLine(stream, AGENT_MAX_REPLY));
        if (reply.ok && 'tapStats' in reply) pod.stats = reply.tapStats;
      }
    } catch (err) {
      if (this.stopped || pod.gone) return;
      pod.failures += 1;
      this.lastError = `${pod.name}: ${messageOf(err)}`;
      this.opts.log?.({ msg: 'tap stream failed', pod: pod.name, error: messageOf(err) });
      pod.before = {
        taken: pod.before.taken + pod.stats.taken,
        dropped: pod.before.dropped + pod.stats.dropped,
      };
      pod.stats = { taken: 0, dropped: 0 };
      const delay = Math.min(5000, 250 * 2 ** Math.min(pod.failures, 5));
      pod.retry = setTimeout(() => {
        pod.retry = undefined;
        void this.run(pod);
      }, delay);
    } finally {
      clearInterval(beat);
      pod.stream?.destroy();
    }
  }
}
