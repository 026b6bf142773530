import { SIDECAR } from '../engage/agent-container.js';
import type { HttpFilter } from '../contract/agent.js';
import { parseHttpFilter } from '../contract/http-filter.js';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Container,
  type V1ObjectMeta,
} from '@kubernetes/client-node';
import { TpError } from '../lib/errors.js';
import { ANNOTATION_ENGAGEMENTS } from '../lib/k8s-keys.js';
import { statusMessage, withTimeout } from './api-errors.js';
import { clusterError } from './cluster.js';
import type { KubeTarget } from './kubeconfig.js';

/**
 * The annotation a workload carries while tp sessions engage it: JSON, by session, each with at
 * least a `mode` (src/engage/plan.ts writes it). Anything can edit annotations, so readers
 * parse it with `parseEngagements`.
 */
export const ENGAGEMENT_ANNOTATION = ANNOTATION_ENGAGEMENTS;

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'ReplicaSet' | 'DaemonSet';

/** The order `listWorkloads` sorts kinds in: the usual ones first. */
export const workloadKinds: readonly WorkloadKind[] = [
  'Deployment',
  'StatefulSet',
  'ReplicaSet',
  'DaemonSet',
];

export type WorkloadState =
  | 'ready to engage'
  | 'engaged'
  // Fewer ready pods than desired: an engagement would wait on the rollout.
  | 'not ready'
  // No pods wanted (replicas 0, or a DaemonSet that matches no node): nothing to engage.
  | 'scaled to zero';

export type PortProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface ContainerPort {
  name?: string;
  port: number;
  protocol: PortProtocol;
}

export interface WorkloadContainer {
  name: string;
  ports: ContainerPort[];
}

export interface Engagement {
  /** replace, intercept, wiretap or ingest. */
  mode: string;
  session: string;
  /** Who engaged it, as the engaging tp describes its user. */
  by?: string;
  /** intercept, wiretap: the Service port taken, and what of its traffic. */
  service?: string;
  filter?: HttpFilter;
}

export interface Workload {
  kind: WorkloadKind;
  name: string;
  namespace: string;
  replicas: { desired: number; ready: number };
  /** The pod template's containers (not its init containers), in template order. */
  containers: WorkloadContainer[];
  state: WorkloadState;
  /** The sessions engaging it, by session name. */
  engagements: Engagement[];
  /** Why the engagement annotation could not be read; the workload then counts as not engaged. */
  engagementError?: string;
}

export type ParsedEngagements =
  { ok: true; engagements: Engagement[] } | { ok: false; reason: string };

/** Reads the engagements annotation's value without trusting it. */
export function parseEngagements(raw: string): ParsedEngagements {
  const bad = (why: string): ParsedEngagements => ({
    ok: false,
    reason: `annotation ${ENGAGEMENT_ANNOTATION} ${why}`,
  });
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return bad('is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return bad('is not a JSON object');
  }
  const engagements: Engagement[] = [];
  for (const [session, entry] of Object.entries(value as Record<string, unknown>)) {
    const { mode, by, filter, service } = (
      typeof entry === 'object' && entry !== null ? entry : {}
    ) as Record<string, unknown>;
    if (typeof mode !== 'string' || mode === '' || session === '') {
      return bad(`has an entry without a string "mode" (session "${session}")`);
    }
    const e: Engagement = { mode, session };
    if (typeof by === 'string') e.by = by;
    const svc = service as { name?: unknown; port?: unknown } | undefined;
    if (typeof svc?.name === 'string' && typeof svc.port === 'number')
      e.service = `${svc.name}:${svc.port}`;
    if (filter !== undefined) {
      try {
        e.filter = parseHttpFilter(filter, 'filter');
      } catch {
        return bad(`has a malformed filter (session "${session}")`);
      }
    }
    engagements.push(e);
  }
  return { ok: true, engagements };
}

interface RawWorkload {
  kind: WorkloadKind;
  metadata: V1ObjectMeta | undefined;
  containers: V1Container[] | undefined;
  desired: number;
  ready: number;
}

/**
 * The workloads of a namespace that tp can engage, sorted by kind (in `workloadKinds` order)
 * and name. ReplicaSets that a Deployment owns are left out, as Telepresence does: the
 * Deployment is what a user engages.
 */
export async function listWorkloads(
  kc: KubeConfig,
  target: KubeTarget,
  namespace: string,
  timeoutMs = 10_000,
): Promise<Workload[]> {
  const apps = kc.makeApiClient(AppsV1Api);
  const req = { namespace };
  const list = <T>(resource: string, call: () => Promise<T>): Promise<T> =>
    withTimeout(call(), timeoutMs).catch((err: unknown) => {
      throw listError(err, target, resource, namespace);
    });
  const [deployments, statefulSets, replicaSets, daemonSets] = await Promise.all([
    list('deployments', () => apps.listNamespacedDeployment(req)),
    list('statefulsets', () => apps.listNamespacedStatefulSet(req)),
    list('replicasets', () => apps.listNamespacedReplicaSet(req)),
    list('daemonsets', () => apps.listNamespacedDaemonSet(req)),
  ]);

  const raw: RawWorkload[] = [
    ...deployments.items.map((d) => ({
      kind: 'Deployment' as const,
      metadata: d.metadata,
      containers: d.spec?.template.spec?.containers,
      desired: d.spec?.replicas ?? 1,
      ready: d.status?.readyReplicas ?? 0,
    })),
    ...statefulSets.items.map((s) => ({
      kind: 'StatefulSet' as const,
      metadata: s.metadata,
      containers: s.spec?.template.spec?.containers,
      desired: s.spec?.replicas ?? 1,
      ready: s.status?.readyReplicas ?? 0,
    })),
    ...replicaSets.items
      .filter((r) => !(r.metadata?.ownerReferences ?? []).some((o) => o.kind === 'Deployment'))
      .map((r) => ({
        kind: 'ReplicaSet' as const,
        metadata: r.metadata,
        containers: r.spec?.template?.spec?.containers,
        desired: r.spec?.replicas ?? 1,
        ready: r.status?.readyReplicas ?? 0,
      })),
    ...daemonSets.items.map((d) => ({
      kind: 'DaemonSet' as const,
      metadata: d.metadata,
      containers: d.spec?.template.spec?.containers,
      desired: d.status?.desiredNumberScheduled ?? 0,
      ready: d.status?.numberReady ?? 0,
    })),
  ];

  // A namespace that does not exist lists as empty, so only an empty answer needs the check.
  if (raw.length === 0) await requireNamespace(kc, target, namespace, timeoutMs);

  return raw
    .map((w) => toWorkload(w, namespace))
    .sort(
      (a, b) =>
        workloadKinds.indexOf(a.kind) - workloadKinds.indexOf(b.kind) ||
        (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    );
}

function toWorkload(w: RawWorkload, namespace: string): Workload {
  const workload: Workload = {
    kind: w.kind,
    name: w.metadata?.name ?? '',
    namespace: w.metadata?.namespace ?? namespace,
    replicas: { desired: w.desired, ready: w.ready },
    engagements: [],
    // tp's own sidecar is no container of the user's.
    containers: (w.containers ?? [])
      .filter((c) => c.name !== SIDECAR)
      .map((c) => ({
        name: c.name,
        ports: (c.ports ?? []).map((p) => {
          // The API server admits only these three protocols and defaults to TCP.
          const protocol = (p.protocol ?? 'TCP') as PortProtocol;
          return p.name !== undefined && p.name !== ''
            ? { name: p.name, port: p.containerPort, protocol }
            : { port: p.containerPort, protocol };
        }),
      })),
    state:
      w.desired === 0 ? 'scaled to zero' : w.ready < w.desired ? 'not ready' : 'ready to engage',
  };
  const raw = w.metadata?.annotations?.[ENGAGEMENT_ANNOTATION];
  if (raw !== undefined) {
    const parsed = parseEngagements(raw);
    if (!parsed.ok) workload.engagementError = parsed.reason;
    else if (parsed.engagements.length > 0) {
      workload.engagements = parsed.engagements;
      workload.state = 'engaged';
    }
  }
  return workload;
}

async function requireNamespace(
  kc: KubeConfig,
  target: KubeTarget,
  namespace: string,
  timeoutMs: number,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  try {
    await withTimeout(core.readNamespace({ name: namespace }), timeoutMs);
  } catch (err) {
    const status = err instanceof ApiException ? err.code : undefined;
    if (status === 404) {
      throw new TpError(
        'usage',
        `There is no namespace "${namespace}" in context "${target.context}".`,
        {
          code: 'NAMESPACE_NOT_FOUND',
          fix: 'Pass an existing namespace with --namespace; `kubectl get namespaces` lists them.',
          cause: err,
        },
      );
    }
    // Users confined to their namespaces may not read Namespace objects; an empty list is
    // then the best answer there is.
    if (status === 403) return;
    throw clusterError(err, target);
  }
}

function listError(err: unknown, target: KubeTarget, resource: string, namespace: string): TpError {
  if (err instanceof ApiException && err.code === 403) {
    const detail = statusMessage(err);
    return new TpError(
      'config',
      `The API server of context "${target.context}" forbids listing ${resource} in namespace "${namespace}"${detail === undefined ? '' : `: ${detail}`}.`,
      {
        code: 'CLUSTER_FORBIDDEN',
        fix: `Ask for a Role that allows list on deployments, statefulsets, replicasets and daemonsets (apps) in "${namespace}"; \`kubectl auth can-i list ${resource} -n ${namespace}\` must say yes.`,
        cause: err,
      },
    );
  }
  return clusterError(err, target);
}
