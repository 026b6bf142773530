/**
 * The session's engagements, as the daemon holds them: for each engaged workload, the accept
 * streams to its agent pods (src/daemon/inbound.ts) and the way to ask an agent for the env.
 * The CLI changes the workload in the cluster; the daemon only talks to the agents.
 */
import type { Duplex } from 'node:stream';
import type { AgentInfo } from '../contract/agent.js';
import { buffer } from 'node:stream/consumers';
import {
  ControlStream,
  type ControlUpload,
  type EngagementDetails,
  type EngagementStart,
  type EngagementStatus,
  type TarMeta,
  type WriteRequest,
  type WriteResult,
} from '../contract/control.js';
import { agentInfo, agentTar, agentWrite } from '../tunnel/agent-client.js';
import type { ControlHandlers } from './control.js';
import { Inbound } from './inbound.js';
import { TapStreams } from './tap-streams.js';

interface Active {
  start: EngagementStart;
  details?: Omit<EngagementDetails, 'workload'>;
  since: string;
  inbound: Inbound | undefined;
  taps: TapStreams | undefined;
}

export class Engagements {
  private readonly active = new Map<string, Active>();

  constructor(
    /** Opens a raw stream to the agent of a pod (a port-forward to its agent port). */
    private readonly openAgent: (namespace: string, pod: string) => Promise<Duplex>,
    private readonly log: (o: object) => void = () => undefined,
    /** The session's name: what the agents know its taps by. */
    private readonly session = 'tp',
    /** The agent pods of an engagement now; without it, the pods it started with stay. */
    private readonly listPods?: (
      namespace: string,
      follow: NonNullable<EngagementStart['follow']>,
    ) => Promise<string[]>,
    private readonly followMs = 2000,
  ) {}

  private follower: NodeJS.Timeout | undefined;

  /** Looks for the engagements' agent pods again: those that went, and those that came. */
  async follow(): Promise<void> {
    const listPods = this.listPods;
    if (listPods === undefined) return;
    await Promise.all(
      [...this.active.values()].map(async (a) => {
        const f = a.start.follow;
        if (f === undefined) return;
        let pods: string[];
        try {
          pods = await listPods(a.start.namespace, f);
        } catch (err) {
          this.log({
            msg: 'cannot list the agent pods',
            workload: a.start.workload,
            error: String(err),
          });
          return;
        }
        // None Ready for a moment (a rollout between pods): the streams wait where they are.
        if (pods.length === 0 || pods.join() === [...a.start.pods].sort().join()) return;
        if (this.active.get(a.start.workload) !== a) return;
        this.log({ msg: 'agent pods changed', workload: a.start.workload, pods });
        a.start = { ...a.start, pods };
        a.inbound?.setPods(pods);
        a.taps?.setPods(pods);
      }),
    );
  }

  private watchPods(): void {
    if (this.listPods === undefined || this.follower !== undefined) return;
    this.follower = setInterval(() => {
      if (this.active.size === 0) {
        clearInterval(this.follower);
        this.follower = undefined;
        return;
      }
      void this.follow();
    }, this.followMs);
    this.follower.unref();
  }

  /** Starts (or, for the same workload, restarts) carrying the engagement's connections. */
  async start(req: EngagementStart): Promise<EngagementStatus> {
    await this.leave(req.workload);
    const open = (pod: string): Promise<Duplex> => this.openAgent(req.namespace, pod);
    const taps =
      req.tap === undefined || (req.mode !== 'intercept' && req.mode !== 'wiretap')
        ? undefined
        : new TapStreams({
            open,
            pods: req.pods,
            tap: { session: this.session, mode: req.mode, ...req.tap },
            log: this.log,
          });
    const inbound =
      req.ports.length === 0
        ? undefined
        : new Inbound({
            // The agent hands a session streams only once it taps there.
            open:
              taps === undefined
                ? open
                : async (pod) => {
                    await taps.ready(pod);
                    return open(pod);
                  },
            pods: req.pods,
            ports: new Map(req.ports.map((p) => [p.port, p.local])),
            log: this.log,
            ...(taps === undefined ? {} : { session: this.session }),
          });
    inbound?.start();
    const active: Active = { start: req, since: new Date().toISOString(), inbound, taps };
    this.watchPods();
    this.active.set(req.workload, active);
    this.log({ msg: 'engagement started', workload: req.workload, mode: req.mode, pods: req.pods });
    return statusOf(active);
  }

  /** Records where the CLI put the env and the mounts, for `tp status`. */
  describe(req: EngagementDetails): EngagementStatus {
    const a = this.active.get(req.workload);
    if (a === undefined) throw new Error(`this session does not engage ${req.workload}`);
    const { workload: _w, ...details } = req;
    a.details = details;
    return statusOf(a);
  }

  /** The env and mounts as the agent of the engagement's first pod sees them. */
  info(workload: string): Promise<AgentInfo> {
    return this.firstAgent(workload, (stream) => agentInfo(stream));
  }

  /** A tar of one mount, from the same agent as `info` (the first that answers). */
  tar(workload: string, path: string): Promise<ControlStream<TarMeta>> {
    return this.firstAgent(workload, async (stream) => {
      const { tar, skipped, ...rest } = await agentTar(stream, path);
      return new ControlStream(
        tar,
        { ...rest, skipped: namedWithin(skipped) },
        'application/x-tar',
      );
    });
  }

  /**
   * Files written locally, to the mount in every pod of the engagement (each has its own
   * emptyDir; a PVC they share takes the same bytes twice, harmlessly). All or an error:
   * the sender keeps the changes and sends them again.
   */
  async write(upload: ControlUpload<WriteRequest>): Promise<WriteResult> {
    const { workload, path, deletes } = upload.meta;
    const a = this.active.get(workload);
    if (a === undefined) {
      upload.body.resume();
      throw new Error(`this session does not engage ${workload}`);
    }
    const tar = await buffer(upload.body);
    const result: WriteResult = { pods: [], files: 0, bytes: 0, deleted: 0 };
    await Promise.all(
      a.start.pods.map(async (pod) => {
        const written = await agentWrite(
          await this.openAgent(a.start.namespace, pod),
          { path, deletes },
          tar,
        );
        result.pods.push(pod);
        result.files = Math.max(result.files, written.files);
        result.bytes = Math.max(result.bytes, written.bytes);
        result.deleted = Math.max(result.deleted, written.deleted);
      }),
    );
    this.log({ msg: 'written back', workload, path, ...result });
    return result;
  }

  private async firstAgent<T>(workload: string, ask: (stream: Duplex) => Promise<T>): Promise<T> {
    const a = this.active.get(workload);
    if (a === undefined) throw new Error(`this session does not engage ${workload}`);
    const errors: string[] = [];
    // Twice round, a moment apart: a port-forward to a pod that has just started can fail once.
    for (let round = 0; round < 2; round += 1) {
      if (round > 0) await new Promise((r) => setTimeout(r, 500));
      for (const pod of a.start.pods) {
        try {
          return await ask(await this.openAgent(a.start.namespace, pod));
        } catch (err) {
          errors.push(`${pod}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    throw new Error(`no agent of ${workload} answered (${errors.join('; ') || 'no pods'})`);
  }

  async leave(workload: string): Promise<{ ended: boolean }> {
    const a = this.active.get(workload);
    if (a === undefined) return { ended: false };
    this.active.delete(workload);
    // The tap first: the agent sends no more of this session's traffic once it ends.
    await a.taps?.stop();
    await a.inbound?.stop();
    this.log({ msg: 'engagement ended', workload });
    return { ended: true };
  }

  status(): EngagementStatus[] {
    return [...this.active.values()].map(statusOf);
  }

  async stop(): Promise<void> {
    clearInterval(this.follower);
    this.follower = undefined;
    await Promise.all([...this.active.keys()].map((w) => this.leave(w)));
  }
}

/** The control API's engagement routes, each answered by `engagements`. */
export function engagementRoutes(
  engagements: Engagements,
): Pick<ControlHandlers, Extract<keyof ControlHandlers, `POST /v1/engagements${string}`>> {
  return {
    'POST /v1/engagements': (req) => engagements.start(req),
    'POST /v1/engagements/info': (req) => engagements.info(req.workload),
    'POST /v1/engagements/leave': (req) => engagements.leave(req.workload),
    'POST /v1/engagements/describe': (req) => engagements.describe(req),
    'POST /v1/engagements/tar': (req) => engagements.tar(req.workload, req.path),
    'POST /v1/engagements/write': (req) => engagements.write(req),
  };
}

/** Bytes of names the tar's header may carry: clients refuse headers over 16 KiB. */
const SKIPPED_HEADER_BUDGET = 4096;

/** As many of the names as fit the header, and how many more there are. */
export function namedWithin(names: readonly string[], budget = SKIPPED_HEADER_BUDGET): string[] {
  const out: string[] = [];
  let used = 0;
  for (const n of names) {
    used += encodeURIComponent(JSON.stringify(n)).length + 3;
    if (used > budget) {
      out.push(`(and ${names.length - out.length} more)`);
      break;
    }
    out.push(n);
  }
  return out;
}

function statusOf(a: Active): EngagementStatus {
  const stats = a.inbound?.stats();
  const tapped = a.taps?.stats();
  return {
    ...a.start,
    mounts: [],
    ...a.details,
    since: a.since,
    accepted: stats?.accepted ?? 0,
    refused: stats?.refused ?? 0,
    ...tapped,
  };
}
