/**
 * The Services an intercept or wiretap takes a port of: listing those of a namespace,
 * reading one, and applying what src/engage/service-switch.ts says with server-side apply,
 * as WorkloadClient (src/k8s/engage.ts) does for workloads.
 */
import {
  CoreV1Api,
  DiscoveryV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  type V1EndpointSlice,
  type KubeConfig,
} from '@kubernetes/client-node';
import type { ServiceApply } from '../engage/service-switch.js';
import type { ServiceObject } from '../engage/workload.js';
import { TpError } from '../lib/errors.js';
import { FIELD_MANAGER } from '../lib/k8s-keys.js';
import { httpStatus } from './api-errors.js';
import { clusterError } from './cluster.js';
import type { KubeTarget } from './kubeconfig.js';

export class ServiceClient {
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly discovery: DiscoveryV1Api;

  constructor(
    kc: KubeConfig,
    private readonly target: KubeTarget,
  ) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.discovery = kc.makeApiClient(DiscoveryV1Api);
  }

  /**
   * The pods a Service's EndpointSlices list as ready now; undefined when the user may not
   * list them.
   */
  async readyPods(name: string, namespace: string): Promise<string[] | undefined> {
    const slices = await this.slices(name, namespace);
    return slices?.flatMap((s) =>
      s.endpoints
        .filter((e) => e.conditions?.ready !== false && e.targetRef?.kind === 'Pod')
        .map((e) => e.targetRef?.name ?? ''),
    );
  }

  /**
   * The endpoint ports a Service port resolves to now, by the EndpointSlices kube-proxy
   * reads; undefined when the user may not list them (then nobody can wait on them).
   */
  async endpointPorts(
    name: string,
    namespace: string,
    portName: string | undefined,
  ): Promise<number[] | undefined> {
    const slices = await this.slices(name, namespace);
    if (slices === undefined) return undefined;
    const ports = new Set<number>();
    for (const s of slices) {
      if (s.endpoints.every((e) => e.conditions?.ready === false)) continue;
      for (const p of s.ports ?? []) {
        if ((p.name ?? '') === (portName ?? '') && p.port !== undefined) ports.add(p.port);
      }
    }
    return [...ports];
  }

  /** The Service's EndpointSlices; undefined when the user may not list them. */
  private async slices(name: string, namespace: string): Promise<V1EndpointSlice[] | undefined> {
    try {
      const list = await this.discovery.listNamespacedEndpointSlice({
        namespace,
        labelSelector: `kubernetes.io/service-name=${name}`,
      });
      return list.items;
    } catch (err) {
      const status = httpStatus(err);
      if (status === 403 || status === 404) return undefined;
      throw clusterError(err, this.target);
    }
  }

  async list(namespace: string): Promise<ServiceObject[]> {
    try {
      const list = await this.core.listNamespacedService({ namespace });
      return list.items.map(plain);
    } catch (err) {
      throw clusterError(err, this.target);
    }
  }

  /** The Service; one deleted since it was chosen is an error naming it. */
  async read(name: string, namespace: string): Promise<ServiceObject> {
    try {
      return plain(await this.core.readNamespacedService({ name, namespace }));
    } catch (err) {
      if (httpStatus(err) !== 404) throw clusterError(err, this.target);
      throw new TpError('state', `Service ${name} is gone from namespace ${namespace}.`, {
        code: 'SERVICE_GONE',
        fix: `Recreate it, or engage again with a Service that exists (\`kubectl get services -n ${namespace}\`).`,
        cause: err,
      });
    }
  }

  /** Server-side apply, forced: tp's statement of the whole of its intent on the Service. */
  async apply(config: ServiceApply, fieldManager = FIELD_MANAGER): Promise<ServiceObject> {
    try {
      const obj = await this.objects.patch(
        config,
        undefined,
        undefined,
        fieldManager,
        true,
        PatchStrategy.ServerSideApply,
      );
      return plain(obj);
    } catch (err) {
      throw clusterError(err, this.target);
    }
  }
}

/** client-node hands back class instances (dates as Date): the plan wants the API's JSON. */
function plain(obj: object): ServiceObject {
  return JSON.parse(JSON.stringify(obj)) as ServiceObject;
}
