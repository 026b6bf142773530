/**
 * What every engagement e2e file needs: a namespace of its own with its own workloads (the
 * other files use samples/* at the same time), a session connected to it, and everything gone
 * afterwards; and polling until the cluster shows what a test waits for.
 */
import { spawn } from 'node:child_process';
import type { ConnectResult } from '../../src/session/connect.js';
import { LABEL_SESSION } from '../../src/lib/labels.js';
import { engine } from './docker.js';
import { context, kubectl, kubectlOk } from './kubectl.js';
import { json, tpLab } from './session.js';

export interface NamespaceSession {
  /** Creates the namespace, applies the manifest, waits for `rollouts`, connects the session. */
  setUp(): Promise<ConnectResult>;
  /** Ends the session (restoring what it engaged), removes its Docker objects and the namespace. */
  tearDown(): Promise<void>;
}

export function namespaceSession(opts: {
  namespace: string;
  session: string;
  /** The namespace's objects, as JSON or YAML kubectl applies. */
  manifest: () => string;
  /** `kind/name` of each workload to wait for, e.g. `deploy/echo`. */
  rollouts: string[];
  /** Settings for tp connect and quit, e.g. TP_MANAGER_NAMESPACE. */
  env?: NodeJS.ProcessEnv;
}): NamespaceSession {
  const { namespace, session } = opts;
  return {
    async setUp() {
      await kubectlOk(['create', 'namespace', namespace]);
      const apply = spawn('kubectl', ['--context', context, 'apply', '-f', '-'], {
        stdio: ['pipe', 'ignore', 'inherit'],
      });
      apply.stdin.end(opts.manifest());
      const code = await new Promise((r) => apply.once('exit', r));
      if (code !== 0) throw new Error(`kubectl apply exited with ${String(code)}`);
      for (const w of opts.rollouts) {
        await kubectlOk(['-n', namespace, 'rollout', 'status', w, '--timeout=120s'], 130_000);
      }
      const r = await tpLab(
        ['connect', '--docker', '-n', namespace, '--name', session, '--json'],
        opts.env,
      );
      if (r.exitCode !== 0) throw new Error(`connect failed: ${r.stdout} ${r.stderr}`);
      return json<ConnectResult>(r);
    },
    async tearDown() {
      await tpLab(['quit', '--name', session], opts.env);
      await engine.removeLabelled({ [LABEL_SESSION]: session });
      await kubectl(['delete', 'namespace', namespace, '--wait=false']);
    },
  };
}

/** Polls `fn` until it returns something, or fails after `ms`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = 90_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * An `echo` Deployment of one pod running `container` on port 8080 (`http`), with a Service on
 * port 80, as JSON for kubectl apply: the workload most engagement tests engage.
 */
export function echoWorkload(opts: {
  namespace: string;
  container: Record<string, unknown>;
  annotations?: Record<string, string>;
}): string {
  const { namespace } = opts;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: {
          name: 'echo',
          namespace,
          labels: { app: 'echo' },
          ...(opts.annotations === undefined ? {} : { annotations: opts.annotations }),
        },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'echo' } },
          template: {
            metadata: { labels: { app: 'echo' } },
            spec: {
              terminationGracePeriodSeconds: 1,
              containers: [
                { name: 'echo', ports: [{ name: 'http', containerPort: 8080 }], ...opts.container },
              ],
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'echo', namespace },
        spec: {
          selector: { app: 'echo' },
          ports: [{ name: 'http', port: 80, targetPort: 'http' }],
        },
      },
    ],
  });
}

/**
 * A workload (`kind/name`) as its user sees it, less what the API server maintains
 * (resourceVersion, generation, managedFields, status, the template revisions it counts in
 * annotations): what an engagement's restore must give back field by field.
 */
/**
 * The Deployment's revision, and the DaemonSet's template generation (apps/v1 conversion of
 * spec.templateGeneration, which an update may not set): counted by the API server.
 */
const SERVER_ANNOTATIONS = new Set([
  'deployment.kubernetes.io/revision',
  'deprecated.daemonset.template.generation',
]);

export async function workloadSpec(namespace: string, ref: string): Promise<unknown> {
  const w = JSON.parse(await kubectlOk(['-n', namespace, 'get', ref, '-o', 'json'])) as {
    metadata: Record<string, unknown> & { annotations?: Record<string, string> };
    spec: unknown;
  };
  const { resourceVersion: _rv, generation: _gen, managedFields: _mf, ...metadata } = w.metadata;
  const annotations = Object.fromEntries(
    Object.entries(w.metadata.annotations ?? {}).filter(([k]) => !SERVER_ANNOTATIONS.has(k)),
  );
  return { metadata: { ...metadata, annotations }, spec: w.spec };
}
