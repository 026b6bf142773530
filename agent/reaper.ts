/**
 * tp-manager's reaper: once a session has sent no heartbeat for its grace (its daemon killed,
 * the machine asleep or gone), what it engages is restored as `tp leave` restores it, so a
 * shared cluster is never left with a workload replaced by a laptop that went to sleep.
 *
 * The engagements are found by their annotation, in every namespace, with metadata-only
 * lists; the heartbeats are held in memory, so a manager that starts counts every session as
 * seen at its start.
 */
import {
  parseEngagements,
  planLeave,
  type EngagementRecord,
  type Engagements,
} from '../src/engage/plan.js';
import {
  planServiceSwitch,
  serviceRestore,
  serviceSwitches,
} from '../src/engage/service-switch.js';
import { appsKinds, type AppsKind, type WorkloadApi } from '../src/k8s/in-cluster.js';
import { messageOf } from '../src/lib/errors.js';
import { DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS } from '../src/lib/grace.js';
import {
  ANNOTATION_ENGAGEMENTS,
  DEFAULT_MANAGER_NAMESPACE,
  FIELD_MANAGER,
  FIELD_MANAGER_RESTORED,
} from '../src/lib/k8s-keys.js';
import type { HeartbeatRequest } from '../src/tunnel/protocol.js';

/** The sweep runs again when the next engagement could expire, within these bounds. */
export const MIN_SWEEP_MS = 2000;
export const MAX_SWEEP_MS = 30_000;

/** The last heartbeat this manager heard from a session, and the grace it announced. */
export interface Heard {
  at: number;
  grace?: number;
}

/** One session's engagement of one workload, as listed. */
export interface Engaged {
  kind: string;
  namespace: string;
  name: string;
  session: string;
  record: EngagementRecord;
  /** When this manager first listed this engagement (ms since the epoch). */
  noticed: number;
}

export interface Expired extends Engaged {
  /** The last sign of life: a heartbeat, the manager's start, or the engagement itself. */
  lastSeen: number;
  /** Seconds. */
  grace: number;
}

export interface ReapInput {
  engaged: readonly Engaged[];
  heard: ReadonlyMap<string, Heard>;
  /** The namespace this manager runs in. */
  namespace: string;
  startedAt: number;
  now: number;
}

/**
 * Which engagements to restore now, and when to look again: when the next one could expire
 * (one listed, or one a session heard from may have made since), between MIN_SWEEP_MS and
 * MAX_SWEEP_MS.
 */
export function reapDecision(input: ReapInput): { restore: Expired[]; nextSweepMs: number } {
  const restore: Expired[] = [];
  let next = MAX_SWEEP_MS;
  for (const e of input.engaged) {
    const heard = input.heard.get(e.session);
    if (!watchedHere(e.record, heard, input.namespace)) continue;
    const grace = graceOf(e.record, heard);
    const since = Date.parse(e.record.since);
    // A clock ahead of the manager's must not keep a dead engagement: `since` counts at most
    // from when this manager first saw it.
    const engagedAt = Number.isNaN(since) ? e.noticed : Math.min(since, e.noticed);
    const lastSeen = Math.max(heard?.at ?? 0, input.startedAt, engagedAt);
    const left = lastSeen + grace * 1000 - input.now;
    if (left <= 0) restore.push({ ...e, lastSeen, grace });
    else next = Math.min(next, left);
  }
  // A session heard from may have engaged since this list: its engagement could expire as
  // soon as its grace after its last heartbeat.
  for (const h of input.heard.values()) {
    const left = h.at + (h.grace ?? DEFAULT_GRACE_SECONDS) * 1000 - input.now;
    if (left > 0) next = Math.min(next, left);
  }
  return { restore, nextSweepMs: Math.max(MIN_SWEEP_MS, next) };
}

/**
 * Whether this manager restores the engagement: the one its record names, else the one the
 * session sends heartbeats to, else the one in the default namespace. Managers in other
 * namespaces hear none of the session's heartbeats and would restore it while it lives.
 */
function watchedHere(record: EngagementRecord, heard: Heard | undefined, namespace: string) {
  if (typeof record.manager === 'string') return record.manager === namespace;
  return heard !== undefined || namespace === DEFAULT_MANAGER_NAMESPACE;
}

/**
 * The longest of the grace the engagement records and the one its session announces: when the
 * two disagree (TP_ENGAGEMENT_GRACE changed between connect and replace), a live session whose
 * heartbeats are spaced for the longer one is never taken for dead.
 */
function graceOf(record: EngagementRecord, heard: Heard | undefined): number {
  const known = [record.grace, heard?.grace].filter(
    (g): g is number => typeof g === 'number' && Number.isFinite(g) && g > 0,
  );
  return known.length === 0 ? DEFAULT_GRACE_SECONDS : Math.max(...known);
}

export interface ReaperOptions {
  namespace: string;
  /** The API server as the manager's ServiceAccount (asked each sweep); undefined without a token. */
  api: () => WorkloadApi | undefined;
  log: (o: object) => void;
  now?: () => number;
}

export interface Reaper {
  /** Records a heartbeat. */
  heard(req: HeartbeatRequest): void;
  /** One sweep now; resolves with the delay before the next. */
  sweep(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * The ports of Service `name` that `records` switch to an agent: what stays switched once the
 * others are restored.
 */

/**
 * Points the Service port an engagement switched back at the app, before the agent it points
 * at goes: unless another engagement, of any workload, still switches that port. The ports
 * others switch stay switched. True when it applied something.
 */
async function releaseService(
  api: WorkloadApi,
  namespace: string,
  own: NonNullable<EngagementRecord['service']>,
  remaining: readonly EngagementRecord[],
): Promise<boolean> {
  // The record is read from an annotation anyone may edit.
  if (typeof own.name !== 'string' || own.name === '') return false;
  const switches = serviceSwitches(remaining, own.name);
  if (switches.some((s) => s.port === own.port && s.protocol === own.protocol)) return false;
  const service = await api.readService(namespace, own.name);
  if (service === undefined) return false;
  const plan =
    switches.length === 0 ? serviceRestore(service) : planServiceSwitch(service, switches);
  if (plan === undefined) return false;
  await api.applyService(plan.apply, FIELD_MANAGER);
  if (plan.handover !== undefined) await api.applyService(plan.handover, FIELD_MANAGER_RESTORED);
  return true;
}

/** The reaper without its timer: `sweep()` is called by startReaper, or by a test. */
export function createReaper(opts: ReaperOptions): Reaper {
  const now = opts.now ?? Date.now;
  const startedAt = now();
  const heard = new Map<string, Heard>();
  // When each engagement was first listed, by kind, keyed by workload, session and since.
  const noticed = new Map<AppsKind, Map<string, number>>();
  const lastError = new Map<string, string>();
  let noTokenLogged = false;

  /** Logs an error once until it changes or clears, so a sweep every few seconds is quiet. */
  const report = (what: string, err: unknown): void => {
    const error = messageOf(err);
    if (lastError.get(what) === error) return;
    lastError.set(what, error);
    opts.log({ msg: `reaper: ${what} failed`, error });
  };

  const listEngaged = async (api: WorkloadApi): Promise<Engaged[]> => {
    const found: Engaged[] = [];
    const at = now();
    for (const kind of appsKinds) {
      let items;
      try {
        items = await api.list(kind);
        lastError.delete(`listing ${kind}s`);
      } catch (err) {
        // The others still count; this kind's engagements keep when they were noticed.
        report(`listing ${kind}s`, err);
        continue;
      }
      const before = noticed.get(kind) ?? new Map<string, number>();
      const seen = new Map<string, number>();
      for (const meta of items) {
        const raw = meta.annotations?.[ANNOTATION_ENGAGEMENTS];
        // A Deployment's ReplicaSets copy its annotations: the Deployment is what is engaged.
        if (raw === undefined || meta.ownerReferences?.some((o) => o.controller === true)) {
          continue;
        }
        const engagements: Engagements = parseEngagements(raw);
        for (const [session, record] of Object.entries(engagements)) {
          const key = JSON.stringify([meta.namespace, meta.name, session, record.since]);
          const first = before.get(key) ?? at;
          seen.set(key, first);
          found.push({
            kind,
            namespace: meta.namespace,
            name: meta.name,
            session,
            record,
            noticed: first,
          });
        }
      }
      noticed.set(kind, seen);
    }
    return found;
  };

  /**
   * Restores `e`, true when it did. `others` are the engagements of the namespace's other
   * workloads that stay, as listed: they may still switch the same Service port.
   */
  const restore = async (
    api: WorkloadApi,
    e: Expired,
    others: readonly Engaged[],
  ): Promise<boolean> => {
    const id = `${e.kind.toLowerCase()}/${e.name}`;
    const w = await api.read(e.kind, e.namespace, e.name);
    if (w === undefined) return false;
    const record = parseEngagements(w.metadata.annotations?.[ANNOTATION_ENGAGEMENTS])[e.session];
    // Left, or engaged afresh, since the list; or the session spoke up meanwhile.
    if (record?.since !== e.record.since) return false;
    if ((heard.get(e.session)?.at ?? 0) > e.lastSeen) return false;
    const next = planLeave(w, e.session);
    if (next === undefined) return false;
    const released =
      record.service !== undefined &&
      (await releaseService(api, e.namespace, record.service, [
        ...Object.values(next.remaining),
        ...others.map((o) => o.record),
      ]));
    await api.apply(next.apply, FIELD_MANAGER);
    if (next.handover !== undefined) await api.apply(next.handover, FIELD_MANAGER_RESTORED);
    opts.log({
      msg: 'reaper: restored the engagement of a silent session',
      workload: id,
      namespace: e.namespace,
      session: e.session,
      mode: e.record.mode,
      silentSeconds: Math.round((now() - e.lastSeen) / 1000),
      grace: e.grace,
      restored: Object.keys(next.remaining).length === 0,
      ...(released ? { service: record.service?.name } : {}),
      // A bare ReplicaSet does not roll its pods on a new template, and the manager may not
      // delete pods: its agent pods stay until they are replaced.
      ...(e.kind === 'ReplicaSet'
        ? { note: 'its running pods keep the agent until replaced' }
        : {}),
    });
    return true;
  };

  return {
    heard(req) {
      const at = now();
      heard.set(req.session, { at, ...(req.grace === undefined ? {} : { grace: req.grace }) });
      for (const [session, h] of heard) {
        if (at - h.at > MAX_GRACE_SECONDS * 1000) heard.delete(session);
      }
    },
    async sweep() {
      const api = opts.api();
      if (api === undefined) {
        if (!noTokenLogged) {
          opts.log({ msg: 'reaper: no ServiceAccount token, so no restoring of silent sessions' });
          noTokenLogged = true;
        }
        return MAX_SWEEP_MS;
      }
      const engaged = await listEngaged(api);
      const { restore: expired, nextSweepMs } = reapDecision({
        engaged,
        heard,
        namespace: opts.namespace,
        startedAt,
        now: now(),
      });
      // Restored in this sweep: they no longer hold a Service port for those restored after.
      const gone = new Set<string>();
      const key = (o: Engaged): string => JSON.stringify([o.kind, o.namespace, o.name, o.session]);
      for (const e of expired) {
        const what = `restoring ${e.kind.toLowerCase()}/${e.name} in ${e.namespace} for session ${e.session}`;
        const others = engaged.filter(
          (o) =>
            o.namespace === e.namespace &&
            (o.kind !== e.kind || o.name !== e.name) &&
            !gone.has(key(o)),
        );
        try {
          if (await restore(api, e, others)) gone.add(key(e));
          lastError.delete(what);
        } catch (err) {
          report(what, err);
        }
      }
      return nextSweepMs;
    },
    stop: () => Promise.resolve(),
  };
}

/** The reaper with its timer: a sweep now, then each when the last one says. */
export function startReaper(opts: ReaperOptions): Reaper {
  const reaper = createReaper(opts);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const loop = (): void => {
    running = reaper
      .sweep()
      .catch((err: unknown) => {
        opts.log({ msg: 'reaper: sweep failed', error: messageOf(err) });
        return MAX_SWEEP_MS;
      })
      .then((ms) => {
        if (!stopped) timer = setTimeout(loop, ms);
      });
  };
  opts.log({ msg: 'reaper started', namespace: opts.namespace });
  loop();
  return {
    heard: (req) => {
      reaper.heard(req);
    },
    sweep: () => reaper.sweep(),
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
