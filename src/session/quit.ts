/** `tp quit` and `tp uninstall`: remove exactly what connect created, and nothing else. */
import { silentProgress, type Progress } from '../cli/progress.js';
import type { DockerEngine } from '../docker/engine.js';
import type { LabelledResources } from '../docker/engine.js';
import { releaseAll } from '../engage/engage.js';
import { stopSyncers } from '../docker/syncer.js';
import type { ContainerDetails } from '../docker/inspect.js';
import { loadKubeConfig, type KubeSelection } from '../k8s/kubeconfig.js';
import { ManagerClient } from '../k8s/manager.js';
import { LABEL_SESSION } from '../lib/labels.js';
import { ControlClient } from './control-client.js';
import { LABEL_CONTEXT, LABEL_MANAGER_NAMESPACE, LABEL_NAMESPACE } from './naming.js';
import { FLAG_OR_ENV, listSessions, pickSession } from './status.js';

export interface QuitResult {
  session?: string;
  /** The workloads this session engaged, restored. */
  restored?: string[];
  /** The Docker containers, networks and volumes removed. */
  removed: string[];
}

function names(r: LabelledResources): string[] {
  return [
    ...r.containers.map((c) => `container ${c.name}`),
    ...r.networks.map((n) => `network ${n.name}`),
    ...r.volumes.map((v) => `volume ${v.name}`),
  ];
}

/** Ends one session; not being connected is not an error (there is nothing to do). */
export async function quitSession(
  engine: DockerEngine,
  name: string | undefined,
  progress: Progress = silentProgress,
): Promise<QuitResult> {
  const daemon = await pickSession(engine, name, FLAG_OR_ENV);
  return daemon === undefined ? { removed: [] } : endSession(engine, daemon, progress);
}

/**
 * Ends a session as `tp quit` does: the daemon is asked to quit (it puts resolv.conf back and
 * stops its stack), then everything labelled with the session goes.
 */
export async function endSession(
  engine: DockerEngine,
  daemon: ContainerDetails,
  progress: Progress = silentProgress,
): Promise<QuitResult & { session: string }> {
  const session = daemon.labels[LABEL_SESSION] ?? daemon.name;
  // The cluster first: a workload this session engages is restored whether or not the daemon
  // still runs, as its annotation names the session.
  const context = daemon.labels[LABEL_CONTEXT];
  const namespace = daemon.labels[LABEL_NAMESPACE];
  // Local writes still unsent reach the pods before they are restored.
  await stopSyncers(engine, { [LABEL_SESSION]: session }).catch(() => undefined);
  const restored =
    context === undefined || namespace === undefined
      ? []
      : await releaseAll({ context, namespace }, session, progress);
  if (daemon.running) {
    // The container goes either way, answering or not.
    const client = await ControlClient.for(engine, daemon).catch(() => undefined);
    await client?.call('POST /v1/quit', undefined, 3000).catch(() => undefined);
  }
  const removed = await engine.removeLabelled({ [LABEL_SESSION]: session });
  return { session, removed: names(removed), restored };
}

export interface UninstallResult {
  sessions: string[];
  docker: string[];
  cluster: string[];
}

/**
 * Removes tp-manager from the cluster of the chosen context, after ending the sessions that
 * use it (sessions of other clusters or managers are left alone).
 */
export async function uninstall(
  engine: DockerEngine,
  kube: KubeSelection,
  managerNamespace: string,
): Promise<UninstallResult> {
  const { kc, target } = loadKubeConfig(kube);
  const result: UninstallResult = { sessions: [], docker: [], cluster: [] };
  const users = (await listSessions(engine)).filter(
    (s) =>
      s.labels[LABEL_CONTEXT] === target.context &&
      s.labels[LABEL_MANAGER_NAMESPACE] === managerNamespace,
  );
  for (const s of users) {
    const q = await endSession(engine, s);
    result.sessions.push(q.session);
    result.docker.push(...q.removed);
  }
  result.cluster = await new ManagerClient(kc, target).uninstall(managerNamespace);
  return result;
}
