import type { DockerEngine } from '../docker/engine.js';
import { loadKubeConfig, type KubeSelection } from '../k8s/kubeconfig.js';
import { listWorkloads, type Workload } from '../k8s/workloads.js';
import { LABEL_CONTEXT, LABEL_NAMESPACE } from './naming.js';
import { listSessions } from './status.js';

export interface ListResult {
  context: string;
  namespace: string;
  workloads: Workload[];
}

/**
 * The workloads of a namespace: the one asked for, else the connected session's (when one
 * session runs for this context), else the context's own.
 */
export async function listNamespaceWorkloads(
  engine: DockerEngine,
  kube: KubeSelection,
  namespace: string | undefined,
): Promise<ListResult> {
  const { kc, target } = loadKubeConfig(kube);
  let ns = namespace;
  if (ns === undefined) {
    const sessions = (await listSessions(engine).catch(() => [])).filter(
      (s) => s.running && s.labels[LABEL_CONTEXT] === target.context,
    );
    ns = sessions.length === 1 ? sessions[0]?.labels[LABEL_NAMESPACE] : undefined;
  }
  ns ??= target.namespace;
  return { context: target.context, namespace: ns, workloads: await listWorkloads(kc, target, ns) };
}
