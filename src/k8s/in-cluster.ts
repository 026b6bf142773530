/**
 * tp-manager's access to the API server as its pod's ServiceAccount (the token and CA the
 * kubelet mounts), and the few calls its reaper makes on workloads and their Services. No client-node: the agent
 * image runs on Node's built-ins alone.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkloadApply } from '../engage/plan.js';
import type { ServiceApply } from '../engage/service-switch.js';
import type { ServiceObject, WorkloadObject } from '../engage/workload.js';
import { FIELD_MANAGER } from '../lib/k8s-keys.js';
import { ApiStatusError, requestJson, type KubeTransport } from './transport.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The API server as the pod's ServiceAccount, or undefined outside a pod or without a token.
 * Read afresh for each use: the kubelet rotates the token file.
 */
export function inClusterTransport(
  env: NodeJS.ProcessEnv = process.env,
  dir = SERVICE_ACCOUNT_DIR,
): KubeTransport | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || host === '' || port === undefined || port === '') return undefined;
  let token: string;
  let ca: Buffer;
  try {
    token = readFileSync(join(dir, 'token'), 'utf8').trim();
    ca = readFileSync(join(dir, 'ca.crt'));
  } catch {
    return undefined;
  }
  return {
    server: new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`),
    tls: { ca },
    headers: { Authorization: `Bearer ${token}` },
  };
}

const plurals = {
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  ReplicaSet: 'replicasets',
  DaemonSet: 'daemonsets',
} as const;

export type AppsKind = keyof typeof plurals;
/** The kinds tp engages, all in apps/v1. */
export const appsKinds = Object.keys(plurals) as AppsKind[];

export interface ObjectMeta {
  name: string;
  namespace: string;
  annotations?: Record<string, string>;
  ownerReferences?: { kind?: string; name?: string; controller?: boolean }[];
}

function plural(kind: string): string {
  const p = (plurals as Record<string, string | undefined>)[kind];
  if (p === undefined) throw new Error(`${kind} is not a kind tp engages`);
  return p;
}

/** Every `kind` in every namespace, metadata only (a list of PartialObjectMetadata). */
export async function listMetadata(t: KubeTransport, kind: AppsKind): Promise<ObjectMeta[]> {
  const list = await requestJson<{ items?: { metadata: ObjectMeta }[] | null }>(t, {
    path: `/apis/apps/v1/${plural(kind)}`,
    accept: 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1',
    timeoutMs: 30_000,
  });
  return (list.items ?? []).map((i) => i.metadata);
}

/** The workload as the API server holds it, or undefined when it is gone. */
export async function readWorkload(
  t: KubeTransport,
  kind: string,
  namespace: string,
  name: string,
): Promise<WorkloadObject | undefined> {
  const path = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${plural(kind)}/${encodeURIComponent(name)}`;
  try {
    return await requestJson<WorkloadObject>(t, { path });
  } catch (err) {
    if (err instanceof ApiStatusError && err.status === 404) return undefined;
    throw err;
  }
}

/**
 * Server-side apply, forced, as the CLI applies (src/k8s/engage.ts `WorkloadClient.apply`):
 * JSON is YAML, so the configuration goes as it is.
 */
export async function applyWorkload(
  t: KubeTransport,
  config: WorkloadApply,
  manager = FIELD_MANAGER,
): Promise<void> {
  const { namespace, name } = config.metadata;
  const query = new URLSearchParams({ fieldManager: manager, force: 'true' });
  await requestJson(t, {
    method: 'PATCH',
    path: `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${plural(config.kind)}/${encodeURIComponent(name)}?${query.toString()}`,
    body: { contentType: 'application/apply-patch+yaml', text: JSON.stringify(config) },
    timeoutMs: 30_000,
  });
}

function servicePath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/services/${encodeURIComponent(name)}`;
}

/** The Service as the API server holds it (managedFields included), or undefined when it is gone. */
export async function readService(
  t: KubeTransport,
  namespace: string,
  name: string,
): Promise<ServiceObject | undefined> {
  try {
    return await requestJson<ServiceObject>(t, { path: servicePath(namespace, name) });
  } catch (err) {
    if (err instanceof ApiStatusError && err.status === 404) return undefined;
    throw err;
  }
}

/** Server-side apply of a Service's configuration, forced, as applyWorkload does. */
export async function applyService(
  t: KubeTransport,
  config: ServiceApply,
  manager = FIELD_MANAGER,
): Promise<void> {
  const { namespace, name } = config.metadata;
  const query = new URLSearchParams({ fieldManager: manager, force: 'true' });
  await requestJson(t, {
    method: 'PATCH',
    path: `${servicePath(namespace, name)}?${query.toString()}`,
    body: { contentType: 'application/apply-patch+yaml', text: JSON.stringify(config) },
    timeoutMs: 30_000,
  });
}

/** The calls tp-manager's reaper makes, so that a test can stand in for the API server. */
export interface WorkloadApi {
  list(kind: AppsKind): Promise<ObjectMeta[]>;
  read(kind: string, namespace: string, name: string): Promise<WorkloadObject | undefined>;
  apply(config: WorkloadApply, manager: string): Promise<void>;
  /** The Service an intercept or wiretap switched a port of, to point it back. */
  readService(namespace: string, name: string): Promise<ServiceObject | undefined>;
  applyService(config: ServiceApply, manager: string): Promise<void>;
}

/** The API server as the pod's ServiceAccount, or undefined without one. */
export function inClusterWorkloads(
  env: NodeJS.ProcessEnv = process.env,
  dir = SERVICE_ACCOUNT_DIR,
): WorkloadApi | undefined {
  const t = inClusterTransport(env, dir);
  if (t === undefined) return undefined;
  return {
    list: (kind) => listMetadata(t, kind),
    read: (kind, namespace, name) => readWorkload(t, kind, namespace, name),
    apply: (config, manager) => applyWorkload(t, config, manager),
    readService: (namespace, name) => readService(t, namespace, name),
    applyService: (config, manager) => applyService(t, config, manager),
  };
}
