/**
 * Which pods of an engaged workload run its agent now, as the daemon sees them through the
 * API server (a plain pod list, no client library in the daemon). Another session's
 * engagement can roll the workload, and a node can lose a pod: the daemon's streams follow.
 */
import type { EngagementStart } from '../contract/control.js';
import { getJson, type KubeTransport } from '../k8s/transport.js';

interface PodList {
  items: {
    metadata: { name: string; deletionTimestamp?: string };
    spec: { containers: { name: string; image?: string }[] };
    status?: { conditions?: { type: string; status: string }[] };
  }[];
}

/** The Ready pods that run the agent, not being deleted, by name, sorted. */
export function agentPods(list: PodList, follow: NonNullable<EngagementStart['follow']>): string[] {
  return list.items
    .filter(
      (p) =>
        p.metadata.deletionTimestamp === undefined &&
        p.spec.containers.some((c) => c.name === follow.container && c.image === follow.image) &&
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
    )
    .map((p) => p.metadata.name)
    .sort();
}

export function listAgentPods(
  transport: KubeTransport,
): (namespace: string, follow: NonNullable<EngagementStart['follow']>) => Promise<string[]> {
  return async (namespace, follow) => {
    const query = new URLSearchParams({ labelSelector: follow.selector });
    const list = await getJson<PodList>(
      transport,
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?${query.toString()}`,
    );
    return agentPods(list, follow);
  };
}
