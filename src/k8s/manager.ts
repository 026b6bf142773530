/**
 * tp-manager in the cluster: a Deployment running the agent image's `manager` role, with a
 * ServiceAccount that has no permissions and no token. No Service: the daemon reaches it only
 * through port-forward, and it listens on the pod's loopback.
 */
import {
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { TpError } from '../lib/errors.js';
import { LABEL_MANAGED, LABEL_VERSION } from '../lib/labels.js';
import { httpStatus } from './api-errors.js';
import { clusterError } from './cluster.js';
import type { KubeTarget } from './kubeconfig.js';

export const MANAGER_NAME = 'tp-manager';
export const MANAGER_PORT = 8181;
export const DEFAULT_MANAGER_NAMESPACE = 'tp-system';
const SELECTOR = { 'app.kubernetes.io/name': MANAGER_NAME };

export interface ManagerSpec {
  namespace: string;
  image: string;
  version: string;
}

export interface ManagerState {
  namespace: string;
  image: string;
  ready: boolean;
  pod?: string;
  podIP?: string;
}

function tpMeta(name: string, namespace: string | undefined, version: string) {
  return {
    name,
    ...(namespace === undefined ? {} : { namespace }),
    labels: {
      ...SELECTOR,
      'app.kubernetes.io/managed-by': 'tp',
      [LABEL_MANAGED]: 'true',
    },
    annotations: { [LABEL_VERSION]: version },
  };
}

export function managerDeployment(spec: ManagerSpec): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: tpMeta(MANAGER_NAME, spec.namespace, spec.version),
    spec: {
      replicas: 1,
      selector: { matchLabels: SELECTOR },
      strategy: { type: 'Recreate' },
      template: {
        metadata: { labels: { ...SELECTOR, [LABEL_MANAGED]: 'true' } },
        spec: {
          serviceAccountName: MANAGER_NAME,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 5,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 },
          containers: [
            {
              name: 'manager',
              image: spec.image,
              imagePullPolicy: 'IfNotPresent',
              args: ['manager'],
              env: [
                { name: 'TP_MANAGER_PORT', value: String(MANAGER_PORT) },
                {
                  name: 'TP_POD_NAMESPACE',
                  valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
                },
                { name: 'TP_POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
              ],
              resources: {
                requests: { cpu: '10m', memory: '32Mi' },
                limits: { memory: '256Mi' },
              },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
        },
      },
    },
  };
}

export class ManagerClient {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;

  constructor(
    kc: KubeConfig,
    private readonly target: KubeTarget,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
  }

  /** The manager as it is now, or undefined when it is not installed. */
  async state(namespace: string): Promise<ManagerState | undefined> {
    const dep = await this.readDeployment(namespace);
    if (dep === undefined) return undefined;
    const image = dep.spec?.template.spec?.containers[0]?.image ?? '';
    const pod = await this.readyPod(namespace, image);
    const state: ManagerState = { namespace, image, ready: pod !== undefined };
    if (pod?.metadata?.name !== undefined) state.pod = pod.metadata.name;
    if (pod?.status?.podIP !== undefined) state.podIP = pod.status.podIP;
    return state;
  }

  /** Creates or updates the manager; returns once a pod with `spec.image` is ready. */
  async install(
    spec: ManagerSpec,
    onStep: (msg: string) => void,
    timeoutMs = 120_000,
  ): Promise<ManagerState> {
    const { namespace } = spec;
    await this.ensure(
      () => this.core.readNamespace({ name: namespace }),
      () =>
        this.core.createNamespace({
          body: { metadata: tpMeta(namespace, undefined, spec.version) },
        }),
    );
    await this.ensure(
      () => this.core.readNamespacedServiceAccount({ name: MANAGER_NAME, namespace }),
      () =>
        this.core.createNamespacedServiceAccount({
          namespace,
          body: {
            metadata: tpMeta(MANAGER_NAME, namespace, spec.version),
            automountServiceAccountToken: false,
          },
        }),
    );
    await this.writeDeployment(spec, onStep);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pod = await this.readyPod(namespace, spec.image);
      if (pod !== undefined) {
        const state: ManagerState = { namespace, image: spec.image, ready: true };
        if (pod.metadata?.name !== undefined) state.pod = pod.metadata.name;
        if (pod.status?.podIP !== undefined) state.podIP = pod.status.podIP;
        return state;
      }
      if (Date.now() > deadline) {
        throw new TpError(
          'unavailable',
          `${namespace}/${MANAGER_NAME} did not become ready within ${timeoutMs / 1000} s.`,
          {
            code: 'MANAGER_NOT_READY',
            fix: `Look at \`kubectl -n ${namespace} describe pod -l app.kubernetes.io/name=${MANAGER_NAME}\`; an image pull error means the cluster cannot pull from the registry tp pushed to (--registry / TP_REGISTRY).`,
          },
        );
      }
      onStep(`waiting for ${namespace}/${MANAGER_NAME} to be ready`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /**
   * Creates the Deployment, or points it at `spec.image`. Another tp connecting at the same
   * moment may write it between our read and our write (a 409): read again, and stop when it
   * already runs this image, as it then does what we were about to do.
   */
  private async writeDeployment(spec: ManagerSpec, onStep: (msg: string) => void): Promise<void> {
    const { namespace } = spec;
    for (let attempt = 1; ; attempt++) {
      const body = managerDeployment(spec);
      const existing = await this.readDeployment(namespace);
      if (existing?.spec?.template.spec?.containers[0]?.image === spec.image) return;
      try {
        if (existing === undefined) {
          onStep(`creating ${namespace}/${MANAGER_NAME}`);
          await this.apps.createNamespacedDeployment({ namespace, body });
        } else {
          onStep(`updating ${namespace}/${MANAGER_NAME} to ${spec.image}`);
          body.metadata = {
            ...tpMeta(MANAGER_NAME, namespace, spec.version),
            resourceVersion: existing.metadata?.resourceVersion ?? '',
          };
          await this.apps.replaceNamespacedDeployment({ name: MANAGER_NAME, namespace, body });
        }
        return;
      } catch (err) {
        if (httpStatus(err) !== 409 || attempt >= 3) throw clusterError(err, this.target);
      }
    }
  }

  /** Removes what install created: the Deployment, the ServiceAccount, and a namespace tp created. */
  async uninstall(namespace: string): Promise<string[]> {
    const removed: string[] = [];
    const del = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
        removed.push(what);
      } catch (err) {
        if (httpStatus(err) !== 404) throw clusterError(err, this.target);
      }
    };
    await del(`deployment ${namespace}/${MANAGER_NAME}`, () =>
      this.apps.deleteNamespacedDeployment({ name: MANAGER_NAME, namespace }),
    );
    await del(`serviceaccount ${namespace}/${MANAGER_NAME}`, () =>
      this.core.deleteNamespacedServiceAccount({ name: MANAGER_NAME, namespace }),
    );
    const ns = await this.core.readNamespace({ name: namespace }).catch(() => undefined);
    if (ns?.metadata?.labels?.[LABEL_MANAGED] === 'true') {
      await del(`namespace ${namespace}`, () => this.core.deleteNamespace({ name: namespace }));
    }
    return removed;
  }

  private async readyPod(namespace: string, image: string): Promise<V1Pod | undefined> {
    const pods = await this.call(() =>
      this.core.listNamespacedPod({
        namespace,
        labelSelector: `app.kubernetes.io/name=${MANAGER_NAME}`,
      }),
    );
    return pods.items.find(
      (p) =>
        p.metadata?.deletionTimestamp === undefined &&
        p.spec?.containers[0]?.image === image &&
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
    );
  }

  private async ensure(
    read: () => Promise<unknown>,
    create: () => Promise<unknown>,
  ): Promise<void> {
    try {
      await read();
    } catch (err) {
      if (httpStatus(err) !== 404) throw clusterError(err, this.target);
      try {
        await create();
      } catch (cerr) {
        if (httpStatus(cerr) !== 409) throw clusterError(cerr, this.target);
      }
    }
  }

  /** The manager's Deployment, or undefined when there is none. */
  private async readDeployment(namespace: string): Promise<V1Deployment | undefined> {
    try {
      return await this.apps.readNamespacedDeployment({ name: MANAGER_NAME, namespace });
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw clusterError(err, this.target);
    }
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw clusterError(err, this.target);
    }
  }
}
