/**
 * The cluster side of engagements (docs/engagements.md): finding the workload, applying what
 * the plan says with server-side apply under field manager `tp`, waiting for the rollout, and
 * finding the pods whose agent answers.
 */
import {
  AppsV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  Watch,
  type KubeConfig,
  type KubernetesObject,
  type V1Pod,
} from '@kubernetes/client-node';
import { readEngagements, type WorkloadApply } from '../engage/plan.js';
import type { WorkloadObject } from '../engage/workload.js';
import { TpError } from '../lib/errors.js';
import { FIELD_MANAGER } from '../lib/k8s-keys.js';
import { httpStatus } from './api-errors.js';
import { clusterError } from './cluster.js';
import type { KubeTarget } from './kubeconfig.js';
import { workloadKinds, type WorkloadKind } from './workloads.js';

const aliases: Record<string, WorkloadKind> = {
  deploy: 'Deployment',
  deployment: 'Deployment',
  deployments: 'Deployment',
  sts: 'StatefulSet',
  statefulset: 'StatefulSet',
  statefulsets: 'StatefulSet',
  rs: 'ReplicaSet',
  replicaset: 'ReplicaSet',
  replicasets: 'ReplicaSet',
  ds: 'DaemonSet',
  daemonset: 'DaemonSet',
  daemonsets: 'DaemonSet',
};

/** What the API server holds, as plain JSON, with what the rollout wait needs. */
export interface ReadWorkload extends WorkloadObject {
  metadata: WorkloadObject['metadata'] & {
    generation?: number;
    uid?: string;
    resourceVersion?: string;
  };
  spec: WorkloadObject['spec'] & { selector?: { matchLabels?: Record<string, string> } };
  status?: Record<string, unknown>;
}

export class WorkloadClient {
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;

  constructor(
    private readonly kc: KubeConfig,
    private readonly target: KubeTarget,
  ) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
  }

  /**
   * The workload a user names as `name` or `kind/name` (`deploy/echo`, `statefulset/store`).
   * A bare name is looked for among the kinds tp engages, in `tp list`'s order.
   */
  async find(ref: string, namespace: string): Promise<ReadWorkload> {
    const slash = ref.indexOf('/');
    const name = slash < 0 ? ref : ref.slice(slash + 1);
    let kinds: readonly WorkloadKind[] = workloadKinds;
    if (slash >= 0) {
      const kind = aliases[ref.slice(0, slash).toLowerCase()];
      if (kind === undefined) {
        throw new TpError('usage', `"${ref.slice(0, slash)}" is not a kind tp engages.`, {
          code: 'WORKLOAD_KIND',
          fix: 'Name a Deployment, StatefulSet, ReplicaSet or DaemonSet (`tp list` shows them).',
        });
      }
      kinds = [kind];
    }
    for (const kind of kinds) {
      const found = await this.read(kind, name, namespace);
      if (found !== undefined) return found;
    }
    throw new TpError('usage', `There is no workload ${ref} in namespace ${namespace}.`, {
      code: 'WORKLOAD_UNKNOWN',
      fix: `\`tp list\` shows the workloads of the namespace; -n picks another namespace.`,
    });
  }

  async read(kind: string, name: string, namespace: string): Promise<ReadWorkload | undefined> {
    try {
      const obj = await this.objects.read({
        apiVersion: 'apps/v1',
        kind,
        metadata: { name, namespace },
      });
      return plain(obj);
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw clusterError(err, this.target);
    }
  }

  /** Server-side apply, field manager `tp`, forced: tp's statement of the whole of its intent. */
  async apply(config: WorkloadApply, manager = FIELD_MANAGER): Promise<ReadWorkload> {
    try {
      const obj = await this.objects.patch(
        config,
        undefined,
        undefined,
        manager,
        true,
        PatchStrategy.ServerSideApply,
      );
      return plain(obj);
    } catch (err) {
      throw clusterError(err, this.target);
    }
  }

  /**
   * Waits until the workload's pods all run its current template, reporting progress. A bare
   * ReplicaSet does not replace its pods when its template changes, so its old pods are
   * deleted for it.
   */
  async rollout(w: ReadWorkload, timeoutMs: number, onStep: (msg: string) => void): Promise<void> {
    const id = `${w.kind.toLowerCase()}/${w.metadata.name}`;
    const deadline = Date.now() + timeoutMs;
    if (w.kind === 'ReplicaSet') await this.deleteStalePods(w);
    const generation = w.metadata.generation ?? 0;
    for (let watched = false; ;) {
      const now = await this.read(w.kind, w.metadata.name, w.metadata.namespace);
      if (now === undefined) throw new Error(`${id} was deleted during the rollout`);
      const state = rolloutState(now, generation);
      if (state.done) return;
      onStep(state.message);
      if (Date.now() > deadline) {
        throw new TpError(
          'unavailable',
          `${id} did not roll out within ${timeoutMs / 1000} s: ${state.message}.`,
          {
            code: 'ROLLOUT_TIMEOUT',
            fix: `See \`kubectl -n ${w.metadata.namespace} describe ${id}\` and its pods' events; \`tp leave\` restores it.`,
          },
        );
      }
      // A watch hears the status change as it happens; should it end early or fail, reads
      // every 500 ms take over.
      if (!watched) {
        watched = true;
        if (await this.watchRollout(now, generation, deadline, onStep)) return;
      } else {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** True once the rollout is done; false when the watch ended first (or the deadline came). */
  private watchRollout(
    from: ReadWorkload,
    generation: number,
    deadline: number,
    onStep: (msg: string) => void,
  ): Promise<boolean> {
    const { kind, metadata } = from;
    const path = `/apis/apps/v1/namespaces/${metadata.namespace}/${kind.toLowerCase()}s`;
    return new Promise((resolve) => {
      let controller: AbortController | undefined;
      let settled = false;
      const finish = (done: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        controller?.abort();
        resolve(done);
      };
      const timer = setTimeout(() => {
        finish(false);
      }, deadline - Date.now());
      const query = {
        fieldSelector: `metadata.name=${metadata.name}`,
        ...(metadata.resourceVersion === undefined
          ? {}
          : { resourceVersion: metadata.resourceVersion }),
      };
      new Watch(this.kc)
        .watch(
          path,
          query,
          (type: string, obj: KubernetesObject) => {
            if (type !== 'ADDED' && type !== 'MODIFIED') {
              finish(false);
              return;
            }
            const state = rolloutState({ ...plain(obj), kind }, generation);
            if (state.done) finish(true);
            else onStep(state.message);
          },
          () => {
            finish(false);
          },
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
          },
          () => {
            finish(false);
          },
        );
    });
  }

  /**
   * The workloads of `namespace` that `session` engages, as their annotation says: what
   * `tp quit` restores, even when the session's daemon is gone.
   */
  async engagedBy(session: string, namespace: string): Promise<ReadWorkload[]> {
    const found: ReadWorkload[] = [];
    for (const kind of workloadKinds) {
      try {
        const list = await this.objects.list('apps/v1', kind, namespace);
        for (const item of list.items) {
          const w = plain(item);
          w.kind = kind;
          w.apiVersion = 'apps/v1';
          // A Deployment's ReplicaSets copy its annotations: the Deployment is what is engaged.
          const owned = (item.metadata?.ownerReferences ?? []).some((o) => o.controller === true);
          if (!owned && readEngagements(w)[session] !== undefined) found.push(w);
        }
      } catch (err) {
        throw clusterError(err, this.target);
      }
    }
    return found;
  }

  /** The names of the workload's ready pods whose container `container` runs `image`. */
  async podsRunning(w: ReadWorkload, container: string, image: string): Promise<string[]> {
    const pods = await this.pods(w);
    return pods
      .filter(
        (p) =>
          p.metadata?.deletionTimestamp === undefined &&
          p.spec?.containers.some((c) => c.name === container && c.image === image) === true &&
          p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
      )
      .map((p) => p.metadata?.name ?? '')
      .filter((n) => n !== '');
  }

  private async pods(w: ReadWorkload): Promise<V1Pod[]> {
    const labels = w.spec.selector?.matchLabels ?? {};
    const labelSelector = Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    try {
      const list = await this.core.listNamespacedPod({
        namespace: w.metadata.namespace,
        labelSelector,
      });
      const uid = w.metadata.uid;
      // Owned by this workload, or by a ReplicaSet of this Deployment.
      const owners = new Set([uid]);
      if (w.kind === 'Deployment') {
        const sets = await this.apps.listNamespacedReplicaSet({
          namespace: w.metadata.namespace,
          labelSelector,
        });
        for (const rs of sets.items) {
          if (rs.metadata?.ownerReferences?.some((o) => o.uid === uid) === true)
            owners.add(rs.metadata.uid);
        }
      }
      return list.items.filter(
        (p) => p.metadata?.ownerReferences?.some((o) => owners.has(o.uid)) === true,
      );
    } catch (err) {
      throw clusterError(err, this.target);
    }
  }

  private async deleteStalePods(w: ReadWorkload): Promise<void> {
    for (const p of await this.pods(w)) {
      const name = p.metadata?.name;
      if (name === undefined) continue;
      await this.core
        .deleteNamespacedPod({ name, namespace: w.metadata.namespace })
        .catch((err: unknown) => {
          if (httpStatus(err) !== 404) throw clusterError(err, this.target);
        });
    }
  }
}

/** client-node hands back class instances (dates as Date): the plan wants the API's JSON. */
function plain(obj: KubernetesObject): ReadWorkload {
  return JSON.parse(JSON.stringify(obj)) as ReadWorkload;
}

/** Whether every pod runs the template of `generation`, and if not, what is being waited for. */
export function rolloutState(
  w: ReadWorkload,
  generation: number,
): { done: boolean; message: string } {
  const s = (w.status ?? {}) as Record<string, number | string | undefined>;
  const n = (k: string): number => (typeof s[k] === 'number' ? s[k] : 0);
  if (n('observedGeneration') < generation)
    return { done: false, message: 'waiting for the controller' };
  const want = w.kind === 'DaemonSet' ? n('desiredNumberScheduled') : (w.spec.replicas ?? 1);
  switch (w.kind) {
    case 'Deployment': {
      const updated = n('updatedReplicas');
      const done = updated === want && n('replicas') === want && n('availableReplicas') === want;
      return {
        done,
        message: `${updated} of ${want} pods updated, ${n('availableReplicas')} available`,
      };
    }
    case 'StatefulSet': {
      const updated = n('updatedReplicas');
      const done =
        updated === want && n('readyReplicas') === want && s.currentRevision === s.updateRevision;
      return { done, message: `${updated} of ${want} pods updated, ${n('readyReplicas')} ready` };
    }
    case 'DaemonSet': {
      const updated = n('updatedNumberScheduled');
      return {
        done: updated === want && n('numberAvailable') === want,
        message: `${updated} of ${want} pods updated, ${n('numberAvailable')} available`,
      };
    }
    default: {
      const ready = n('readyReplicas');
      return {
        done: ready === want && n('replicas') === want,
        message: `${ready} of ${want} pods ready`,
      };
    }
  }
}
