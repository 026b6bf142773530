import type { DockerEngine } from './engine.js';
import { dockerError, statusCodeOf } from './errors.js';
import { followJson } from './follow.js';

export interface ContainerDetails {
  id: string;
  name: string;
  image: string;
  running: boolean;
  status: string;
  exitCode: number;
  oomKilled: boolean;
  startedAt: string;
  finishedAt: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  /** Host ports bound on 127.0.0.1, by container port. */
  loopbackPorts: Record<number, number>;
  networks: Record<string, { ip: string; gateway: string }>;
}

/** The container by id or name, or undefined when there is none. */
export async function inspectContainer(
  engine: DockerEngine,
  idOrName: string,
): Promise<ContainerDetails | undefined> {
  try {
    const info = await engine.client.getContainer(idOrName).inspect();
    const env: Record<string, string> = {};
    // The engine sends null for empty lists and maps, whatever the typings say.
    for (const e of (info.Config.Env as string[] | null) ?? []) {
      const eq = e.indexOf('=');
      if (eq > 0) env[e.slice(0, eq)] = e.slice(eq + 1);
    }
    const loopbackPorts: Record<number, number> = {};
    const rawPorts: unknown = info.NetworkSettings.Ports;
    const ports = (rawPorts ?? {}) as Record<string, { HostIp: string; HostPort: string }[] | null>;
    for (const [key, bindings] of Object.entries(ports)) {
      const b = bindings?.find((x) => x.HostIp === '127.0.0.1');
      if (b !== undefined) loopbackPorts[parseInt(key, 10)] = Number(b.HostPort);
    }
    const networks: ContainerDetails['networks'] = {};
    for (const [name, n] of Object.entries(info.NetworkSettings.Networks)) {
      networks[name] = { ip: n.IPAddress, gateway: n.Gateway };
    }
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      image: info.Config.Image,
      running: info.State.Running,
      status: info.State.Status,
      exitCode: info.State.ExitCode,
      oomKilled: info.State.OOMKilled,
      startedAt: info.State.StartedAt,
      finishedAt: info.State.FinishedAt,
      labels: labelsOf(info.Config.Labels),
      env,
      loopbackPorts,
      networks,
    };
  } catch (err) {
    if (statusCodeOf(err) === 404) return undefined;
    throw dockerError(err, engine.endpoint, `inspect container ${idOrName}`);
  }
}

export interface NetworkDetails {
  id: string;
  name: string;
  labels: Record<string, string>;
  subnets: string[];
}

/** A Docker network by name or id, or undefined when there is none. */
export async function inspectNetwork(
  engine: DockerEngine,
  network: string,
): Promise<NetworkDetails | undefined> {
  try {
    const info = (await engine.client.getNetwork(network).inspect()) as {
      Id: string;
      Name: string;
      Labels?: Record<string, string> | null;
      IPAM?: { Config?: { Subnet?: string }[] | null };
    };
    return {
      id: info.Id,
      name: info.Name,
      labels: info.Labels ?? {},
      subnets: (info.IPAM?.Config ?? []).flatMap((c) => (c.Subnet === undefined ? [] : [c.Subnet])),
    };
  } catch (err) {
    if (statusCodeOf(err) === 404) return undefined;
    throw dockerError(err, engine.endpoint, `inspect network ${network}`);
  }
}

/** The subnets of a Docker network (by name or id), for collision checks. */
export async function networkSubnets(engine: DockerEngine, network: string): Promise<string[]> {
  return (await inspectNetwork(engine, network))?.subnets ?? [];
}

/** Tags `source` as `target` and pushes it to target's registry. */
export async function pushImage(
  engine: DockerEngine,
  source: string,
  target: string,
  onLine: (line: string) => void = () => undefined,
): Promise<void> {
  const at = target.lastIndexOf(':');
  const slash = target.lastIndexOf('/');
  const repo = at > slash ? target.slice(0, at) : target;
  const tag = at > slash ? target.slice(at + 1) : 'latest';
  try {
    await engine.client.getImage(source).tag({ repo, tag });
    // The engine insists on an X-Registry-Auth header even for a registry without auth.
    const stream = await engine.client.getImage(target).push({ authconfig: {} });
    await followJson(stream, (msg) => {
      if (typeof msg.status === 'string') {
        onLine(typeof msg.id === 'string' ? `${msg.id}: ${msg.status}` : msg.status);
      }
    });
  } catch (err) {
    throw dockerError(err, engine.endpoint, `push ${target}`);
  }
}

function labelsOf(raw: unknown): Record<string, string> {
  return (raw ?? {}) as Record<string, string>;
}
