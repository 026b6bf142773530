/**
 * tp-manager in the cluster: a Deployment running the agent image's `manager` role, with a
 * ServiceAccount whose ClusterRole lets it read workloads and Services and apply their restore
 * (the reaper, agent/reaper.ts) and nothing else. No Service: the daemon reaches it only through
 * port-forward, and it listens on the pod's loopback.
 */
import {
  AppsV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  type KubeConfig,
  type V1ClusterRole,
  type V1ClusterRoleBinding,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import { TpError } from '../lib/errors.js';
import { DEFAULT_MANAGER_NAMESPACE, FIELD_MANAGER } from '../lib/k8s-keys.js';
import { LABEL_MANAGED, LABEL_VERSION } from '../lib/labels.js';
import { httpStatus } from './api-errors.js';
import { clusterError } from './cluster.js';
import type { KubeTarget } from './kubeconfig.js';

export const MANAGER_NAME = 'tp-manager';
export const MANAGER_PORT = 8181;
export { DEFAULT_MANAGER_NAMESPACE };
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
  /** Set when the install could not give the manager its ClusterRole, and what that costs. */
  warning?: string;
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
          // The reaper's token; the ServiceAccount itself keeps automount off for any other pod.
          automountServiceAccountToken: true,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 5,
          // The restricted Pod Security Standard, as the agent's sidecar meets it.
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            seccompProfile: { type: 'RuntimeDefault' },
          },
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

/**
 * The name of the ClusterRole and ClusterRoleBinding of the manager in `namespace`. One pair
 * per manager namespace, so that uninstalling one manager leaves another's permissions be.
 */
export function managerRbacName(namespace: string): string {
  return `${MANAGER_NAME}-${namespace}`;
}

/**
 * All the manager may do: find engaged workloads in every namespace (a metadata-only list),
 * read one, and apply its restore; read the Service an intercept or wiretap switched a port
 * of, and apply its restore (never a list: the engagement names it). No pods, no Secrets,
 * nothing it could create or delete.
 */
export const MANAGER_RULES = [
  {
    apiGroups: ['apps'],
    resources: ['deployments', 'statefulsets', 'replicasets', 'daemonsets'],
    verbs: ['get', 'list', 'patch'],
  },
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'patch'] },
];

export function managerRbac(
  spec: Pick<ManagerSpec, 'namespace' | 'version'>,
): [V1ClusterRole, V1ClusterRoleBinding] {
  const name = managerRbacName(spec.namespace);
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: tpMeta(name, undefined, spec.version),
      rules: MANAGER_RULES,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: tpMeta(name, undefined, spec.version),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name: MANAGER_NAME, namespace: spec.namespace }],
    },
  ];
}

export class ManagerClient {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly rbac: RbacAuthorizationV1Api;
  private readonly objects: KubernetesObjectApi;

  constructor(
    kc: KubeConfig,
    private readonly target: KubeTarget,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    this.objects = KubernetesObjectApi.makeApiClient(kc);
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
    const warning = await this.applyRbac(spec, onStep);
    await this.writeDeployment(spec, onStep);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pod = await this.readyPod(namespace, spec.image);
      if (pod !== undefined) {
        const state: ManagerState = { namespace, image: spec.image, ready: true };
        if (pod.metadata?.name !== undefined) state.pod = pod.metadata.name;
        if (pod.status?.podIP !== undefined) state.podIP = pod.status.podIP;
        if (warning !== undefined) state.warning = warning;
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
   * The manager's ClusterRole and its binding, server-side applied (so two installs at once
   * agree, and an older install's rules are brought up to date). A user who may not grant
   * these permissions still gets a manager: one that cannot restore, which the warning says.
   */
  private async applyRbac(
    spec: ManagerSpec,
    onStep: (msg: string) => void,
  ): Promise<string | undefined> {
    for (const obj of managerRbac(spec)) {
      const what = `clusterrole${obj.kind === 'ClusterRole' ? '' : 'binding'} ${managerRbacName(spec.namespace)}`;
      onStep(`applying ${what}`);
      try {
        await this.objects.patch(
          obj,
          undefined,
          undefined,
          FIELD_MANAGER,
          true,
          PatchStrategy.ServerSideApply,
        );
      } catch (err) {
        if (httpStatus(err) !== 403) throw clusterError(err, this.target);
        return `not allowed to create ${what}, so tp-manager cannot restore the workloads of a session that stops sending heartbeats (tp leave and tp quit still do)`;
      }
    }
    return undefined;
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

  /**
   * Removes what install created: the Deployment, the ServiceAccount, the ClusterRole and its
   * binding, and a namespace tp created.
   */
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
    const rbacName = managerRbacName(namespace);
    await del(`clusterrolebinding ${rbacName}`, () =>
      this.rbac.deleteClusterRoleBinding({ name: rbacName }),
    );
    await del(`clusterrole ${rbacName}`, () => this.rbac.deleteClusterRole({ name: rbacName }));
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
