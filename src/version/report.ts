import type { DockerEngine } from '../docker/engine.js';
import { imageStatus, type ImageComponent, type ImageStatus } from '../images/images.js';
import { serverVersion } from '../k8s/cluster.js';
import { loadKubeConfig, type KubeSelection } from '../k8s/kubeconfig.js';
import { messageOf } from '../lib/errors.js';
import { clientVersion } from '../lib/package-info.js';
import { alignRows } from '../cli/format.js';

/** A part tp could not ask is reported with the reason, never as a failure of the command. */
export type Reachable<T> = ({ ok: true } & T) | { ok: false; error: string };

export interface VersionReport {
  client: { version: string; node: string; platform: string };
  images: Record<ImageComponent, Reachable<Omit<ImageStatus, 'component'>>>;
  docker: Reachable<{ endpoint: string; version: string; apiVersion: string }>;
  cluster: Reachable<{ context: string; server: string; version: string }>;
}

export async function versionReport(
  engine: DockerEngine,
  kube: KubeSelection,
): Promise<VersionReport> {
  const [docker, cluster, daemon, agent] = await Promise.all([
    settle(async () => {
      const v = await engine.version();
      return { endpoint: engine.endpoint, version: v.version, apiVersion: v.apiVersion };
    }),
    settle(async () => {
      const { kc, target } = loadKubeConfig(kube);
      const v = await serverVersion(kc, target);
      return { context: target.context, server: target.server, version: v.gitVersion };
    }),
    settle(() => image(engine, 'daemon')),
    settle(() => image(engine, 'agent')),
  ]);
  return {
    client: {
      version: clientVersion(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    images: { daemon, agent },
    docker,
    cluster,
  };
}

async function image(engine: DockerEngine, component: ImageComponent) {
  const { component: _, ...rest } = await imageStatus(engine, component);
  return rest;
}

async function settle<T extends object>(fn: () => Promise<T>): Promise<Reachable<T>> {
  try {
    return { ok: true, ...(await fn()) };
  } catch (err) {
    return { ok: false, error: messageOf(err) };
  }
}

export function renderVersion(r: VersionReport): string {
  const img = (s: VersionReport['images']['daemon']): string => {
    if (!s.ok) return `unknown (${s.error})`;
    if (!s.present) return `${s.ref}: not built (built on first use)`;
    return `${s.ref}${s.current ? '' : ' (stale: rebuilt on next use)'}`;
  };
  const rows: [string, string][] = [
    ['Client', `${r.client.version} (node ${r.client.node}, ${r.client.platform})`],
    ['Daemon image', img(r.images.daemon)],
    ['Agent image', img(r.images.agent)],
    [
      'Docker engine',
      r.docker.ok
        ? `${r.docker.version} (API ${r.docker.apiVersion}) at ${r.docker.endpoint}`
        : `unavailable: ${r.docker.error}`,
    ],
    [
      'Cluster',
      r.cluster.ok
        ? `${r.cluster.version} (context ${r.cluster.context}, ${r.cluster.server})`
        : `unavailable: ${r.cluster.error}`,
    ],
  ];
  return alignRows(rows);
}
