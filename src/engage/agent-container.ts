/**
 * The containers an engagement puts in the pod (docs/engagements.md): the target container
 * turned into the agent in place (replace), or a sidecar beside it (ingest), and the original
 * values a restore applies again. Pure, like plan.ts, which decides when each is wanted.
 */
import {
  AGENT_COMMAND,
  AGENT_HEALTH_PORT,
  type AgentConfig,
  type AgentPort,
  type ProxyPort,
} from '../contract/agent.js';
import { TpError } from '../lib/errors.js';
import type { PlannedPort } from './ports.js';
import type { Container, Handler, Probe, WorkloadObject } from './workload.js';

/** The sidecar's name when the agent runs beside the target container. */
export const SIDECAR = 'tp-agent';
/**
 * Variables the agent's process gets from its own image rather than from the pod: what the
 * image sets, and HOME, which the runtime derives from the image's user (the local container
 * has its own). PATH is dropped separately.
 */
const AGENT_IMAGE_ENV = ['NODE_VERSION', 'YARN_VERSION', 'NODE_ENV', 'HOME'];
/** The node image's unprivileged user: the sidecar meets the `restricted` Pod Security Standard. */
const SIDECAR_UID = 1000;

const probeFields = ['readinessProbe', 'livenessProbe', 'startupProbe'] as const;
/**
 * The probes that hold back readiness are paced for the agent, which is up in well under a
 * second: an app's own pace (10 s by default, with a delay for a slow start) would hold the
 * engagement back by as much. Liveness keeps the app's pace: it decides nothing sooner.
 */
const gatingProbes: ReadonlySet<string> = new Set(['readinessProbe', 'startupProbe']);
const AGENT_PROBE_TIMING = { initialDelaySeconds: 0, periodSeconds: 1 } as const;
const handlerKeys = ['exec', 'httpGet', 'tcpSocket', 'grpc', 'sleep'] as const;

/** Volume sources the kubelet mounts read-only whatever the mount says: the API's data. */
const API_DATA_SOURCES = ['configMap', 'secret', 'downwardAPI', 'projected'];

/** The names of the pod's volumes that are read-only in every container. */
export function apiDataVolumes(workload: WorkloadObject): Set<string> {
  const volumes = workload.spec.template.spec.volumes ?? [];
  return new Set(
    volumes.filter((v) => API_DATA_SOURCES.some((s) => v[s] !== undefined)).map((v) => v.name),
  );
}

function agentConfig(
  c: Container,
  ports: readonly PlannedPort[],
  readOnly: boolean,
  readOnlyVolumes: ReadonlySet<string> = new Set(),
): AgentConfig {
  const setByPod = new Set((c.env ?? []).map((e) => e.name));
  return {
    container: c.name,
    ports: ports.map(({ port, protocol, name }): AgentPort => ({
      port,
      protocol,
      ...(name === undefined ? {} : { name }),
    })),
    mounts: (c.volumeMounts ?? []).map((m) => ({
      path: m.mountPath,
      readOnly: readOnly || m.readOnly === true || readOnlyVolumes.has(m.name),
    })),
    ownEnv: AGENT_IMAGE_ENV.filter((n) => !setByPod.has(n)),
  };
}

/**
 * The values of the fields an in-place agent changes, as the container has them: what a
 * restore applies again. Probes and lifecycle hooks keep only their handler, and the probes
 * that gate readiness their delay and period: tp changes nothing else in them.
 */
export function originalFields(c: Container): Container {
  const out: Container = { name: c.name };
  if (c.image !== undefined) out.image = c.image;
  if (c.command !== undefined) out.command = c.command;
  if (c.args !== undefined) out.args = c.args;
  for (const f of probeFields) {
    const p = c[f];
    if (p === undefined) continue;
    out[f] = handlerOf(p);
    if (gatingProbes.has(f)) {
      for (const k of ['initialDelaySeconds', 'periodSeconds'] as const) {
        if (p[k] !== undefined) out[f] = { ...out[f], [k]: p[k] };
      }
    }
  }
  const hooks = c.lifecycle;
  if (hooks?.postStart !== undefined || hooks?.preStop !== undefined) {
    out.lifecycle = {};
    if (hooks.postStart !== undefined) out.lifecycle.postStart = handlerOf(hooks.postStart);
    if (hooks.preStop !== undefined) out.lifecycle.preStop = handlerOf(hooks.preStop);
  }
  return out;
}

function handlerOf(p: Probe): Handler {
  const out: Handler = {};
  for (const k of handlerKeys) if (p[k] !== undefined) Object.assign(out, { [k]: p[k] });
  return out;
}

/**
 * The target container turned into the agent: its image and command, and each probe or hook
 * pointed at the agent, so the pod stays Ready without the app. Everything else (ports, env,
 * mounts, resources, securityContext) stays the user's: the agent sees what the app saw.
 */
export function inPlaceAgent(
  c: Container,
  ports: readonly PlannedPort[],
  image: string,
  readOnlyVolumes: ReadonlySet<string>,
): Record<string, unknown> {
  const agent: Record<string, unknown> = {
    name: c.name,
    image,
    command: AGENT_COMMAND,
    args: ['agent', JSON.stringify(agentConfig(c, ports, false, readOnlyVolumes))],
  };
  for (const f of probeFields) {
    const p = c[f];
    if (p === undefined) continue;
    const handler = redirect(p, `${c.name}'s ${f}`);
    agent[f] = gatingProbes.has(f) ? { ...handler, ...AGENT_PROBE_TIMING } : handler;
  }
  const hooks = c.lifecycle;
  if (hooks?.postStart !== undefined || hooks?.preStop !== undefined) {
    const lifecycle: Record<string, Handler> = {};
    if (hooks.postStart !== undefined)
      lifecycle.postStart = redirect(hooks.postStart, `${c.name}'s postStart hook`);
    if (hooks.preStop !== undefined)
      lifecycle.preStop = redirect(hooks.preStop, `${c.name}'s preStop hook`);
    agent.lifecycle = lifecycle;
  }
  return agent;
}

/** The same kind of handler, aimed at the agent. */
function redirect(p: Probe, what: string): Handler {
  if (p.httpGet !== undefined)
    return { httpGet: { path: '/healthz', port: AGENT_HEALTH_PORT, scheme: 'HTTP' } };
  if (p.tcpSocket !== undefined) return { tcpSocket: { port: AGENT_HEALTH_PORT } };
  if (p.exec !== undefined) return { exec: { command: [...AGENT_COMMAND, 'probe'] } };
  if (p.sleep !== undefined) return { sleep: p.sleep };
  throw new TpError('state', `${what} is a gRPC check, which the agent cannot answer.`, {
    code: 'PROBE_UNSUPPORTED',
    fix: 'Engage another container, or change the check to HTTP, TCP or exec.',
  });
}

export interface SidecarOptions {
  /** intercept: the mounts are as writable as the app has them; else all read-only. */
  writable: boolean;
  /** intercept, wiretap: the ports the agent stands in front of. */
  proxies: ProxyPort[];
  readOnlyVolumes: ReadonlySet<string>;
  /** The pod's own runAsUser, which the sidecar inherits unless the container names one. */
  podRunAsUser?: number | undefined;
}

/**
 * A sidecar that sees the target container's env and mounts and answers for it, meeting the
 * `restricted` Pod Security Standard. A resourceFieldRef names its container, so that it
 * keeps reading the target's limits rather than the sidecar's. With writable mounts it runs
 * as the app's user when the container names one, so what it writes the app can change.
 */
export function sidecarAgent(
  c: Container,
  image: string,
  opts: SidecarOptions = { writable: false, proxies: [], readOnlyVolumes: new Set() },
): Record<string, unknown> {
  // Writable mounts: the sidecar runs as the app's user (the container's, else the pod's), so
  // what it writes the app can change; never as root, which `runAsNonRoot` would refuse.
  const appUid = c.securityContext?.runAsUser ?? opts.podRunAsUser;
  const env = (c.env ?? []).map((e) => {
    const ref = e.valueFrom?.resourceFieldRef;
    return ref === undefined || ref.containerName !== undefined
      ? e
      : {
          ...e,
          valueFrom: { ...e.valueFrom, resourceFieldRef: { ...ref, containerName: c.name } },
        };
  });
  return {
    name: SIDECAR,
    image,
    command: AGENT_COMMAND,
    args: [
      'agent',
      JSON.stringify({
        ...agentConfig(c, [], !opts.writable, opts.readOnlyVolumes),
        ...(opts.proxies.length === 0 ? {} : { proxies: opts.proxies }),
      }),
    ],
    ...(opts.proxies.length === 0
      ? {}
      : { ports: opts.proxies.map((p) => ({ containerPort: p.listen, protocol: 'TCP' })) }),
    ...(c.env === undefined ? {} : { env }),
    ...(c.envFrom === undefined ? {} : { envFrom: c.envFrom }),
    ...(c.volumeMounts === undefined
      ? {}
      : {
          volumeMounts: c.volumeMounts.map((m) =>
            opts.writable ? { ...m } : { ...m, readOnly: true },
          ),
        }),
    // Ready once the agent listens (its health port opens last, after the proxied ports): a
    // pod turned Ready before would be sent traffic, and port-forwards, it cannot take yet.
    readinessProbe: { tcpSocket: { port: AGENT_HEALTH_PORT }, periodSeconds: 1 },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      runAsNonRoot: true,
      runAsUser: opts.writable && appUid !== undefined && appUid !== 0 ? appUid : SIDECAR_UID,
      ...(opts.writable && c.securityContext?.runAsGroup !== undefined
        ? { runAsGroup: c.securityContext.runAsGroup }
        : {}),
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}
