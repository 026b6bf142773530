import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { TpError } from '../lib/errors.js';
import { clusterError } from './cluster.js';
import type { KubeTarget } from './kubeconfig.js';

/** A usage error naming --namespace when the namespace does not exist. */
export async function requireNamespace(
  kc: KubeConfig,
  target: KubeTarget,
  namespace: string,
): Promise<void> {
  try {
    await kc.makeApiClient(CoreV1Api).readNamespace({ name: namespace });
  } catch (err) {
    if ((err as { code?: unknown }).code === 404) {
      throw new TpError(
        'usage',
        `Namespace "${namespace}" does not exist in context "${target.context}".`,
        {
          code: 'NAMESPACE_UNKNOWN',
          fix: 'Pass an existing one with --namespace (list them with `kubectl get namespaces`).',
        },
      );
    }
    // Reading a namespace may be forbidden where working in it is allowed: go on.
    if ((err as { code?: unknown }).code === 403) return;
    throw clusterError(err, target);
  }
}
