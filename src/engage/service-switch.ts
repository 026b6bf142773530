/**
 * How an intercept or wiretap gets a Service's traffic without any capability in the pod: the
 * Service port's targetPort is pointed at the agent's own port (`listen`), and pointed back
 * exactly on leave. Pure: the server-side apply configurations (field manager `tp`, forced)
 * that src/k8s/services.ts and tp-manager's reaper apply.
 *
 * Each apply states the whole of tp's intent on the Service, as for workloads
 * (docs/engagements.md): the ports switched now, the original targetPorts of those switched
 * back, and the annotation that remembers the originals while any port is switched.
 */
import { ANNOTATION_ORIGINAL_TARGETS, FIELD_MANAGER_RESTORED } from '../lib/k8s-keys.js';
import type { EngagementRecord } from './plan.js';
import type { ServiceObject } from './workload.js';

export interface ServicePortApply {
  port: number;
  protocol: string;
  targetPort: number | string;
}

export interface ServiceApply {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  /** Absent when tp has no port of the Service to state. */
  spec?: { ports: ServicePortApply[] };
}

/** A Service port pointed at the agent. */
export interface PortSwitch {
  port: number;
  protocol: string;
  listen: number;
}

/** The targetPorts as they were before tp switched them, by `<port>/<protocol>`. */
export type OriginalTargets = Record<string, number | string>;

/** What to apply: `apply` by `tp`, then `handover`, when there is one, by `tp-restored`. */
export interface ServiceSwitchPlan {
  apply: ServiceApply;
  handover?: ServiceApply;
}

export const portKey = (port: number, protocol = 'TCP'): string => `${port}/${protocol}`;

/** The originals annotation, read without trusting it: a malformed one counts as none. */
export function readOriginalTargets(service: ServiceObject): OriginalTargets {
  const raw = service.metadata.annotations?.[ANNOTATION_ORIGINAL_TARGETS];
  if (raw === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
  return Object.fromEntries(
    Object.entries(parsed as Record<string, unknown>).filter(
      ([k, v]) =>
        /^\d+\/[A-Z]+$/.test(k) &&
        ((typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 65535) ||
          (typeof v === 'string' && v !== '')),
    ),
  ) as OriginalTargets;
}

/** The server-side apply configuration that points `switches` at the agent, and nothing else. */
export function switchApply(service: ServiceObject, switches: readonly PortSwitch[]): ServiceApply {
  return planServiceSwitch(service, switches).apply;
}

/**
 * Points every port tp switched back at its original targetPort and drops the annotation.
 * Undefined when the Service carries no annotation: tp switched nothing of it.
 */
export function serviceRestore(service: ServiceObject): ServiceSwitchPlan | undefined {
  if (service.metadata.annotations?.[ANNOTATION_ORIGINAL_TARGETS] === undefined) return undefined;
  return planServiceSwitch(service, []);
}

/**
 * What tp applies for `switches`, the complete set of the Service's ports tp wants pointed at
 * an agent now: a port switched before and not in `switches` goes back to its original
 * targetPort. Ports the Service no longer has are left out, so none is brought back.
 */
export function planServiceSwitch(
  service: ServiceObject,
  switches: readonly PortSwitch[],
): ServiceSwitchPlan {
  const ports = service.spec.ports ?? [];
  const current = new Map(
    ports.map((p) => [portKey(p.port, p.protocol), p.targetPort ?? p.port] as const),
  );
  const stored = readOriginalTargets(service);
  const originals: OriginalTargets = {};
  const stated: ServicePortApply[] = [];
  for (const s of switches) {
    const key = portKey(s.port, s.protocol);
    const now = current.get(key);
    if (now === undefined || originals[key] !== undefined) continue;
    // Switched before: what it points at now is tp's doing, the first original is the one.
    originals[key] = stored[key] ?? now;
    stated.push({ port: s.port, protocol: s.protocol, targetPort: s.listen });
  }
  const restored: ServicePortApply[] = Object.entries(stored)
    .filter(([key]) => originals[key] === undefined && current.has(key))
    .map(([key, targetPort]) => ({ ...fromKey(key), targetPort }));
  stated.push(...restored);
  const apply: ServiceApply = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: service.metadata.name,
      namespace: service.metadata.namespace,
      ...(Object.keys(originals).length === 0
        ? {}
        : { annotations: { [ANNOTATION_ORIGINAL_TARGETS]: JSON.stringify(originals) } }),
    },
    ...(stated.length === 0 ? {} : { spec: { ports: stated } }),
  };
  if (restored.length === 0) return { apply };
  return { apply, handover: handover(service, restored, originals, current) };
}

/**
 * The restored values, once applied by `tp` alone, would be removed by its next apply that
 * does not state them (the first owner lost them to tp's forced switch), and the port would
 * fall back to targetPort = port. So `tp-restored` states them too, and keeps stating what it
 * restored before: an apply of its own without those would remove them just the same.
 */
function handover(
  service: ServiceObject,
  restored: readonly ServicePortApply[],
  switched: OriginalTargets,
  current: ReadonlyMap<string, number | string>,
): ServiceApply {
  const ports = [...restored];
  const done = new Set(restored.map((p) => portKey(p.port, p.protocol)));
  for (const key of ownedTargetPorts(service, FIELD_MANAGER_RESTORED)) {
    const now = current.get(key);
    if (now === undefined || done.has(key) || switched[key] !== undefined) continue;
    done.add(key);
    ports.push({ ...fromKey(key), targetPort: now });
  }
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: service.metadata.name, namespace: service.metadata.namespace },
    spec: { ports },
  };
}

/** The ports whose targetPort `manager` owns by apply, as managedFields say (`<port>/<protocol>`). */
export function ownedTargetPorts(service: ServiceObject, manager: string): string[] {
  const owned: string[] = [];
  for (const entry of service.metadata.managedFields ?? []) {
    if (entry.manager !== manager || entry.operation !== 'Apply') continue;
    const ports = field(field(entry.fieldsV1, 'f:spec'), 'f:ports');
    if (ports === undefined) continue;
    for (const [k, v] of Object.entries(ports)) {
      if (!k.startsWith('k:') || field(v, 'f:targetPort') === undefined) continue;
      try {
        const id = JSON.parse(k.slice(2)) as { port?: unknown; protocol?: unknown };
        if (typeof id.port === 'number' && typeof id.protocol === 'string')
          owned.push(portKey(id.port, id.protocol));
      } catch {
        // Not a list key tp can read: nothing it owns there.
      }
    }
  }
  return owned;
}

function field(obj: unknown, name: string): Record<string, unknown> | undefined {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const v = (obj as Record<string, unknown>)[name];
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
}

function fromKey(key: string): { port: number; protocol: string } {
  const [port = '', protocol = 'TCP'] = key.split('/');
  return { port: Number(port), protocol };
}

/** The ports of Service `name` that `records` point at their agents, each once. */
export function serviceSwitches(records: readonly EngagementRecord[], name: string): PortSwitch[] {
  const out: PortSwitch[] = [];
  for (const { service: s } of records) {
    if (s?.name !== name) continue;
    if (!out.some((o) => o.port === s.port && o.protocol === s.protocol))
      out.push({ port: s.port, protocol: s.protocol, listen: s.listen });
  }
  return out;
}
