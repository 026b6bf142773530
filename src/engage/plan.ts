/**
 * The pure part of an engagement (docs/engagements.md): from a workload as the API server
 * returns it, a mode and the command's flags, what tp applies to the workload, which ports
 * the agent takes and where they go locally. No I/O here: src/k8s/engage.ts applies the
 * result, src/engage/ orchestrates.
 */
import type { EngageMode } from '../contract/agent.js';
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
}

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
  const ports = req.mode === 'replace' ? planPorts(target, req.ports.map(parsePortFlag)) : [];
  if (req.mode === 'ingest' && req.ports.length > 0) {
    throw new TpError('usage', 'tp ingest reroutes no traffic, so it takes no --port.', {
      code: 'PORT_NOT_ALLOWED',
      fix: 'Leave out --port, or use tp replace to take the traffic.',
    });
  }
  const current = readEngagements(workload);
  checkConflicts(workload, current, req);
  const record: EngagementRecord = {
    mode: req.mode,
    container: target.name,
    ports,
    since: req.now,
    ...(req.by === undefined ? {} : { by: req.by }),
    ...(req.grace === undefined ? {} : { grace: req.grace }),
    ...(req.manager === undefined ? {} : { manager: req.manager }),
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
      : ['Deployment', 'StatefulSet', 'ReplicaSet'];
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
  const sidecar = sidecarAgent(target(first.container), agentImage);
  return { ...base, metadata: { ...base.metadata, annotations }, spec: podSpec([sidecar]) };
}

function podSpec(containers: Record<string, unknown>[]): NonNullable<WorkloadApply['spec']> {
  return { template: { spec: { containers } } };
}
