/**
 * The pure part of an engagement (docs/engagements.md): from a workload as the API server
 * returns it, a mode and the command's flags, what tp applies to the workload, which ports
 * the agent takes and where they go locally. No I/O here: src/k8s/engage.ts applies the
 * result, src/engage/ orchestrates.
 */
import type { EngageMode, HttpFilter, ProxyPort } from '../contract/agent.js';
import { TpError } from '../lib/errors.js';
import { ANNOTATION_ENGAGEMENTS, ANNOTATION_ORIGINAL } from '../lib/k8s-keys.js';
import {
  SIDECAR,
  apiDataVolumes,
  inPlaceAgent,
  originalFields,
  sidecarAgent,
} from './agent-container.js';
import { parsePortFlag, planPorts, type PlannedPort } from './ports.js';
import type { Container, WorkloadObject } from './workload.js';

export type { PlannedPort };
export { SIDECAR };

export interface EngagementRecord {
  mode: EngageMode;
  container: string;
  ports: PlannedPort[];
  since: string;
  /** Who engaged it, as the engaging tp describes its user. */
  by?: string;
  /**
   * Seconds without a heartbeat from the session after which tp-manager restores what it
   * engages (TP_ENGAGEMENT_GRACE when it engaged).
   */
  grace?: number;
  /** The namespace of the tp-manager the session's daemon sends its heartbeats to. */
  manager?: string;
  /** intercept, wiretap: what of the port's traffic the session takes; none: all of it. */
  filter?: HttpFilter;
  /** intercept, wiretap: what the Service port speaks (its appProtocol, else its name). */
  appProtocol?: string;
  /**
   * intercept, wiretap: the Service port whose targetPort tp points at the agent's `listen`
   * port (src/engage/service-switch.ts), for a restore to point it back.
   */
  service?: { name: string; port: number; protocol: string; listen: number };
}

/** The engagements on a workload, by session name. */
export type Engagements = Record<string, EngagementRecord>;

export interface EngageRequest {
  mode: EngageMode;
  session: string;
  container?: string;
  /** `--port` flags as given: `local[:remote][/tcp|/udp]`. */
  ports: string[];
  agentImage: string;
  by?: string;
  now: string;
  /** The session's grace in seconds, for tp-manager (EngagementRecord.grace). */
  grace?: number;
  /** Where the session's tp-manager lives (EngagementRecord.manager). */
  manager?: string;
  /** intercept, wiretap: the Service port chosen (src/engage/service-ports.ts) and the filter. */
  tap?: TapRequest;
}

export interface TapRequest {
  service: string;
  servicePort: number;
  /** The app's port the Service's targetPort leads to, and where it goes locally. */
  containerPort: number;
  local: number;
  portName?: string;
  appProtocol?: string;
  filter?: HttpFilter;
}

/** The first port the agent tries for a proxied port: below the ephemeral range, clear of most. */
export const PROXY_PORT_BASE = 9900;

export interface Plan {
  container: string;
  ports: PlannedPort[];
  engagements: Engagements;
  /** The server-side apply configuration for the workload (field manager `tp`, forced). */
  apply: WorkloadApply;
}

export interface WorkloadApply {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  spec?: { template: { spec: { containers: Record<string, unknown>[] } } };
}

export function planEngagement(workload: WorkloadObject, req: EngageRequest): Plan {
  checkWorkload(workload, req.mode);
  const containers = workload.spec.template.spec.containers.filter((c) => c.name !== SIDECAR);
  const target = pickContainer(containers, req.container, workload);
  const tap = tapOf(req);
  const ports =
    req.mode === 'replace'
      ? planPorts(target, req.ports.map(parsePortFlag))
      : tap === undefined
        ? []
        : [
            {
              port: tap.containerPort,
              protocol: 'TCP' as const,
              local: tap.local,
              ...(tap.portName === undefined ? {} : { name: tap.portName }),
            },
          ];
  if (req.mode === 'ingest' && req.ports.length > 0) {
    throw new TpError('usage', 'tp ingest reroutes no traffic, so it takes no --port.', {
      code: 'PORT_NOT_ALLOWED',
      fix: 'Leave out --port, or use tp replace to take the traffic.',
    });
  }
  const current = readEngagements(workload);
  checkConflicts(workload, current, req);
  if (tap !== undefined) checkTapConflicts(workload, current, req.mode, tap);
  const record: EngagementRecord = {
    mode: req.mode,
    container: target.name,
    ports,
    since: req.now,
    ...(req.by === undefined ? {} : { by: req.by }),
    ...(req.grace === undefined ? {} : { grace: req.grace }),
    ...(req.manager === undefined ? {} : { manager: req.manager }),
    ...(tap === undefined
      ? {}
      : {
          ...(tap.filter === undefined ? {} : { filter: tap.filter }),
          ...(tap.appProtocol === undefined ? {} : { appProtocol: tap.appProtocol }),
          service: {
            name: tap.service,
            port: tap.servicePort,
            protocol: 'TCP',
            listen: proxyListenPort(workload, current, tap),
          },
        }),
  };
  const engagements = { ...current, [req.session]: record };
  return {
    container: target.name,
    ports,
    engagements,
    apply: desiredApply(workload, engagements, req.agentImage),
  };
}

/**
 * What tp applies once `session` leaves: the workload as the remaining engagements want it,
 * or, when none remain, the original values of what tp changed. Undefined when `session`
 * has no engagement on the workload.
 */
export function planLeave(
  workload: WorkloadObject,
  session: string,
): { apply: WorkloadApply; remaining: Engagements; handover?: WorkloadApply } | undefined {
  const current = readEngagements(workload);
  if (current[session] === undefined) return undefined;
  const remaining = Object.fromEntries(Object.entries(current).filter(([s]) => s !== session));
  // Those who stay keep the agent they have: a replace holds the workload alone, so what
  // remains is a sidecar.
  const sidecar = workload.spec.template.spec.containers.find((c) => c.name === SIDECAR);
  const apply = desiredApply(workload, remaining, sidecar?.image ?? '');
  // The restored values, once applied by `tp`, are its alone: applied again by another
  // manager (FIELD_MANAGER_RESTORED) they stay when tp next applies without them.
  const restoresFields = Object.keys(remaining).length === 0 && apply.spec !== undefined;
  return { apply, remaining, ...(restoresFields ? { handover: apply } : {}) };
}

/** The engagements annotation, read without trusting it: a malformed one counts as none. */
export function readEngagements(workload: WorkloadObject): Engagements {
  return parseEngagements(workload.metadata.annotations?.[ANNOTATION_ENGAGEMENTS]);
}

/** The engagements annotation's value, as readEngagements reads it. */
export function parseEngagements(raw: string | undefined): Engagements {
  if (raw === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    return Object.fromEntries(
      Object.entries(parsed as Record<string, unknown>).filter(([, v]) => isRecord(v)),
    ) as Engagements;
  } catch {
    return {};
  }
}

function isRecord(v: unknown): v is EngagementRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<EngagementRecord>;
  return (
    typeof r.mode === 'string' &&
    ['replace', 'ingest', 'intercept', 'wiretap'].includes(r.mode) &&
    typeof r.container === 'string' &&
    Array.isArray(r.ports)
  );
}

function checkWorkload(workload: WorkloadObject, mode: EngageMode): void {
  const { kind, metadata } = workload;
  const id = `${kind.toLowerCase()}/${metadata.name}`;
  const kinds =
    mode === 'ingest'
      ? ['Deployment', 'StatefulSet', 'ReplicaSet', 'DaemonSet']
      : ['Deployment', 'StatefulSet', 'ReplicaSet', ...(mode === 'replace' ? [] : ['DaemonSet'])];
  if (!kinds.includes(kind)) {
    throw new TpError('usage', `tp ${mode} cannot engage ${id}: it works on ${kinds.join(', ')}.`, {
      code: 'WORKLOAD_KIND',
      fix: `Engage the workload that owns the pods instead (\`tp list\` shows them).`,
    });
  }
  if (workload.spec.replicas === 0) {
    throw new TpError('state', `${id} is scaled to zero: there is no pod to engage.`, {
      code: 'WORKLOAD_SCALED_TO_ZERO',
      fix: `Scale it up first (\`kubectl scale ${id} --replicas=1 -n ${metadata.namespace}\`).`,
    });
  }
}

export function pickContainer(
  containers: readonly Container[],
  wanted: string | undefined,
  workload: WorkloadObject,
): Container {
  const id = `${workload.kind.toLowerCase()}/${workload.metadata.name}`;
  const names = containers.map((c) => c.name).join(', ');
  if (wanted !== undefined) {
    const found = containers.find((c) => c.name === wanted);
    if (found === undefined) {
      throw new TpError('usage', `${id} has no container ${wanted}; it has ${names}.`, {
        code: 'CONTAINER_UNKNOWN',
        fix: 'Name one of them with --container.',
      });
    }
    return found;
  }
  const [only, ...more] = containers;
  if (only === undefined) throw new Error(`${id} has no containers`);
  if (more.length > 0) {
    throw new TpError('usage', `${id} has several containers: ${names}.`, {
      code: 'CONTAINER_AMBIGUOUS',
      fix: 'Say which one with --container.',
    });
  }
  return only;
}

function checkConflicts(workload: WorkloadObject, current: Engagements, req: EngageRequest): void {
  const id = `${workload.kind.toLowerCase()}/${workload.metadata.name}`;
  const mine = current[req.session];
  if (mine !== undefined) {
    throw new TpError('state', `This session already ${past(mine.mode)} ${id}.`, {
      code: 'ALREADY_ENGAGED',
      fix: `End it first with \`tp leave ${workload.metadata.name}\`.`,
    });
  }
  const others = Object.entries(current);
  const replaced = others.find(([, e]) => e.mode === 'replace');
  const holder = (s: string, e: EngagementRecord): string =>
    `session ${s}${e.by === undefined ? '' : ` (${e.by})`}`;
  if (replaced !== undefined) {
    const [s, e] = replaced;
    throw new TpError('state', `${id} is replaced by ${holder(s, e)}.`, {
      code: 'WORKLOAD_HELD',
      fix: 'Wait until that session leaves, or ask its owner to run `tp leave`.',
    });
  }
  if (req.mode === 'replace' && others.length > 0) {
    const who = others.map(([s, e]) => `${holder(s, e)} (${e.mode})`).join(', ');
    throw new TpError('state', `${id} is engaged by ${who}: a replace would stop it for them.`, {
      code: 'WORKLOAD_HELD',
      fix: 'Wait until they leave, or use tp ingest, which several sessions can share.',
    });
  }
}

function tapOf(req: EngageRequest): TapRequest | undefined {
  if (req.mode !== 'intercept' && req.mode !== 'wiretap') return undefined;
  if (req.tap === undefined) throw new Error(`tp ${req.mode} needs a Service port`);
  return req.tap;
}

const filterKey = (f: HttpFilter | undefined): string =>
  f === undefined
    ? ''
    : JSON.stringify([
        f.headers.map((h) => `${h.name}=${h.value}`).sort(),
        [...f.pathPrefixes].sort(),
      ]);

/**
 * Intercepts of one port must each take requests the others do not: one without a filter
 * takes every connection, so it shares the port with no other intercept, and two with the
 * same filter would race for the same requests. Wiretaps only copy, so any number may run.
 */
function checkTapConflicts(
  workload: WorkloadObject,
  current: Engagements,
  mode: EngageMode,
  tap: TapRequest,
): void {
  if (mode !== 'intercept') return;
  const id = `${workload.kind.toLowerCase()}/${workload.metadata.name}`;
  for (const [s, e] of Object.entries(current)) {
    if (e.mode !== 'intercept' || e.ports[0]?.port !== tap.containerPort) continue;
    const who = `session ${s}${e.by === undefined ? '' : ` (${e.by})`}`;
    const clash =
      e.filter === undefined
        ? `${who} intercepts every connection to port ${tap.containerPort} of ${id}`
        : tap.filter === undefined
          ? `${who} intercepts some requests to port ${tap.containerPort} of ${id}, so it cannot all be taken`
          : filterKey(e.filter) === filterKey(tap.filter)
            ? `${who} already intercepts port ${tap.containerPort} of ${id} with the same filter`
            : undefined;
    if (clash !== undefined) {
      throw new TpError('state', `${clash}.`, {
        code: 'INTERCEPT_CONFLICT',
        fix:
          tap.filter === undefined || e.filter === undefined
            ? 'Intercept with an --http-header filter of your own (e.g. --http-header x-user=<you>), or wait until it leaves.'
            : 'Use a filter of your own (e.g. --http-header x-user=<you>), or use tp wiretap to get a copy.',
      });
    }
  }
}

/**
 * Where the agent listens for a Service port: where it already does when another session
 * taps the same port (the Service points there), else the first port from PROXY_PORT_BASE
 * that no container of the pod declares and no other proxied port takes.
 */
function proxyListenPort(workload: WorkloadObject, current: Engagements, tap: TapRequest): number {
  const records = Object.values(current);
  const same = records.find(
    (e) => e.service?.name === tap.service && e.service.port === tap.servicePort,
  );
  if (same?.service !== undefined) return same.service.listen;
  const taken = new Set<number>([
    ...workload.spec.template.spec.containers.flatMap((c) =>
      (c.ports ?? []).map((p) => p.containerPort),
    ),
    ...records.flatMap((e) => (e.service === undefined ? [] : [e.service.listen])),
  ]);
  let port = PROXY_PORT_BASE;
  while (taken.has(port)) port += 1;
  return port;
}

/** The proxied ports the engagements want from the sidecar, one per app port. */
export function proxiesOf(engagements: Engagements): ProxyPort[] {
  const out = new Map<number, ProxyPort>();
  for (const e of Object.values(engagements)) {
    const target = e.ports[0]?.port;
    if (e.service === undefined || target === undefined || out.has(target)) continue;
    out.set(target, {
      listen: e.service.listen,
      target,
      ...(e.appProtocol === undefined ? {} : { appProtocol: e.appProtocol }),
    });
  }
  return [...out.values()].sort((a, b) => a.listen - b.listen);
}

function past(mode: EngageMode): string {
  return {
    replace: 'replaced',
    ingest: 'ingested',
    intercept: 'intercepted',
    wiretap: 'wiretapped',
  }[mode];
}

/** The apply configuration that states everything tp wants on the workload for `engagements`. */
function desiredApply(
  workload: WorkloadObject,
  engagements: Engagements,
  agentImage: string,
): WorkloadApply {
  const base: WorkloadApply = {
    apiVersion: workload.apiVersion,
    kind: workload.kind,
    metadata: { name: workload.metadata.name, namespace: workload.metadata.namespace },
  };
  const stored = workload.metadata.annotations?.[ANNOTATION_ORIGINAL];
  const original = stored === undefined ? undefined : (JSON.parse(stored) as Container);
  const entries = Object.values(engagements);
  if (entries.length === 0) {
    // The original values of what tp changed, and nothing else: whatever else tp alone stated
    // (the sidecar, the annotations, fields the container lacked) is removed by the server.
    return original === undefined
      ? base
      : { ...base, spec: { template: { spec: { containers: [{ ...original }] } } } };
  }
  const annotations: Record<string, string> = {
    [ANNOTATION_ENGAGEMENTS]: JSON.stringify(engagements),
  };
  const replace = entries.find((e) => e.mode === 'replace');
  const containers = workload.spec.template.spec.containers;
  const target = (name: string): Container => {
    const c = containers.find((x) => x.name === name);
    if (c === undefined) throw new Error(`container ${name} is gone from the workload`);
    return c;
  };
  if (replace !== undefined) {
    // The original is what the container was before tp first changed it, not what it is now.
    const before = original ?? originalFields(target(replace.container));
    annotations[ANNOTATION_ORIGINAL] = JSON.stringify(before);
    const agent = inPlaceAgent(
      target(replace.container),
      replace.ports,
      agentImage,
      apiDataVolumes(workload),
    );
    return { ...base, metadata: { ...base.metadata, annotations }, spec: podSpec([agent]) };
  }
  const first = entries[0];
  if (first === undefined) throw new Error('no engagement');
  const sidecar = sidecarAgent(target(first.container), agentImage, {
    writable: entries.some((e) => e.mode === 'intercept'),
    proxies: proxiesOf(engagements),
    readOnlyVolumes: apiDataVolumes(workload),
    podRunAsUser: workload.spec.template.spec.securityContext?.runAsUser,
  });
  return { ...base, metadata: { ...base.metadata, annotations }, spec: podSpec([sidecar]) };
}

function podSpec(containers: Record<string, unknown>[]): NonNullable<WorkloadApply['spec']> {
  return { template: { spec: { containers } } };
}
